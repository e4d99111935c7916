"""Campaigns: validate a send, resolve its audience and enqueue it in one transaction.

Every resident of the audience gets a Message row: `queued` if they may receive it,
`skipped` with the reason otherwise, so the counts always add up to the audience.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection, Engine, func, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from console.audit import append_audit
from console.composing.composer import analyse, unfilled_placeholders, with_stop_mention
from console.config import is_sender_id
from console.consent.ledger import may_receive
from console.consent.suppression import number_hasher
from console.contacts.numbers import InvalidNumber
from console.context import Context
from console.errors import TocsinError
from console.roles import Role
from console.sending.states import QUEUED, SKIPPED, CampaignStatus
from console.sending.tallies import campaign_counts, fold_in
from console.sending.workers import ALIVE_WITHIN_S, alive_workers
from storage.engine import is_sqlite, read_session, write_session
from storage.faults import Fault, retry_while_locked
from storage.models import (
    Campaign,
    ConsentState,
    ContactGroup,
    Message,
    Suppression,
    contact_table,
    message_table,
)

Kind = Literal["emergency", "planned"]
T = TypeVar("T")

EMERGENCY_PRIORITY = 100

SKIP_NOT_SENDABLE = "not_sendable"
SKIP_NO_CONSENT = "no_consent"
SKIP_SUPPRESSED = "suppressed"
# Planned sends: the resident already got what the fatigue cap allows.
SKIP_FATIGUE_CAP = "fatigue_cap"


class CampaignError(TocsinError):
    pass


@dataclass(frozen=True)
class Audience:
    everyone: bool = False
    zones: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The stored shape, which `campaign show --json` prints as it is."""
        return {
            "all": self.everyone,
            "groups": list(self.groups),
            "numbers": list(self.numbers),
            "zones": list(self.zones),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Audience:
        loaded = json.loads(text or "{}")
        return cls(
            everyone=bool(loaded.get("all")),
            zones=tuple(loaded.get("zones", ())),
            groups=tuple(loaded.get("groups", ())),
            numbers=tuple(loaded.get("numbers", ())),
        )


@dataclass(frozen=True)
class CampaignRequest:
    topic: str
    text: str
    sender_id: str
    audience: Audience
    kind: Kind = "planned"
    start_at: datetime | None = None
    # A planned occurrence's campaign (see console.planning): its schedule, the end
    # of the slot it may send in, the time after which it never sends, and the
    # residents the fatigue cap holds back (skipped with SKIP_FATIGUE_CAP).
    schedule_id: int | None = None
    send_until: datetime | None = None
    valid_until: datetime | None = None
    capped: frozenset[int] = frozenset()


def message_text(ctx: Context, request: CampaignRequest) -> str:
    """What residents receive: the text with its topic's STOP mention (once)."""
    return with_stop_mention(request.text, ctx.config.topics[request.topic].stop_mention)


@dataclass(frozen=True)
class Enqueued:
    campaign_id: int
    counts: dict[str, int]
    skipped: dict[str, int] = field(default_factory=dict)


def check_sender_id(sender_id: str) -> str:
    if not is_sender_id(sender_id):
        raise CampaignError(
            f"sender ID {sender_id!r}: 3 to 11 letters and digits, at least one letter",
            "campaign_sender_id",
            sender_id=sender_id,
        )
    return sender_id


def _validate(ctx: Context, request: CampaignRequest) -> None:
    if request.topic not in ctx.config.topics:
        raise CampaignError(
            f"unknown topic {request.topic!r}", "consent_topic", topic=request.topic
        )
    if not request.text.strip():
        raise CampaignError("the message is empty", "campaign_empty")
    parts = analyse(message_text(ctx, request)).segments
    if parts > MAX_PARTS:
        # 131 SMS per resident is a mistake (a pasted document), never an alert.
        raise CampaignError(
            f"the message needs {parts} SMS per recipient, over the {MAX_PARTS} allowed: "
            "shorten it",
            "campaign_too_long",
            parts=parts,
            limit=MAX_PARTS,
        )
    unfilled = unfilled_placeholders(message_text(ctx, request))
    if unfilled:
        # A template's {lieu} must never reach residents as such.
        names = ", ".join(f"{{{name}}}" for name in unfilled)
        raise CampaignError(
            f"the message still has placeholders to fill in: {names}",
            "campaign_unfilled",
            placeholders=names,
        )
    check_sender_id(request.sender_id)
    audience = request.audience
    if not (audience.everyone or audience.zones or audience.groups or audience.numbers):
        raise CampaignError("no audience: all, zones, groups or numbers", "campaign_audience")


# An emergency commits its first recipients at once, so the worker starts sending
# while the rest are enqueued; each later chunk is its own short transaction, so on
# SQLite the worker's writes are never held up behind one long enqueue.
FIRST_CHUNK = 200
# The most SMS one message may take per recipient (Kannel's default max-messages too).
MAX_PARTS = 10
CHUNK = 5000
# SQLite only: how long an emergency waits for a live worker to claim its first
# recipients before enqueuing the rest, and the gap left between chunks for its writes.
FIRST_CLAIM_WAIT_S = 0.5
CHUNK_PAUSE_S = 0.03
# How long an alert waits out a locked database before it gives up and says so.
EMERGENCY_PATIENCE_S = 120.0


# A STOP recorded while an enqueue runs still counts for the chunks after it: each
# chunk reads the entries recorded since the last read (with this margin for a
# transaction that committed late), never the whole list again.
STOP_MARGIN = timedelta(minutes=1)


class StopList:
    """The suppression list's hashes for one enqueue: read whole once (it used to be
    read again for every chunk, N x S: 6 s more on a 1,000,000 send with 50,000
    STOPs), then topped up from ix_suppression_created_at."""

    def __init__(self) -> None:
        self.hashes: set[str] = set()
        self._since: datetime | None = None

    def refresh(self, session: Session, now: datetime) -> set[str]:
        query = select(col(Suppression.number_hash))
        if self._since is not None:
            query = query.where(col(Suppression.created_at) >= self._since)
        self.hashes.update(session.execute(query).scalars())
        self._since = now - STOP_MARGIN
        return self.hashes


def _let_the_sender_start(ctx: Context, campaign_id: int) -> bool:
    """Wait for a live worker's first claim; False when no worker is alive (then there
    is nobody to make room for)."""
    if not alive_workers(ctx.engine, ctx.clock.now(), ALIVE_WITHIN_S):
        return False
    deadline = time.monotonic() + FIRST_CLAIM_WAIT_S
    claimed = (
        select(col(Message.id))
        .where(
            col(Message.campaign_id) == campaign_id, col(Message.state).not_in((QUEUED, SKIPPED))
        )
        .limit(1)
    )
    while time.monotonic() < deadline:
        with read_session(ctx.engine) as session:
            if session.execute(claimed).first() is not None:
                return True
        time.sleep(0.01)
    return True


def create_campaign(
    ctx: Context,
    request: CampaignRequest,
    *,
    on_started: Callable[[int], None] | None = None,
    in_transaction: Callable[[Session, int], None] | None = None,
    on_wait: Callable[[Fault], None] | None = None,
) -> Enqueued:
    """Create the campaign and enqueue every recipient.

    A planned campaign is one transaction. An emergency is enqueued in chunks in
    contact order: the campaign row and the first chunk commit together, and the
    campaign stays `enqueued = False` until the last chunk; if the console dies
    half-way, `complete_enqueue` (run by the worker) finishes it, and the unique
    (campaign, number) makes that safe to run twice. `on_started` gets the campaign
    id once the first chunk is committed (the console shows it live from then on).
    `in_transaction` runs in the campaign's own transaction (the scheduler records
    the occurrence there: if it raises, no campaign is made).

    An emergency waits out a locked database (an import, someone's open
    transaction) for up to EMERGENCY_PATIENCE_S, telling `on_wait` each time: every
    transaction here is safe to make again (a failed one rolled back whole; a chunk
    already in is not doubled)."""
    needed = Role.ALERTER if request.kind == "emergency" else Role.OPERATOR
    ctx.require(needed)
    _validate(ctx, request)
    explicit = _parse_numbers(ctx, request.audience.numbers)
    now = ctx.clock.now()
    emergency = request.kind == "emergency"

    def patiently(work: Callable[[], T]) -> T:
        if not emergency:
            return work()
        return retry_while_locked(work, patience_seconds=EMERGENCY_PATIENCE_S, on_wait=on_wait)

    stops = StopList()
    campaign, chunk = patiently(
        lambda: _create_first(ctx, request, explicit, now, stops, in_transaction)
    )
    skipped = Counter(chunk.skipped)
    assert campaign.id is not None
    if on_started is not None:
        on_started(campaign.id)
    # SQLite has one writer: without these pauses the worker's claims wait behind every
    # chunk, and the first SMS would leave only once the whole audience is enqueued.
    one_writer = (
        emergency
        and is_sqlite(ctx.engine)
        and not chunk.last
        and _let_the_sender_start(ctx, campaign.id)
    )
    while not chunk.last:
        chunk = patiently(
            functools.partial(
                _next_chunk, ctx, campaign, request, explicit, chunk.last_contact_id, stops
            )
        )
        skipped.update(chunk.skipped)
        if one_writer and not chunk.last:
            time.sleep(CHUNK_PAUSE_S)
    return Enqueued(campaign.id, chunk.counts, dict(skipped))


def _create_first(
    ctx: Context,
    request: CampaignRequest,
    explicit: list[str],
    now: datetime,
    stops: StopList,
    in_transaction: Callable[[Session, int], None] | None = None,
) -> tuple[Campaign, _Chunk]:
    """The campaign row, its audit entry and its first chunk, in one transaction."""
    emergency = request.kind == "emergency"
    with write_session(ctx.engine) as session:
        campaign = Campaign(
            topic=request.topic,
            text=message_text(ctx, request),
            sender_id=request.sender_id,
            kind=request.kind,
            priority=EMERGENCY_PRIORITY if emergency else 0,
            audience=request.audience.to_json(),
            status=CampaignStatus.QUEUED,
            created_by=ctx.operator,
            created_at=now,
            start_at=request.start_at or now,
            resend_uncertain=emergency,
            enqueued=False,
            schedule_id=request.schedule_id,
            send_until=request.send_until,
            valid_until=request.valid_until,
        )
        session.add(campaign)
        session.flush()
        assert campaign.id is not None
        if in_transaction is not None:
            in_transaction(session, campaign.id)
        _audit_rules_passed(session, ctx, request, campaign.id, now)
        append_audit(
            session,
            at=now,
            operator=ctx.operator,
            action="campaign.create",
            target=f"campaign:{campaign.id}",
            details={"kind": request.kind, "topic": request.topic, **_audited(campaign)},
        )
        chunk = _enqueue_chunk(
            session,
            ctx,
            campaign,
            request.audience,
            explicit,
            stops,
            after_id=0,
            limit=FIRST_CHUNK if emergency else None,
            capped=request.capped,
        )
    return campaign, chunk


def _next_chunk(
    ctx: Context,
    campaign: Campaign,
    request: CampaignRequest,
    explicit: list[str],
    after_id: int,
    stops: StopList,
) -> _Chunk:
    with write_session(ctx.engine) as session:
        return _enqueue_chunk(
            session,
            ctx,
            campaign,
            request.audience,
            explicit,
            stops,
            after_id=after_id,
            limit=CHUNK,
        )


def _audit_rules_passed(
    session: Session, ctx: Context, request: CampaignRequest, campaign_id: int, now: datetime
) -> None:
    """The alert topic passes every send rule: the trail records each time it passed
    one that would have held another topic (quiet hours, Sunday, holiday, L49)."""
    if request.topic != ctx.config.alert.topic:
        return
    from console.planning.rules import send_rules

    passed = send_rules(ctx.config).would_block_alert(request.start_at or now)
    if passed is None:
        return
    append_audit(
        session,
        at=now,
        operator=ctx.operator,
        action="rules.passed",
        target=f"campaign:{campaign_id}",
        details={"topic": request.topic, "rule": passed.reason, "detail": passed.detail},
    )


def complete_enqueue(ctx: Context, campaign_id: int) -> Enqueued:
    """Finish an emergency whose enqueue stopped half-way (the console was killed)."""
    with read_session(ctx.engine) as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise CampaignError(f"no campaign #{campaign_id}", "no_campaign", id=campaign_id)
        session.expunge(campaign)
        done_up_to = (
            session.execute(
                select(func.max(col(Message.contact_id))).where(
                    col(Message.campaign_id) == campaign_id
                )
            ).scalar_one()
            or 0
        )
    audience = Audience.from_json(campaign.audience)
    explicit = _parse_numbers(ctx, audience.numbers)
    chunk = _Chunk(last=campaign.enqueued, last_contact_id=done_up_to, counts={}, skipped={})
    stops = StopList()
    while not chunk.last:
        with write_session(ctx.engine) as session:
            chunk = _enqueue_chunk(
                session,
                ctx,
                campaign,
                audience,
                explicit,
                stops,
                after_id=chunk.last_contact_id,
                limit=CHUNK,
            )
    with read_session(ctx.engine) as session:
        counts = _counts(session, campaign_id)
    return Enqueued(campaign_id, counts, chunk.skipped)


def incomplete_campaigns(engine: Engine, created_before: datetime) -> list[int]:
    """Emergencies still being enqueued that nobody has touched for a while."""
    with read_session(engine) as session:
        return list(
            session.execute(
                select(col(Campaign.id)).where(
                    col(Campaign.enqueued).is_(False), col(Campaign.created_at) < created_before
                )
            ).scalars()
        )


@dataclass(frozen=True)
class _Chunk:
    last: bool
    last_contact_id: int
    counts: dict[str, int]
    skipped: dict[str, int]


def _enqueue_chunk(
    session: Session,
    ctx: Context,
    campaign: Campaign,
    audience: Audience,
    explicit: list[str],
    stops: StopList,
    *,
    after_id: int,
    limit: int | None,
    capped: frozenset[int] = frozenset(),
) -> _Chunk:
    rows, last_contact_id, last = _resolve(
        session,
        ctx,
        campaign,
        audience,
        explicit,
        stops,
        after_id=after_id,
        limit=limit,
        capped=capped,
    )
    _insert_ignoring_duplicates(session.connection(), rows)
    fold_in(session.connection())
    skipped = Counter(row["reason"] for row in rows if row["state"] == SKIPPED)
    counts: dict[str, int] = {}
    if last:
        assert campaign.id is not None
        counts = _counts(session, campaign.id)
        session.execute(
            update(Campaign).where(col(Campaign.id) == campaign.id).values(enqueued=True)
        )
        append_audit(
            session,
            at=ctx.clock.now(),
            operator=ctx.operator,
            action="campaign.enqueued",
            target=f"campaign:{campaign.id}",
            details={
                "counts": counts,
                "recipients": sum(counts.values()) - counts.get(SKIPPED, 0),
                **_audited(campaign),
            },
        )
    return _Chunk(last, last_contact_id, counts, dict(skipped))


def _audited(campaign: Campaign) -> dict[str, object]:
    """What the audit trail keeps of a campaign: its text's hash (the text stays in
    the campaign) and its audience, with numbers typed one by one only counted: the
    trail never holds a phone number."""
    audience = Audience.from_json(campaign.audience)
    return {
        "text_sha256": hashlib.sha256(campaign.text.encode("utf-8")).hexdigest(),
        "audience": {
            "all": audience.everyone,
            "zones": list(audience.zones),
            "groups": list(audience.groups),
            "numbers": len(audience.numbers),
        },
    }


@dataclass(frozen=True)
class Preview:
    """Who a request would reach, before anything is written (the confirmation)."""

    recipients: int
    skipped: dict[str, int]
    # The text as residents will receive it (STOP mention included).
    text: str = ""


def preview_campaign(ctx: Context, request: CampaignRequest) -> Preview:
    _validate(ctx, request)
    explicit = _parse_numbers(ctx, request.audience.numbers)
    now = ctx.clock.now()
    draft = Campaign(
        id=0,
        topic=request.topic,
        text=request.text,
        sender_id=request.sender_id,
        kind=request.kind,
        created_by=ctx.operator,
        created_at=now,
        start_at=now,
    )
    with read_session(ctx.engine) as session:
        rows, _, _ = _resolve(
            session,
            ctx,
            draft,
            request.audience,
            explicit,
            StopList(),
            after_id=0,
            limit=None,
            capped=request.capped,
        )
    skipped = Counter(row["reason"] for row in rows if row["state"] == SKIPPED)
    return Preview(
        sum(1 for row in rows if row["state"] == QUEUED), dict(skipped), message_text(ctx, request)
    )


def _parse_numbers(ctx: Context, raw_numbers: Sequence[str]) -> list[str]:
    numbers: list[str] = []
    for raw in raw_numbers:
        try:
            numbers.append(ctx.parser.parse(raw).e164)
        except InvalidNumber as exc:
            raise CampaignError(
                f"{raw}: {exc}", "contact_number", number=raw, reason_code=exc.code
            ) from exc
    return numbers


def _resolve(
    session: Session,
    ctx: Context,
    campaign: Campaign,
    audience: Audience,
    explicit: list[str],
    stops: StopList,
    *,
    after_id: int,
    limit: int | None,
    capped: frozenset[int] = frozenset(),
) -> tuple[list[dict[str, Any]], int, bool]:
    """The rows of the audience's contacts after `after_id` (in id order, at most
    `limit`), then, with the last chunk, the typed numbers no contact has. Returns the
    rows, the last contact id seen, and whether this was the last chunk."""
    contact = contact_table.c
    conditions = []
    if audience.everyone:
        conditions.append(contact.id.is_not(None))
    if audience.zones:
        conditions.append(contact.zone.in_(audience.zones))
    if audience.groups:
        conditions.append(
            contact.id.in_(
                select(col(ContactGroup.contact_id)).where(
                    col(ContactGroup.name).in_(audience.groups)
                )
            )
        )
    if explicit:
        conditions.append(contact.number.in_(explicit))
    query = (
        select(contact.id, contact.number, contact.sendable)
        .where(contact.erased_at.is_(None), contact.id > after_id, or_(*conditions))
        .order_by(contact.id)
    )
    found = session.execute(query if limit is None else query.limit(limit)).all()
    last = limit is None or len(found) < limit
    last_contact_id = found[-1][0] if found else after_id
    basis = ctx.config.topics[campaign.topic].legal_basis
    consent_range = [
        col(ConsentState.topic) == campaign.topic,
        col(ConsentState.contact_id) > after_id,
    ]
    if not last:
        consent_range.append(col(ConsentState.contact_id) <= last_contact_id)
    states: dict[int, bool] = {
        contact_id: granted
        for contact_id, granted in session.execute(
            select(col(ConsentState.contact_id), col(ConsentState.granted)).where(*consent_range)
        )
    }
    now = ctx.clock.now()
    suppressed = stops.refresh(session, now)
    number_hash = number_hasher(ctx.hash_key)
    assert campaign.id is not None

    def row(contact_id: int | None, number: str, state: str, reason: str) -> dict[str, Any]:
        return {
            "campaign_id": campaign.id,
            "contact_id": contact_id,
            "number": number,
            "state": state,
            "reason": reason,
            "priority": campaign.priority,
            "attempts": 0,
            "next_attempt_at": campaign.start_at,
            "lease_owner": "",
            "provider_ref": "",
            "updated_at": now,
        }

    rows: list[dict[str, Any]] = []
    for contact_id, number, sendable in found:
        if not sendable:
            rows.append(row(contact_id, number, SKIPPED, SKIP_NOT_SENDABLE))
        elif number_hash(number) in suppressed:
            rows.append(row(contact_id, number, SKIPPED, SKIP_SUPPRESSED))
        elif not may_receive(basis, states.get(contact_id)):
            rows.append(row(contact_id, number, SKIPPED, SKIP_NO_CONSENT))
        elif contact_id in capped:
            rows.append(row(contact_id, number, SKIPPED, SKIP_FATIGUE_CAP))
        else:
            rows.append(row(contact_id, number, QUEUED, ""))
    if not last or not explicit:
        return rows, last_contact_id, last
    # Contacts with these numbers came through the query above.
    known = set(
        session.execute(
            select(contact.number).where(contact.erased_at.is_(None), contact.number.in_(explicit))
        ).scalars()
    )
    for number in dict.fromkeys(explicit):
        if number in known:
            continue
        # A number typed for this send alone: no consent on record for it.
        if number_hash(number) in suppressed:
            rows.append(row(None, number, SKIPPED, SKIP_SUPPRESSED))
        elif not may_receive(basis, None):
            rows.append(row(None, number, SKIPPED, SKIP_NO_CONSENT))
        else:
            rows.append(row(None, number, QUEUED, ""))
    return rows, last_contact_id, last


# PostgreSQL: a chunk in one statement, its varying columns as arrays. psycopg's
# executemany sent one INSERT a row, and each fired the tally trigger, which appended
# a delta row: 1,000,000 of them for a send to the whole city, folded before commit
# but left behind as 6,370 pages of dead rows in `campaign_tally` that every read of
# the live figures scanned (13 to 24 ms for `tocsin status`).
_PG_INSERT = text("""
INSERT INTO message (campaign_id, contact_id, number, state, reason, priority, attempts,
    next_attempt_at, lease_owner, provider_ref, updated_at)
SELECT :campaign_id, v.contact_id, v.number, v.state, v.reason, :priority, :attempts,
    :next_attempt_at, :lease_owner, :provider_ref, :updated_at
FROM unnest(CAST(:contact_ids AS integer[]), CAST(:numbers AS text[]),
    CAST(:states AS text[]), CAST(:reasons AS text[])) AS v(contact_id, number, state, reason)
ON CONFLICT ON CONSTRAINT uq_message_campaign_number DO NOTHING""")
_VARYING = ("contact_id", "number", "state", "reason")


def _insert_ignoring_duplicates(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """(campaign, number) is unique: an enqueue run twice never doubles a message."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        shared = {k: v for k, v in rows[0].items() if k not in _VARYING}
        if set(rows[0]) == {*shared, *_VARYING} and all(
            row[k] == v for row in rows for k, v in shared.items()
        ):
            # contact_ids, numbers, states, reasons
            arrays = {f"{name}s": [row[name] for row in rows] for name in _VARYING}
            conn.execute(_PG_INSERT, shared | arrays)
            return
    stmt: Any
    table = message_table
    if conn.dialect.name == "postgresql":
        stmt = postgresql.insert(table).on_conflict_do_nothing(
            constraint="uq_message_campaign_number"
        )
    elif conn.dialect.name == "sqlite":
        stmt = sqlite.insert(table).on_conflict_do_nothing()
    else:
        stmt = insert(table)
    conn.execute(stmt, rows)


def state_counts(session: Session, campaign_ids: Collection[int]) -> dict[int, dict[str, int]]:
    """Messages per ledger state of each campaign, every state present (the `--json`
    shape), from the tallies the ledger keeps (console.sending.tallies)."""
    return campaign_counts(session, campaign_ids)


def _counts(session: Session, campaign_id: int) -> dict[str, int]:
    return state_counts(session, [campaign_id])[campaign_id]
