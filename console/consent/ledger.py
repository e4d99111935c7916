"""Recording consent: append a hash-chained event and update the derived state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import Connection
from sqlmodel import Session, col, select

from console.audit import CONSENT_CHAIN, append_audit, consent_fields
from console.context import Context
from console.errors import TocsinError
from console.roles import Role
from storage.chain import commit_link, reserve_link, reserve_links
from storage.engine import write_session
from storage.models import (
    ConsentEvent,
    ConsentState,
    Contact,
    consent_event_table,
    consent_state_table,
)
from storage.rawsql import dialect

Action = Literal["grant", "withdraw"]

# Where a consent (or its withdrawal) came from. sms_stop: a STOP the worker read;
# operator: an operator's decision on a reply they reviewed (or a list's expiry).
SOURCES = (
    "paper_form",
    "web_form",
    "sms_keyword",
    "phone_call",
    "rented_list",
    "counter",
    "import",
    "sms_stop",
    "operator",
)
# What an operator picks in the consent form: the others are recorded by Tocsin itself.
FORM_SOURCES = SOURCES[:6]
# A rented list is only as good as its provider's proof.
SOURCES_NEEDING_PROOF = frozenset({"rented_list"})


class ConsentError(TocsinError):
    pass


@dataclass(frozen=True)
class ConsentRequest:
    contact_id: int
    topic: str
    action: Action
    source: str
    proof_ref: str = ""
    text_version: str = ""
    occurred_at: datetime | None = None


def validate(ctx: Context, request: ConsentRequest) -> None:
    if request.topic not in ctx.config.topics:
        raise ConsentError(
            f"unknown topic {request.topic!r} (known: {', '.join(ctx.topics)})",
            "consent_topic",
            topic=request.topic,
        )
    if request.action not in ("grant", "withdraw"):
        raise ConsentError(
            f"action must be grant or withdraw, not {request.action!r}", "consent_action"
        )
    if request.source not in SOURCES:
        raise ConsentError(
            f"unknown source {request.source!r} (known: {', '.join(SOURCES)})",
            "consent_source",
            source=request.source,
        )
    if request.source in SOURCES_NEEDING_PROOF and not request.proof_ref.strip():
        raise ConsentError(
            f"source {request.source} needs a proof reference", "consent_proof_needed"
        )
    if len(request.proof_ref.strip()) > 500:
        raise ConsentError("proof reference longer than 500 characters", "consent_proof_long")
    if len(request.text_version) > 50:
        raise ConsentError("consent text version longer than 50 characters", "consent_version_long")
    if request.occurred_at is not None:
        if request.occurred_at.utcoffset() is None:
            raise ConsentError("the consent date needs a time zone", "consent_naive_date")
        if request.occurred_at > ctx.clock.now():
            raise ConsentError("a consent cannot be dated in the future", "consent_future")


def append_consent(
    session: Session, ctx: Context, request: ConsentRequest, *, operator: str | None = None
) -> ConsentEvent:
    """Inside the caller's transaction; the caller has validated the request.

    `operator` names who decided when it is not the user running Tocsin (an inbound
    STOP: the SMS, as its audit entry names it)."""
    now = ctx.clock.now()
    link = reserve_link(session, CONSENT_CHAIN)
    event = ConsentEvent(
        seq=link.seq,
        contact_id=request.contact_id,
        topic=request.topic,
        action=request.action,
        source=request.source,
        proof_ref=request.proof_ref.strip(),
        text_version=request.text_version or ctx.config.topics[request.topic].consent_text_version,
        operator=operator or ctx.operator,
        occurred_at=request.occurred_at or now,
        recorded_at=now,
        prev_hash=link.prev_hash,
        hash="",
    )
    event.hash = link.hash(consent_fields(event))
    session.add(event)
    session.flush()
    commit_link(session, CONSENT_CHAIN, event.hash)
    assert event.id is not None
    state = session.get(ConsentState, (request.contact_id, request.topic))
    granted = request.action == "grant"
    # An older paper form typed in late must not override a newer decision.
    if state is None or _is_newer(session, event, state):
        if state is None:
            state = ConsentState(
                contact_id=request.contact_id,
                topic=request.topic,
                granted=granted,
                event_id=event.id,
                updated_at=now,
            )
        else:
            state.granted, state.event_id, state.updated_at = granted, event.id, now
        session.add(state)
    return event


@dataclass(slots=True)
class _EventFields:
    """What console.audit.consent_fields reads from a ConsentEvent."""

    seq: int
    contact_id: int
    topic: str
    action: str
    source: str
    proof_ref: str
    text_version: str
    operator: str
    occurred_at: datetime
    recorded_at: datetime


_GRANT_COLUMNS = (
    "seq",
    "contact_id",
    "topic",
    "action",
    "source",
    "proof_ref",
    "text_version",
    "operator",
    "prev_hash",
    "hash",
)


def append_grants(
    conn: Connection, ctx: Context, request: ConsentRequest, contact_ids: Sequence[int]
) -> None:
    """append_consent of one validated grant (its contact_id aside) for many contacts
    that have no consent state on its topic yet: what an import with --consent does.

    Inside the caller's transaction, in three statements whatever the number of
    contacts (an ORM object per grant would cost more than the whole import).
    """
    if not contact_ids:
        return
    now = ctx.clock.now()
    topic = request.topic
    link = reserve_links(conn, CONSENT_CHAIN, len(contact_ids))
    first, prev = link.seq, link.prev_hash
    text_version = request.text_version or ctx.config.topics[topic].consent_text_version
    proof = request.proof_ref.strip()
    occurred = request.occurred_at or now
    rows: list[tuple[Any, ...]] = []
    for offset, contact_id in enumerate(contact_ids):
        event = _EventFields(
            seq=first + offset,
            contact_id=contact_id,
            topic=topic,
            action=request.action,
            source=request.source,
            proof_ref=proof,
            text_version=text_version,
            operator=ctx.operator,
            occurred_at=occurred,
            recorded_at=now,
        )
        # consent_fields only reads attributes, as it does of a ConsentEvent.
        digest = link.digest(prev, consent_fields(cast(ConsentEvent, event)))
        rows.append(
            (
                event.seq,
                contact_id,
                topic,
                request.action,
                request.source,
                proof,
                text_version,
                ctx.operator,
                prev,
                digest,
            )
        )
        prev = digest
    db = dialect(conn.engine)
    conn.exec_driver_sql(
        db.insert_json(consent_event_table, _GRANT_COLUMNS, ("occurred_at", "recorded_at")),
        {
            "rows": db.rows(rows),
            "occurred_at": db.datetime(occurred),
            "recorded_at": db.datetime(now),
        },
    )
    commit_link(conn, CONSENT_CHAIN, prev)
    last = first + len(contact_ids) - 1
    events = consent_event_table.c
    event_ids: dict[int, int] = dict(
        conn.execute(
            select(events.contact_id, events.id).where(events.seq.between(first, last))
        ).all()
    )
    granted = request.action == "grant"
    conn.exec_driver_sql(
        db.insert_json(
            consent_state_table, ("contact_id", "topic", "granted", "event_id"), ("updated_at",)
        ),
        {
            "rows": db.rows([(cid, topic, granted, event_ids[cid]) for cid in contact_ids]),
            "updated_at": db.datetime(now),
        },
    )


def _is_newer(session: Session, event: ConsentEvent, state: ConsentState) -> bool:
    current = session.get(ConsentEvent, state.event_id)
    return current is None or event.occurred_at >= current.occurred_at


def record_consent(ctx: Context, request: ConsentRequest) -> ConsentEvent:
    ctx.require(Role.OPERATOR)
    validate(ctx, request)
    with write_session(ctx.engine) as session:
        contact = session.get(Contact, request.contact_id)
        if contact is None or contact.erased_at is not None:
            raise ConsentError(
                f"no contact #{request.contact_id}", "no_contact", id=request.contact_id
            )
        event = append_consent(session, ctx, request)
        append_audit(
            session,
            at=ctx.clock.now(),
            operator=ctx.operator,
            action=f"consent.{request.action}",
            target=f"contact:{request.contact_id}",
            details={"topic": request.topic, "source": request.source, "consent_seq": event.seq},
        )
    return event


def current_consents(session: Session, contact_id: int) -> dict[str, bool]:
    rows = session.exec(select(ConsentState).where(ConsentState.contact_id == contact_id)).all()
    return {row.topic: row.granted for row in rows}


def may_receive(legal_basis: str, state: bool | None) -> bool:
    """Public-safety topics reach everyone who has not opted out; others need opt-in."""
    if legal_basis == "public_safety":
        return state is not False
    return state is True


def history(session: Session, contact_id: int) -> list[ConsentEvent]:
    return list(
        session.exec(
            select(ConsentEvent)
            .where(ConsentEvent.contact_id == contact_id)
            .order_by(col(ConsentEvent.seq))
        ).all()
    )


def derive_states(events: list[ConsentEvent]) -> dict[tuple[int, str], bool]:
    """Current consent from the event log alone (what ConsentState must agree with)."""
    latest: dict[tuple[int, str], ConsentEvent] = {}
    for event in sorted(events, key=lambda e: e.seq):
        key = (event.contact_id, event.topic)
        if key not in latest or event.occurred_at >= latest[key].occurred_at:
            latest[key] = event
    return {key: event.action == "grant" for key, event in latest.items()}
