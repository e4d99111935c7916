"""Campaign enqueue and the ledger's state moves (the sender builds on both)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, col, select

from console.consent.ledger import ConsentRequest, record_consent
from console.contacts.service import ContactInput, add_contact, erase_contact
from console.context import Context
from console.roles import PermissionDenied, Role
from console.sending import campaigns
from console.sending.campaigns import (
    Audience,
    CampaignError,
    CampaignRequest,
    _insert_ignoring_duplicates,
    check_sender_id,
    complete_enqueue,
    create_campaign,
    incomplete_campaigns,
)
from console.sending.queue import claim_batch
from console.sending.states import FINAL, STATES, can_move, is_final
from console.sending.workers import beat
from storage.engine import is_sqlite
from storage.models import AuditEntry, Campaign, Message
from tests.conftest import make_context


def _town(ctx: Context) -> dict[str, int]:
    """Five residents covering every reason a message is skipped."""
    ids = {}
    for key, number, zone, groups in (
        ("ana", "06 10 00 00 01", "Centre", ("seniors",)),
        ("bob", "06 10 00 00 02", "Centre", ()),
        ("cid", "06 10 00 00 03", "La Gare", ("seniors",)),
        ("landline", "01 42 76 40 40", "Centre", ()),
        ("stopped", "06 10 00 00 05", "La Gare", ()),
    ):
        contact = add_contact(ctx, ContactInput(number=number, name=key, zone=zone, groups=groups))
        assert contact.id is not None
        ids[key] = contact.id
    for key in ("ana", "cid", "landline", "stopped"):
        record_consent(
            ctx,
            ConsentRequest(
                contact_id=ids[key], topic="evenements", action="grant", source="paper_form"
            ),
        )
    # "stopped" withdrew and was erased: its number stays on the suppression list.
    record_consent(
        ctx,
        ConsentRequest(
            contact_id=ids["stopped"], topic="alertes", action="withdraw", source="sms_keyword"
        ),
    )
    erase_contact(ctx, ids["stopped"])
    return ids


def _messages(ctx: Context, campaign_id: int) -> dict[str, tuple[str, str]]:
    with Session(ctx.engine) as session:
        rows = session.exec(select(Message).where(col(Message.campaign_id) == campaign_id))
        return {m.number: (m.state, m.reason) for m in rows}


def test_consent_topic_skips_without_opt_in_and_counts_add_up(ctx: Context) -> None:
    _town(ctx)
    result = create_campaign(
        ctx,
        CampaignRequest(
            topic="evenements",
            text="Fête du village samedi",
            sender_id="MAIRIE",
            audience=Audience(everyone=True),
        ),
    )
    assert result.counts["queued"] == 2 and result.counts["skipped"] == 2
    assert sum(result.counts.values()) == 4  # the erased resident is not in the audience
    assert set(result.counts) == set(STATES)
    assert result.skipped == {"no_consent": 1, "not_sendable": 1}
    assert _messages(ctx, result.campaign_id) == {
        "+33610000001": ("queued", ""),
        "+33610000002": ("skipped", "no_consent"),
        "+33610000003": ("queued", ""),
        "+33142764040": ("skipped", "not_sendable"),
    }


def test_public_safety_reaches_everyone_who_did_not_opt_out(ctx: Context) -> None:
    _town(ctx)
    result = create_campaign(
        ctx,
        CampaignRequest(
            topic="alertes",
            text="Crue : évacuez les berges",
            sender_id="MAIRIE",
            audience=Audience(everyone=True, numbers=("06 10 00 00 05", "06 99 99 99 99")),
            kind="emergency",
        ),
    )
    messages = _messages(ctx, result.campaign_id)
    assert messages["+33610000002"] == ("queued", "")  # no opt-in needed for alerts
    # Typed again by hand after erasure: still suppressed, never sent.
    assert messages["+33610000005"] == ("skipped", "suppressed")
    assert messages["+33699999999"] == ("queued", "")
    with Session(ctx.engine) as session:
        priorities = set(
            session.exec(
                select(Message.priority).where(col(Message.campaign_id) == result.campaign_id)
            )
        )
    assert priorities == {100}


def test_zones_and_groups_are_a_union(ctx: Context) -> None:
    _town(ctx)
    result = create_campaign(
        ctx,
        CampaignRequest(
            topic="alertes",
            text="Coupure d'eau",
            sender_id="MAIRIE",
            audience=Audience(zones=("La Gare",), groups=("seniors",)),
        ),
    )
    assert set(_messages(ctx, result.campaign_id)) == {"+33610000001", "+33610000003"}


def test_enqueue_twice_never_doubles_a_message(ctx: Context) -> None:
    _town(ctx)
    result = create_campaign(
        ctx,
        CampaignRequest(
            topic="alertes", text="Test", sender_id="MAIRIE", audience=Audience(everyone=True)
        ),
    )
    with Session(ctx.engine) as session:
        rows = session.exec(
            select(Message).where(col(Message.campaign_id) == result.campaign_id)
        ).all()
        again = [m.model_dump(exclude={"id"}) for m in rows]
    with Session(ctx.engine) as session:
        _insert_ignoring_duplicates(session.connection(), again)
        session.commit()
    assert sum(1 for _ in _messages(ctx, result.campaign_id)) == len(rows)
    with Session(ctx.engine) as session:
        count = len(
            session.exec(
                select(Message.id).where(col(Message.campaign_id) == result.campaign_id)
            ).all()
        )
    assert count == len(rows)


def test_campaign_is_audited(ctx: Context) -> None:
    _town(ctx)
    result = create_campaign(
        ctx,
        CampaignRequest(
            topic="alertes", text="Test", sender_id="MAIRIE", audience=Audience(everyone=True)
        ),
    )
    with Session(ctx.engine) as session:
        entry = session.exec(
            select(AuditEntry).where(col(AuditEntry.action) == "campaign.create")
        ).one()
    assert entry.target == f"campaign:{result.campaign_id}"
    assert entry.operator == "secretariat"


@pytest.mark.parametrize("sender", ["MAIRIE", "Mairie2026", "VAL"])
def test_good_sender_ids(sender: str) -> None:
    assert check_sender_id(sender) == sender


@pytest.mark.parametrize("sender", ["AB", "MAIRIEDEVALTOC", "12345", "MAIRIE-1", "Mairie é", ""])
def test_bad_sender_ids(sender: str) -> None:
    with pytest.raises(CampaignError) as raised:
        check_sender_id(sender)
    assert raised.value.code == "campaign_sender_id"


def test_request_validation(ctx: Context) -> None:
    for request, code in (
        (
            CampaignRequest(
                topic="x", text="t", sender_id="MAIRIE", audience=Audience(everyone=True)
            ),
            "consent_topic",
        ),
        (
            CampaignRequest(
                topic="alertes", text="  ", sender_id="MAIRIE", audience=Audience(everyone=True)
            ),
            "campaign_empty",
        ),
        (
            CampaignRequest(topic="alertes", text="t", sender_id="MAIRIE", audience=Audience()),
            "campaign_audience",
        ),
        (
            CampaignRequest(
                topic="alertes", text="t", sender_id="MAIRIE", audience=Audience(numbers=("06 12",))
            ),
            "contact_number",
        ),
    ):
        with pytest.raises(CampaignError) as raised:
            create_campaign(ctx, request)
        assert raised.value.code == code


def test_only_alerters_send_emergencies(ctx: Context, engine, config, clock) -> None:  # type: ignore[no-untyped-def]
    operator = make_context(engine, config, clock, role=Role.OPERATOR)
    add_contact(ctx, ContactInput(number="06 10 00 00 01"))
    request = CampaignRequest(
        topic="alertes",
        text="Alerte",
        sender_id="MAIRIE",
        audience=Audience(everyone=True),
        kind="emergency",
    )
    with pytest.raises(PermissionDenied):
        create_campaign(operator, request)
    planned = CampaignRequest(
        topic="alertes", text="Info", sender_id="MAIRIE", audience=Audience(everyone=True)
    )
    assert create_campaign(operator, planned).counts["queued"] == 1


def test_ledger_moves_forward_only() -> None:
    assert can_move("queued", "sending")
    assert can_move("sending", "submitted")
    assert can_move("sending", "queued")  # retryable failure, provider never took it
    assert can_move("sending", "uncertain")
    assert can_move("sending", "delivered")  # a report overtaking the submit answer
    assert can_move("submitted", "delivered")
    assert can_move("uncertain", "queued") and can_move("uncertain", "submitted")
    assert can_move("uncertain", "delivered")  # a report proves it was sent
    assert not can_move("submitted", "sending")
    assert not can_move("submitted", "queued")
    assert not can_move("delivered", "submitted")
    assert not can_move("queued", "delivered")
    assert can_move("queued", "skipped")  # a cancelled campaign
    for final in FINAL:
        assert is_final(final)
        assert not any(can_move(final, other) for other in STATES)
    with pytest.raises(ValueError):
        can_move("queued", "teleported")


def _many(ctx: Context, count: int) -> None:
    for i in range(count):
        add_contact(
            ctx,
            ContactInput(
                number=f"06 20 00 {i // 100:02d} {i % 100:02d}", name=f"r{i}", zone="Centre"
            ),
        )


def test_emergency_enqueues_in_chunks_with_exact_counts(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(campaigns, "FIRST_CHUNK", 7)
    monkeypatch.setattr(campaigns, "CHUNK", 10)
    _town(ctx)
    _many(ctx, 45)
    result = create_campaign(
        ctx,
        CampaignRequest(
            topic="alertes",
            text="Crue",
            sender_id="MAIRIE",
            kind="emergency",
            audience=Audience(everyone=True, numbers=("06 99 99 99 99", "06 20 00 00 03")),
        ),
    )
    messages = _messages(ctx, result.campaign_id)
    # 4 residents of the town (one was erased), 45 more, one typed number with no contact.
    assert len(messages) == sum(result.counts.values()) == 50
    assert result.skipped == {"not_sendable": 1}
    assert messages["+33699999999"] == ("queued", "")
    with Session(ctx.engine) as session:
        campaign = session.get(Campaign, result.campaign_id)
        assert campaign is not None and campaign.enqueued
        actions = session.exec(select(AuditEntry.action)).all()
    assert actions.count("campaign.create") == actions.count("campaign.enqueued") == 1


def test_an_enqueue_cut_short_is_completed_once(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(campaigns, "FIRST_CHUNK", 5)
    monkeypatch.setattr(campaigns, "CHUNK", 10)
    _many(ctx, 32)
    real_chunk = campaigns._enqueue_chunk
    calls = 0

    def dies_on_the_third_chunk(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt  # the SSH session dropped
        return real_chunk(*args, **kwargs)

    monkeypatch.setattr(campaigns, "_enqueue_chunk", dies_on_the_third_chunk)
    with pytest.raises(KeyboardInterrupt):
        create_campaign(
            ctx,
            CampaignRequest(
                topic="alertes",
                text="Crue",
                sender_id="MAIRIE",
                kind="emergency",
                audience=Audience(everyone=True),
            ),
        )
    monkeypatch.setattr(campaigns, "_enqueue_chunk", real_chunk)
    with Session(ctx.engine) as session:
        campaign = session.exec(select(Campaign)).one()
    assert campaign.id is not None and not campaign.enqueued
    assert len(_messages(ctx, campaign.id)) == 15
    later = ctx.clock.now() + timedelta(minutes=1)
    assert incomplete_campaigns(ctx.engine, later) == [campaign.id]
    done = complete_enqueue(ctx, campaign.id)
    assert sum(done.counts.values()) == 32 == len(_messages(ctx, campaign.id))
    assert incomplete_campaigns(ctx.engine, later) == []
    # Completing again changes nothing.
    assert sum(complete_enqueue(ctx, campaign.id).counts.values()) == 32


def test_text_gets_the_stop_mention_and_no_placeholder_left(ctx: Context) -> None:
    _town(ctx)
    with pytest.raises(CampaignError) as raised:
        create_campaign(
            ctx,
            CampaignRequest(
                topic="alertes",
                text="Accident {lieu}",
                sender_id="MAIRIE",
                audience=Audience(everyone=True),
            ),
        )
    assert raised.value.code == "campaign_unfilled"
    assert raised.value.params == {"placeholders": "{lieu}"}
    result = create_campaign(
        ctx,
        CampaignRequest(
            topic="evenements",
            text="Fête du village samedi",
            sender_id="MAIRIE",
            audience=Audience(everyone=True),
        ),
    )
    with Session(ctx.engine) as session:
        campaign = session.get(Campaign, result.campaign_id)
        assert campaign is not None
        assert campaign.text == "Fête du village samedi\nDésinscription : répondez STOP"


def test_on_sqlite_an_emergency_lets_a_live_worker_claim_first(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One writer: the enqueue waits (briefly) for the worker's first claim, so the
    first SMS leaves before the whole audience is written. PostgreSQL claims committed
    rows while the rest are inserted: no pause there."""
    monkeypatch.setattr(campaigns, "FIRST_CHUNK", 3)
    monkeypatch.setattr(campaigns, "CHUNK", 4)
    _many(ctx, 10)
    beat(ctx.engine, "w1", "simulated", ctx.clock.now())
    claimed_when_started: list[int] = []

    def worker_claims(campaign_id: int) -> None:
        claimed_when_started.append(len(claim_batch(ctx.engine, "w1", ctx.clock.now(), 60, 10)))

    waits: list[float] = []
    monkeypatch.setattr(campaigns.time, "sleep", waits.append)
    result = create_campaign(
        ctx,
        CampaignRequest(
            topic="alertes",
            text="Crue",
            sender_id="MAIRIE",
            kind="emergency",
            audience=Audience(everyone=True),
        ),
        on_started=worker_claims,
    )
    # The worker had the first chunk at once; the rest came after, with pauses.
    assert claimed_when_started == [3]
    assert waits == ([campaigns.CHUNK_PAUSE_S] if is_sqlite(ctx.engine) else [])
    assert sum(result.counts.values()) == 10


