from console.audit import verify_chains
from console.consent import ConsentRequest, record_consent
from console.contacts import ContactInput, add_contact, build_query, erase_contact
from storage.engine import read_session
from storage.queries import count_contacts, page_contacts


def test_add_consent_erase(ctx):
    c = add_contact(
        ctx,
        ContactInput(
            number="06 12 34 56 78", name="Élodie Garçon", zone="Les Prés", groups=("parents",)
        ),
    )
    record_consent(
        ctx,
        ConsentRequest(
            contact_id=c.id,
            topic="evenements",
            action="grant",
            source="paper_form",
            proof_ref="F-12",
        ),
    )
    record_consent(
        ctx,
        ConsentRequest(contact_id=c.id, topic="evenements", action="withdraw", source="phone_call"),
    )
    with read_session(ctx.engine) as s:
        q = build_query(ctx, "0612")
        assert count_contacts(s, q) == 1
        rows = page_contacts(s, build_query(ctx, "garcon"))
        assert rows[0].consents == {"evenements": False}
    r = erase_contact(ctx, c.id)
    assert r.suppressed
    res = verify_chains(ctx.engine)
    assert res["audit"] == (4, []) and res["consent"] == (2, [])
