"""The consent ledger: events, the derived state, and who may record them."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from console.audit import verify_chains
from console.clock import FrozenClock
from console.config import Config
from console.consent.ledger import (
    SOURCES,
    ConsentError,
    ConsentRequest,
    current_consents,
    derive_states,
    history,
    may_receive,
    record_consent,
)
from console.contacts.service import ContactInput, add_contact, erase_contact
from console.context import Context
from console.roles import PermissionDenied, Role
from storage.models import AuditEntry, ConsentEvent, ConsentState
from tests.conftest import make_context


def _contact(ctx: Context, number: str = "06 12 34 56 78", name: str = "Élodie Garçon") -> int:
    contact = add_contact(ctx, ContactInput(number=number, name=name))
    assert contact.id is not None
    return contact.id


def _state(engine: Engine, contact_id: int, topic: str) -> ConsentState | None:
    with Session(engine) as session:
        return session.get(ConsentState, (contact_id, topic))


def _events(engine: Engine) -> list[ConsentEvent]:
    with Session(engine) as session:
        return list(session.exec(select(ConsentEvent).order_by(col(ConsentEvent.seq))).all())


def test_grant_then_withdraw_derives_the_state(ctx: Context, clock: FrozenClock) -> None:
    cid = _contact(ctx)
    granted = record_consent(
        ctx,
        ConsentRequest(cid, "evenements", "grant", "paper_form", proof_ref=" F-12 "),
    )
    state = _state(ctx.engine, cid, "evenements")
    assert state is not None
    assert (state.granted, state.event_id, state.updated_at) == (True, granted.id, clock.now())

    clock.advance(timedelta(days=2))
    withdrawn = record_consent(ctx, ConsentRequest(cid, "evenements", "withdraw", "phone_call"))
    state = _state(ctx.engine, cid, "evenements")
    assert state is not None
    assert (state.granted, state.event_id, state.updated_at) == (False, withdrawn.id, clock.now())

    events = _events(ctx.engine)
    assert [(e.seq, e.action, e.source, e.proof_ref) for e in events] == [
        (1, "grant", "paper_form", "F-12"),
        (2, "withdraw", "phone_call", ""),
    ]
    first = events[0]
    assert (first.operator, first.text_version, first.contact_id) == ("secretariat", "v1", cid)
    assert first.occurred_at == first.recorded_at == clock.now() - timedelta(days=2)
    # Other topics are untouched.
    assert _state(ctx.engine, cid, "infos") is None
    with Session(ctx.engine) as session:
        assert current_consents(session, cid) == {"evenements": False}
        assert [e.id for e in history(session, cid)] == [granted.id, withdrawn.id]


def test_event_and_audit_written_together(ctx: Context) -> None:
    cid = _contact(ctx)
    event = record_consent(ctx, ConsentRequest(cid, "infos", "grant", "web_form"))
    with Session(ctx.engine) as session:
        entries = session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all()
    assert [(a.action, a.target) for a in entries] == [
        ("contact.add", f"contact:{cid}"),
        ("consent.grant", f"contact:{cid}"),
    ]
    assert f'"consent_seq": {event.seq}' in entries[1].details
    assert '"topic": "infos"' in entries[1].details


def test_late_typed_older_paper_form_does_not_override(ctx: Context, clock: FrozenClock) -> None:
    cid = _contact(ctx)
    newer = record_consent(ctx, ConsentRequest(cid, "evenements", "withdraw", "phone_call"))
    # A paper form signed ten days ago is typed in today.
    older = record_consent(
        ctx,
        ConsentRequest(
            cid,
            "evenements",
            "grant",
            "paper_form",
            proof_ref="F-7",
            occurred_at=clock.now() - timedelta(days=10),
        ),
    )
    state = _state(ctx.engine, cid, "evenements")
    assert state is not None
    assert (state.granted, state.event_id) == (False, newer.id)
    # The paper form is still in the ledger, after the withdrawal.
    assert older.seq == newer.seq + 1
    assert older.occurred_at == clock.now() - timedelta(days=10)
    assert older.recorded_at == clock.now()
    assert derive_states(_events(ctx.engine)) == {(cid, "evenements"): False}


def test_older_withdrawal_does_not_override_newer_grant(ctx: Context, clock: FrozenClock) -> None:
    cid = _contact(ctx)
    record_consent(ctx, ConsentRequest(cid, "infos", "grant", "counter"))
    record_consent(
        ctx,
        ConsentRequest(
            cid, "infos", "withdraw", "paper_form", occurred_at=clock.now() - timedelta(hours=1)
        ),
    )
    state = _state(ctx.engine, cid, "infos")
    assert state is not None and state.granted is True


def test_backdated_but_newer_decision_applies(ctx: Context, clock: FrozenClock) -> None:
    cid = _contact(ctx)
    record_consent(
        ctx,
        ConsentRequest(
            cid, "infos", "grant", "counter", occurred_at=clock.now() - timedelta(days=30)
        ),
    )
    record_consent(
        ctx,
        ConsentRequest(
            cid, "infos", "withdraw", "paper_form", occurred_at=clock.now() - timedelta(days=3)
        ),
    )
    state = _state(ctx.engine, cid, "infos")
    assert state is not None and state.granted is False


@pytest.mark.parametrize(
    ("legal_basis", "state", "expected"),
    [
        ("public_safety", None, True),  # no opt-in needed
        ("public_safety", True, True),
        ("public_safety", False, False),  # an opt-out is honoured
        ("consent", None, False),  # opt-in needed
        ("consent", True, True),
        ("consent", False, False),
    ],
)
def test_may_receive(legal_basis: str, state: bool | None, expected: bool) -> None:
    assert may_receive(legal_basis, state) is expected


def test_may_receive_from_recorded_consents(ctx: Context) -> None:
    cid = _contact(ctx)
    record_consent(ctx, ConsentRequest(cid, "alertes", "withdraw", "sms_keyword"))
    record_consent(ctx, ConsentRequest(cid, "evenements", "grant", "web_form"))
    with Session(ctx.engine) as session:
        consents = current_consents(session, cid)
    reach = {
        topic: may_receive(ctx.config.topics[topic].legal_basis, consents.get(topic))
        for topic in ctx.config.topics
    }
    assert reach == {
        "alertes": False,
        "evenements": True,
        "travaux": False,
        "elections": False,
        "infos": False,
    }


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_derive_states_agrees_with_the_state_table(
    ctx: Context, clock: FrozenClock, seed: int
) -> None:
    rng = random.Random(seed)
    contacts = [_contact(ctx, f"06 12 34 56 {10 + i}", f"Habitant {i}") for i in range(4)]
    topics = ["alertes", "evenements", "infos"]
    for _ in range(60):
        if rng.random() < 0.3:
            clock.advance(timedelta(minutes=rng.randint(1, 600)))
        source = rng.choice(SOURCES)
        when: datetime | None = None
        if rng.random() < 0.5:
            # Paper forms typed in late, sometimes at the very same instant as another.
            when = clock.now() - timedelta(hours=rng.choice([0, 0, 1, 5, 48, 400]))
        record_consent(
            ctx,
            ConsentRequest(
                rng.choice(contacts),
                rng.choice(topics),
                rng.choice(["grant", "withdraw"]),
                source,
                proof_ref="LOC-2026-1" if source == "rented_list" else "",
                occurred_at=when,
            ),
        )
    with Session(ctx.engine) as session:
        table = {(s.contact_id, s.topic): s.granted for s in session.exec(select(ConsentState))}
    events = _events(ctx.engine)
    assert len(events) == 60
    assert derive_states(events) == table
    # Each state points at the event that decided it.
    with Session(ctx.engine) as session:
        for state in session.exec(select(ConsentState)):
            event = session.get(ConsentEvent, state.event_id)
            assert event is not None
            assert (event.contact_id, event.topic) == (state.contact_id, state.topic)
            assert (event.action == "grant") is state.granted
    assert verify_chains(ctx.engine)["consent"] == (60, [])


def _refused(ctx: Context, request: ConsentRequest) -> str:
    with pytest.raises(ConsentError) as raised:
        record_consent(ctx, request)
    return str(raised.value)


def test_validation_errors(ctx: Context, clock: FrozenClock) -> None:
    cid = _contact(ctx)
    assert _refused(ctx, ConsentRequest(cid, "marche", "grant", "counter")) == (
        "unknown topic 'marche' (known: alertes, evenements, travaux, elections, infos)"
    )
    assert _refused(ctx, ConsentRequest(cid, "infos", "grant", "facebook")) == (
        "unknown source 'facebook' (known: paper_form, web_form, sms_keyword, phone_call, "
        "rented_list, counter, import, sms_stop, operator)"
    )
    assert _refused(ctx, ConsentRequest(cid, "infos", "grant", "rented_list")) == (
        "source rented_list needs a proof reference"
    )
    assert _refused(ctx, ConsentRequest(cid, "infos", "grant", "rented_list", proof_ref="  ")) == (
        "source rented_list needs a proof reference"
    )
    assert _refused(
        ctx,
        ConsentRequest(
            cid, "infos", "grant", "counter", occurred_at=clock.now() + timedelta(minutes=1)
        ),
    ) == ("a consent cannot be dated in the future")
    assert _refused(
        ctx, ConsentRequest(cid, "infos", "grant", "counter", occurred_at=datetime(2026, 1, 1))
    ) == ("the consent date needs a time zone")
    assert _refused(ctx, ConsentRequest(cid, "infos", "maybe", "counter")) == (  # type: ignore[arg-type]
        "action must be grant or withdraw, not 'maybe'"
    )
    assert _refused(ctx, ConsentRequest(cid, "infos", "grant", "counter", proof_ref="x" * 501)) == (
        "proof reference longer than 500 characters"
    )
    assert _refused(ctx, ConsentRequest(999, "infos", "grant", "counter")) == "no contact #999"
    # Nothing was written by any of them.
    assert _events(ctx.engine) == []


def test_rented_list_with_proof_is_accepted(ctx: Context) -> None:
    cid = _contact(ctx)
    event = record_consent(
        ctx, ConsentRequest(cid, "infos", "grant", "rented_list", proof_ref="LOC-1")
    )
    assert (event.source, event.proof_ref) == ("rented_list", "LOC-1")


def test_erased_contact_refused(ctx: Context) -> None:
    cid = _contact(ctx)
    record_consent(ctx, ConsentRequest(cid, "infos", "grant", "counter"))
    erase_contact(ctx, cid)
    assert _refused(ctx, ConsentRequest(cid, "infos", "grant", "counter")) == f"no contact #{cid}"
    assert len(_events(ctx.engine)) == 1
    assert _state(ctx.engine, cid, "infos") is None


@pytest.mark.parametrize("role", [Role.VIEWER, Role.NONE])
def test_viewer_refused(
    engine: Engine, config: Config, clock: FrozenClock, ctx: Context, role: Role
) -> None:
    cid = _contact(ctx)
    viewer = make_context(engine, config, clock, role=role, operator="stagiaire")
    with pytest.raises(PermissionDenied) as raised:
        record_consent(viewer, ConsentRequest(cid, "infos", "grant", "counter"))
    assert raised.value.needed is Role.OPERATOR
    assert raised.value.operator == "stagiaire"
    assert _events(engine) == []
    with Session(engine) as session:
        actions = session.exec(select(AuditEntry.action).order_by(AuditEntry.seq)).all()
    # The contact's creation, then the refusal: nothing recorded on the resident.
    assert actions == ["contact.add", "refused"]


def test_operator_may_record(
    engine: Engine, config: Config, clock: FrozenClock, ctx: Context
) -> None:
    cid = _contact(ctx)
    operator = make_context(engine, config, clock, role=Role.OPERATOR, operator="accueil")
    event = record_consent(operator, ConsentRequest(cid, "infos", "grant", "counter"))
    assert event.operator == "accueil"


def test_text_version_comes_from_the_topic(engine: Engine, clock: FrozenClock) -> None:
    config = Config.model_validate(
        {
            "topics": {"infos": {"label": "Infos", "consent_text_version": "2026-03"}},
            "alert": {"topic": "infos"},
        }
    )
    ctx = make_context(engine, config, clock)
    cid = _contact(ctx)
    assert record_consent(ctx, ConsentRequest(cid, "infos", "grant", "counter")).text_version == (
        "2026-03"
    )
    explicit = record_consent(
        ctx, ConsentRequest(cid, "infos", "withdraw", "counter", text_version="2025-01")
    )
    assert explicit.text_version == "2025-01"