def test_the_bulk_hasher_matches_number_hash() -> None:
    from console.consent.suppression import number_hash, number_hasher

    digest = number_hasher(b"k" * 32)
    for number in ("+33612345678", "+262692000000", ""):
        assert digest(number) == number_hash(b"k" * 32, number)


def test_a_text_over_ten_sms_is_refused_with_its_count(ctx: Context) -> None:
    _town(ctx)
    with pytest.raises(CampaignError) as raised:
        create_campaign(
            ctx,
            CampaignRequest(
                topic="alertes",
                text="x" * 2000,
                sender_id="MAIRIE",
                audience=Audience(everyone=True),
                kind="emergency",
            ),
        )
    assert raised.value.code == "campaign_too_long"
    assert raised.value.params == {"parts": 14, "limit": 10}
    with Session(ctx.engine) as session:
        assert session.exec(select(Campaign)).first() is None


def test_a_stop_recorded_during_an_enqueue_counts_for_the_chunks_after_it(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The STOP list is read once per enqueue, then topped up chunk by chunk."""
    from console.consent.suppression import number_hash
    from storage.engine import write_session
    from storage.models import Suppression

    monkeypatch.setattr(campaigns, "FIRST_CHUNK", 2)
    monkeypatch.setattr(campaigns, "CHUNK", 2)
    for i in range(6):
        add_contact(ctx, ContactInput(number=f"06 30 00 00 0{i}"))
    reads = []
    refresh = campaigns.StopList.refresh

    def counted(self: campaigns.StopList, *args: object, **kwargs: object) -> set[str]:
        reads.append(len(self.hashes))
        return refresh(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(campaigns.StopList, "refresh", counted)

    def stop_the_last(_campaign_id: int) -> None:
        with write_session(ctx.engine) as session:
            session.add(
                Suppression(
                    number_hash=number_hash(ctx.hash_key, "+33630000005"),
                    created_at=ctx.clock.now(),
                    reason="stop",
                )
            )

    result = create_campaign(
        ctx,
        CampaignRequest(
            topic="alertes",
            text="Essai",
            sender_id="MAIRIE",
            audience=Audience(everyone=True),
            kind="emergency",
        ),
        on_started=stop_the_last,
    )
    with Session(ctx.engine) as session:
        states = {
            m.number: (m.state, m.reason)
            for m in session.exec(select(Message).where(Message.campaign_id == result.campaign_id))
        }
    assert states["+33630000005"] == ("skipped", "suppressed")
    assert states["+33630000000"] == ("queued", "")
    assert len(reads) >= 3  # one read per chunk, each topping the same set up
