"""The send queue: claim under a lease, record answers and reports, expire leases.

Every function is one short transaction, so a worker killed at any point leaves the
ledger in a state the next worker (or the lease sweep) can finish: a message is
`sending` only while a lease covers it, and an expired lease makes it `uncertain`,
never silently re-sent.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, or_, select, update
from sqlmodel import Session

from console.sending.providers.base import DeliveryReport, SendResult
from console.sending.states import (
    CLAIMABLE_STATUSES,
    FAILED,
    QUEUED,
    REJECTED,
    SENDING,
    SKIPPED,
    SUBMITTED,
    UNCERTAIN,
    CampaignStatus,
    can_move,
)
from storage.engine import read_session, write_session
from storage.models import DeliveryEvent, campaign_table, message_table
from storage.rawsql import Dialect, dialect, write_cursor

ACTIVE = CLAIMABLE_STATUSES
# Retry backoff: 2, 4, 8 ... seconds, at most 5 minutes.
BACKOFF_BASE_S = 2.0
BACKOFF_MAX_S = 300.0


@dataclass(frozen=True)
class Claimed:
    message_id: int
    campaign_id: int
    number: str
    text: str
    sender_id: str
    attempts: int
    emergency: bool


def backoff(attempts: int, retry_after: float | None) -> float:
    """Seconds before the next attempt; the provider's Retry-After wins when longer."""
    delay = min(BACKOFF_BASE_S * 2 ** max(attempts - 1, 0), BACKOFF_MAX_S)
    return float(max(delay, retry_after or 0.0))


# Campaigns whose messages may be claimed now, the most urgent tier first. A planned
# occurrence's campaign only within its allowed slot (`send_until`, see
# console.planning.scheduler).
_CLAIMABLE = """
SELECT id, priority, text, sender_id, kind, status FROM campaign
WHERE status IN (:queued, :running) AND start_at <= :now
  AND (send_until IS NULL OR send_until > :now)
ORDER BY priority DESC, id"""
# One campaign's due messages, the longest due first: a range of
# ix_message_campaign_state (campaign, state, next_attempt_at, id), so a claim never
# sorts a big campaign's queue, nor reads what is not due yet.
_CLAIM_ONE = """
SELECT id, number, attempts FROM message
WHERE campaign_id = :campaign AND state = :queued AND next_attempt_at <= :now
ORDER BY next_attempt_at, id
LIMIT :limit"""
# The ids lead: `+state` (SQLite), `state || ''` (PostgreSQL) keep it off the state
# indexes (with `state = ?` SQLite walked every queued message of the ledger to find
# these 200: 93 ms a claim with 762k queued, holding the write lock).
_TAKE = """
UPDATE message SET state = :sending, lease_owner = :owner, lease_expires_at = :expires,
    attempts = attempts + 1, updated_at = :now
WHERE {ids} AND {state} = :queued"""
# PostgreSQL: the pick and the take in one statement (one round trip a campaign).
# The pick (FOR UPDATE SKIP LOCKED: several workers share the queue without waiting
# on each other or taking the same row) runs once, as an array, and the UPDATE finds
# its rows by primary key whatever the planner knows of the queue.
_PICK_AND_TAKE = """
UPDATE message SET state = :sending, lease_owner = :owner, lease_expires_at = :expires,
    attempts = attempts + 1, updated_at = :now
WHERE id = ANY(ARRAY(
    SELECT id FROM message
    WHERE campaign_id = :campaign AND state = :queued AND next_attempt_at <= :now
    ORDER BY next_attempt_at, id
    LIMIT :limit FOR UPDATE SKIP LOCKED)) AND (state || '') = :queued
RETURNING id, number, attempts, next_attempt_at"""


@dataclass(frozen=True)
class _Claimable:
    id: int
    priority: int
    text: str
    sender_id: str
    emergency: bool


def claim_batch(
    engine: Engine,
    owner: str,
    now: datetime,
    lease_seconds: int,
    limit: int,
    campaigns: Collection[int] | None = None,
) -> list[Claimed]:
    """Take up to `limit` due messages, fairly, and commit them `sending`.

    The order (docs/decisions.md, "Priority between alerts"): only the most urgent
    tier that has anything due is served (planned sends wait while any alert has a
    message due), and within it every campaign gets an equal share of the claim, so
    a small alert confirmed while an all-town one is sending starts at once instead
    of queuing behind it. `campaigns` restricts the claim to those (the worker's
    quick claim for an alert it has just seen).

    PostgreSQL: FOR UPDATE SKIP LOCKED lets several workers share the queue without
    waiting on each other or taking the same row. SQLite has one worker (the sender
    lease), and BEGIN IMMEDIATE makes the reads and the updates one step.
    """
    db = dialect(engine)
    stamp = db.datetime(now)
    taken: list[Claimed] = []
    with write_cursor(engine) as cursor:
        cursor.execute(
            db.sql(_CLAIMABLE),
            {"queued": CampaignStatus.QUEUED, "running": CampaignStatus.RUNNING, "now": stamp},
        )
        rows = cursor.fetchall()
        found = [
            _Claimable(cid, priority, text, sender_id, kind == "emergency")
            for cid, priority, text, sender_id, kind, _ in rows
            if campaigns is None or cid in campaigns
        ]
        starting = {cid for cid, *_, status in rows if status == CampaignStatus.QUEUED}
        tiers: dict[int, list[_Claimable]] = {}
        for campaign in found:
            tiers.setdefault(campaign.priority, []).append(campaign)
        for tier in tiers.values():  # the most urgent first (ORDER BY priority DESC)
            taken = _claim_tier(cursor, db, tier, owner, now, lease_seconds, limit)
            if taken:
                break
        starting &= {c.campaign_id for c in taken}
        if starting:
            cursor.execute(
                db.sql(
                    f"UPDATE campaign SET status = :running WHERE {db.in_ids('id', 'ids')} "
                    "AND status = :queued"
                ),
                {
                    "running": CampaignStatus.RUNNING,
                    "queued": CampaignStatus.QUEUED,
                    "ids": db.ids(starting),
                },
            )
    return taken


def _unindexed(db: Dialect, column: str) -> str:
    """The (text) column, kept off the indexes: a unary + is SQLite's way to say so; on
    PostgreSQL an expression no index has. Without it, PostgreSQL right after a big
    enqueue (its statistics not yet gathered) took the state index too, walking every
    queued message for each claim: 56 ms a claim with 100k queued, the worker at 500
    msg/s instead of 9,000 until the next ANALYZE."""
    return f"+{column}" if db.sqlite else f"({column} || '')"


def _claim_tier(
    cursor: Any,
    db: Dialect,
    tier: list[_Claimable],
    owner: str,
    now: datetime,
    lease_seconds: int,
    limit: int,
) -> list[Claimed]:
    """Equal shares for the tier's campaigns; what one cannot use goes to the others."""
    stamp = db.datetime(now)
    expires = db.datetime(now + timedelta(seconds=lease_seconds))
    taken: list[Claimed] = []
    open_ = list(tier)
    while open_ and len(taken) < limit:
        remaining = limit - len(taken)
        share = max(1, -(-remaining // len(open_)))  # ceil: nobody gets 0
        still_open = []
        for campaign in open_:
            want = min(share, limit - len(taken))
            if want <= 0:
                break
            rows = _take(cursor, db, campaign.id, want, owner, stamp, expires)
            if not rows:
                continue
            taken.extend(
                Claimed(
                    message_id,
                    campaign.id,
                    number,
                    campaign.text,
                    campaign.sender_id,
                    attempts + 1,
                    campaign.emergency,
                )
                for message_id, number, attempts in rows
            )
            if len(rows) == want:
                still_open.append(campaign)
        open_ = still_open
    return taken


def _take(
    cursor: Any, db: Dialect, campaign: int, want: int, owner: str, stamp: Any, expires: Any
) -> list[tuple[int, str, int]]:
    """Up to `want` due messages of `campaign` committed `sending` by this claim, the
    longest due first: (id, number, attempts before this one)."""
    if not db.sqlite:
        cursor.execute(
            db.sql(_PICK_AND_TAKE),
            {
                "campaign": campaign,
                "queued": QUEUED,
                "now": stamp,
                "limit": want,
                "sending": SENDING,
                "owner": owner,
                "expires": expires,
            },
        )
        taken = sorted(cursor.fetchall(), key=lambda row: (row[3], row[0]))
        return [(message_id, number, attempts - 1) for message_id, number, attempts, _ in taken]
    cursor.execute(
        db.sql(_CLAIM_ONE), {"campaign": campaign, "queued": QUEUED, "now": stamp, "limit": want}
    )
    rows: list[tuple[int, str, int]] = cursor.fetchall()
    if rows:
        cursor.execute(
            db.sql(_TAKE.format(ids=db.in_ids("id", "ids"), state=_unindexed(db, "state"))),
            {
                "sending": SENDING,
                "owner": owner,
                "queued": QUEUED,
                "now": stamp,
                "expires": expires,
                "ids": db.ids([row[0] for row in rows]),
            },
        )
    return rows


_RECORD = """
UPDATE message SET state = :state, reason = :reason,
    provider_ref = COALESCE(:ref, provider_ref),
    next_attempt_at = COALESCE(:next, next_attempt_at),
    lease_owner = '', lease_expires_at = NULL, updated_at = :now
WHERE id = :id AND state = :sending AND lease_owner = :owner"""
_EVENT = """
INSERT INTO delivery_event (message_id, state, applied, source, detail, at)
VALUES (:message_id, :state, :applied, :source, :detail, :at)"""
# PostgreSQL: the whole batch as one statement each, its columns bound as arrays.
# psycopg's executemany sends one statement a row: each UPDATE fired the tally
# trigger (two delta rows a message) and each row was planned and run apart. Only
# rows the SELECT ... FOR UPDATE before it found `sending` under our lease are in
# the arrays, and they stay locked: the UPDATE needs no other condition than their
# ids. And it must have none: with `state = 'sending' AND lease_owner = ...` the
# planner (no statistics right after an enqueue) expected 1 row and joined the batch
# to each row in a loop, 400 x 400 comparisons, 40 ms for a batch of 400.
_RECORD_ARRAYS = """
UPDATE message AS m SET state = v.state, reason = v.reason,
    provider_ref = COALESCE(v.ref, m.provider_ref),
    next_attempt_at = COALESCE(v.next, m.next_attempt_at),
    lease_owner = '', lease_expires_at = NULL, updated_at = :now
FROM unnest(CAST(:ids AS integer[]), CAST(:states AS text[]), CAST(:reasons AS text[]),
            CAST(:refs AS text[]), CAST(:nexts AS timestamptz[]))
    AS v(id, state, reason, ref, next)
WHERE m.id = ANY(:ids) AND m.id = v.id"""
_EVENT_ARRAYS = """
INSERT INTO delivery_event (message_id, state, applied, source, detail, at)
SELECT v.id, v.state, v.applied, :source, v.detail, :at
FROM unnest(CAST(:ids AS integer[]), CAST(:states AS text[]), CAST(:applied AS boolean[]),
            CAST(:details AS text[])) AS v(id, state, applied, detail)"""


def record_results(
    engine: Engine,
    owner: str,
    claimed: Sequence[Claimed],
    results: Sequence[SendResult],
    now: datetime,
    max_attempts: int,
) -> dict[int, str]:
    """Commit the provider's answers; returns the new state of each message.

    A message whose lease this worker no longer holds (it expired and was swept to
    `uncertain`) is left as it is: the answer is still recorded as an event. A
    message answered twice in the batch takes its first answer (the second is kept
    as an event, not applied).
    """
    by_id = {c.message_id: c for c in claimed}
    answered = [r for r in results if r.message_id in by_id]
    if not answered:
        return {}
    db = dialect(engine)
    stamp = db.datetime(now)
    new_states: dict[int, str] = {}
    # Three statements for the whole batch (hot path: one commit per few answers).
    with write_cursor(engine) as cursor:
        # FOR UPDATE (PostgreSQL): a delivery report for one of these rows waits for
        # this commit instead of reading a state we are about to change. By
        # ascending id, the order every writer locks messages in.
        cursor.execute(
            db.sql(
                f"SELECT id FROM message WHERE {db.in_ids('id', 'ids')} "
                f"AND {_unindexed(db, 'state')} = :sending "
                "AND lease_owner = :owner ORDER BY id" + db.for_update()
            ),
            {"ids": db.ids([r.message_id for r in answered]), "sending": SENDING, "owner": owner},
        )
        held = {row[0] for row in cursor.fetchall()}
        updates: list[tuple[int, str, str, str | None, datetime | None]] = []
        events: list[tuple[int, str, bool, str]] = []
        for result in answered:
            state, reason, ref, next_at = _answer(
                result, by_id[result.message_id], now, max_attempts
            )
            applied = result.message_id in held and result.message_id not in new_states
            if applied:
                updates.append((result.message_id, state, reason, ref, next_at))
                new_states[result.message_id] = state
            events.append(
                (result.message_id, state, applied, (result.reason or result.provider_ref)[:500])
            )
        if db.sqlite:
            _record_rows(cursor, db, owner, stamp, updates, events)
        else:
            _record_arrays(cursor, db, owner, stamp, updates, events)
    return new_states


def _record_rows(
    cursor: Any,
    db: Dialect,
    owner: str,
    stamp: Any,
    updates: Sequence[tuple[int, str, str, str | None, datetime | None]],
    events: Sequence[tuple[int, str, bool, str]],
) -> None:
    """SQLite: a prepared statement run per row, in the driver's own loop."""
    if updates:
        cursor.executemany(
            db.sql(_RECORD),
            [
                {
                    "id": message_id,
                    "state": state,
                    "reason": reason,
                    "ref": ref,
                    "next": db.datetime(next_at),
                    "now": stamp,
                    "sending": SENDING,
                    "owner": owner,
                }
                for message_id, state, reason, ref, next_at in updates
            ],
        )
    cursor.executemany(
        db.sql(_EVENT),
        [
            {
                "message_id": message_id,
                "state": state,
                "applied": applied,
                "source": "send",
                "detail": detail,
                "at": stamp,
            }
            for message_id, state, applied, detail in events
        ],
    )


def _record_arrays(
    cursor: Any,
    db: Dialect,
    owner: str,
    stamp: Any,
    updates: Sequence[tuple[int, str, str, str | None, datetime | None]],
    events: Sequence[tuple[int, str, bool, str]],
) -> None:
    """PostgreSQL: one UPDATE and one INSERT for the batch, whatever its size."""
    if updates:
        ids, states, reasons, refs, nexts = zip(*updates, strict=True)
        cursor.execute(
            db.sql(_RECORD_ARRAYS),
            {
                "ids": list(ids),
                "states": list(states),
                "reasons": list(reasons),
                "refs": list(refs),
                "nexts": [db.datetime(n) for n in nexts],
                "now": stamp,
            },
        )
    message_ids, states, applied, details = zip(*events, strict=True)
    cursor.execute(
        db.sql(_EVENT_ARRAYS),
        {
            "ids": list(message_ids),
            "states": list(states),
            "applied": list(applied),
            "details": list(details),
            "source": "send",
            "at": stamp,
        },
    )


def _answer(
    result: SendResult, item: Claimed, now: datetime, max_attempts: int
) -> tuple[str, str, str | None, datetime | None]:
    """The new state, reason, provider ref and next attempt (None: left as they are)."""
    reason = result.reason[:500]
    if result.outcome == "submitted":
        return SUBMITTED, reason, result.provider_ref[:100], None
    if result.outcome == "retry":
        if item.attempts >= max_attempts:
            return FAILED, f"gave up after {item.attempts} attempts: {reason}"[:500], None, None
        delay = backoff(item.attempts, result.retry_after)
        return QUEUED, reason, None, now + timedelta(seconds=delay)
    if result.outcome == "unknown":
        if item.emergency:
            # A duplicate is better than a miss: re-send at once.
            return QUEUED, f"re-sent after: {reason}"[:500], None, None
        return UNCERTAIN, reason, None, None
    return FAILED if result.outcome == "failed" else REJECTED, reason, None, None


def release(
    engine: Engine,
    owner: str,
    claimed: Sequence[Claimed],
    now: datetime,
    reason: str,
    state: str = QUEUED,
) -> int:
    """Put claimed messages back untouched (the provider was never called for them):
    `queued` again, or `skipped` when their campaign was cancelled. Returns how many
    this worker still held."""
    if not claimed:
        return 0
    message = message_table.c
    with write_session(engine) as session:
        return int(
            session.execute(
                update(message_table)
                .where(
                    message.id.in_([c.message_id for c in claimed]),
                    message.state == SENDING,
                    message.lease_owner == owner,
                )
                .values(
                    state=state,
                    lease_owner="",
                    lease_expires_at=None,
                    attempts=message.attempts - 1,
                    reason=reason[:500],
                    updated_at=now,
                )
            ).rowcount  # type: ignore[attr-defined]
        )


@dataclass(frozen=True)
class Watch:
    """What the worker checks between provider calls: the status of the campaigns it
    holds messages of, and the alerts that may be claimed now."""

    statuses: dict[int, str]
    alerts: frozenset[int]


def watch(engine: Engine, now: datetime, held: Collection[int]) -> Watch:
    """One small read of the campaign table (the message table is not touched)."""
    campaign = campaign_table.c
    active = and_(
        campaign.status.in_(ACTIVE), campaign.kind == "emergency", campaign.start_at <= now
    )
    where = or_(active, campaign.id.in_(list(held))) if held else active
    with read_session(engine) as session:
        rows = session.execute(
            select(campaign.id, campaign.status, campaign.kind, campaign.start_at).where(where)
        ).all()
    return Watch(
        statuses={cid: status for cid, status, _, _ in rows},
        alerts=frozenset(
            cid
            for cid, status, kind, start_at in rows
            if status in ACTIVE and kind == "emergency" and _aware(start_at) <= now
        ),
    )


def _aware(value: datetime) -> datetime:
    # SQLite hands naive datetimes back; they are stored in UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


SWEEP_LIMIT = 5000


def skip_cancelled(engine: Engine, now: datetime) -> int:
    """A cancelled campaign keeps nothing queued: what came back after the cancel (an
    emergency's re-send after an unknown answer or an expired lease) is skipped too,
    and what a cancel left half-way. At most SWEEP_LIMIT a call: a short write."""
    campaign = campaign_table.c
    message = message_table.c
    with write_session(engine) as session:
        ids = list(
            session.execute(
                select(message.id)
                .where(
                    message.state == QUEUED,
                    message.campaign_id.in_(
                        select(campaign.id).where(campaign.status == CampaignStatus.CANCELLED)
                    ),
                )
                .limit(SWEEP_LIMIT)
            ).scalars()
        )
        if not ids:
            return 0
        return int(
            session.execute(
                update(message_table)
                .where(message.id.in_(ids), message.state == QUEUED)
                .values(state=SKIPPED, reason="cancelled", updated_at=now)
            ).rowcount  # type: ignore[attr-defined]
        )


def expire_leases(engine: Engine, now: datetime) -> int:
    """`sending` past its lease: the provider may or may not have it -> `uncertain`.

    Emergency campaigns re-send them at once; the others hold them for the operator.
    """
    message, campaign = message_table.c, campaign_table.c
    with write_session(engine) as session:
        expired = session.execute(
            select(message.id, campaign.resend_uncertain)
            .join(campaign_table, campaign.id == message.campaign_id)
            .where(message.state == SENDING, message.lease_expires_at < now)
            .order_by(message.id)  # the order every writer locks messages in
        ).all()
        for message_id, resend in expired:
            state = QUEUED if resend else UNCERTAIN
            reason = "lease expired during the provider call" + (
                "; re-sent (emergency)" if resend else ""
            )
            session.execute(
                update(message_table)
                .where(message.id == message_id, message.state == SENDING)
                .values(
                    state=state,
                    reason=reason,
                    lease_owner="",
                    lease_expires_at=None,
                    updated_at=now,
                )
            )
            _event(session, message_id, UNCERTAIN, True, "lease", reason, now)
    return len(expired)


def apply_report(engine: Engine, report: DeliveryReport, now: datetime) -> bool:
    """Apply one delivery report (see apply_reports)."""
    return apply_reports(engine, [report], now)[0]


def apply_reports(engine: Engine, reports: Sequence[DeliveryReport], now: datetime) -> list[bool]:
    """Apply delivery reports in one transaction, in their order; for each, whether
    it moved its message.

    Reports arrive twice and out of order: a duplicate or an older report is kept as
    an event, not applied. Several reports for one message in the same batch apply
    one after the other, as if they had come one by one.

    One read of the batch's messages, locked (PostgreSQL) by ascending id, the order
    every writer locks messages in: the worker's answers do the same, so the two
    never wait on each other in a circle (PostgreSQL would abort one as a deadlock),
    and an answer committed concurrently cannot slip between this read and the
    writes. Then the rules run here, report by report, and the batch is written as
    one UPDATE and one INSERT (one statement a row on SQLite, arrays on PostgreSQL):
    one report at a time through the ORM was a sixth of the worker's time.
    """
    if not reports:
        return []
    db = dialect(engine)
    ids = sorted({r.message_id for r in reports if r.message_id is not None})
    if ids and (ids[0] < _MIN_ID or ids[-1] > _MAX_ID):
        # As the databases refuse it bound alone (the report writer then applies the
        # batch's other reports one by one): no message has such an id.
        raise OverflowError(f"message id out of range in a delivery report: {ids[-1]}")
    refs = sorted({r.provider_ref for r in reports if r.message_id is None and r.provider_ref})
    with write_cursor(engine) as cursor:
        cursor.execute(
            db.sql(
                f"SELECT id, state, provider_ref FROM message WHERE {db.in_ids('id', 'ids')} "
                f"OR {db.in_ids('provider_ref', 'refs')} ORDER BY id" + db.for_update()
            ),
            {"ids": db.ids(ids), "refs": db.ids(refs)},
        )
        state: dict[int, str] = {}
        by_ref: dict[str, int] = {}
        for message_id, current, ref in cursor.fetchall():
            state[message_id] = current
            by_ref.setdefault(ref, message_id)  # the lowest id of a shared ref
        moved: dict[int, str] = {}  # message -> the provider status that last moved it
        events: list[tuple[int, str, bool, str]] = []
        applied_flags: list[bool] = []
        for report in reports:
            if report.message_id is not None:
                message_id = report.message_id if report.message_id in state else None
            else:
                message_id = by_ref.get(report.provider_ref) if report.provider_ref else None
            if message_id is None:
                applied_flags.append(False)
                continue
            current = state[message_id]
            applied = current != report.state and can_move(current, report.state)
            if applied:
                state[message_id] = str(report.state)
                moved[message_id] = report.provider_status[:500]
            applied_flags.append(applied)
            events.append((message_id, str(report.state), applied, report.provider_status[:500]))
        _write_reports(cursor, db, [(m, state[m], moved[m]) for m in sorted(moved)], events, now)
    return applied_flags


_MIN_ID, _MAX_ID = -(2**63), 2**63 - 1
_REPORT = """
UPDATE message SET state = :state, reason = :reason, lease_owner = '',
    lease_expires_at = NULL, updated_at = :now
WHERE id = :id"""
_REPORT_ARRAYS = """
UPDATE message AS m SET state = v.state, reason = v.reason, lease_owner = '',
    lease_expires_at = NULL, updated_at = :now
FROM unnest(CAST(:ids AS integer[]), CAST(:states AS text[]), CAST(:reasons AS text[]))
    AS v(id, state, reason)
WHERE m.id = ANY(:ids) AND m.id = v.id"""


def _write_reports(
    cursor: Any,
    db: Dialect,
    updates: Sequence[tuple[int, str, str]],
    events: Sequence[tuple[int, str, bool, str]],
    now: datetime,
) -> None:
    stamp = db.datetime(now)
    if db.sqlite:
        if updates:
            cursor.executemany(
                db.sql(_REPORT),
                [
                    {"id": message_id, "state": new, "reason": reason, "now": stamp}
                    for message_id, new, reason in updates
                ],
            )
        if events:
            cursor.executemany(
                db.sql(_EVENT),
                [
                    {
                        "message_id": message_id,
                        "state": new,
                        "applied": applied,
                        "source": "report",
                        "detail": detail,
                        "at": stamp,
                    }
                    for message_id, new, applied, detail in events
                ],
            )
        return
    if updates:
        ids, states, reasons = zip(*updates, strict=True)
        cursor.execute(
            db.sql(_REPORT_ARRAYS),
            {"ids": list(ids), "states": list(states), "reasons": list(reasons), "now": stamp},
        )
    if events:
        message_ids, states, applied, details = zip(*events, strict=True)
        cursor.execute(
            db.sql(_EVENT_ARRAYS),
            {
                "ids": list(message_ids),
                "states": list(states),
                "applied": list(applied),
                "details": list(details),
                "source": "report",
                "at": stamp,
            },
        )


def _event(
    session: Session,
    message_id: int,
    state: str,
    applied: bool,
    source: str,
    detail: str,
    at: datetime,
) -> None:
    session.add(
        DeliveryEvent(
            message_id=message_id,
            state=state,
            applied=applied,
            source=source,
            detail=detail[:500],
            at=at,
        )
    )


def finish_campaigns(engine: Engine) -> int:
    """A running campaign with nothing left to send or decide is done (once its whole
    audience is enqueued: an emergency sends its first chunk before the rest is in)."""
    campaign, message = campaign_table.c, message_table.c
    open_states = (QUEUED, SENDING, UNCERTAIN)
    with write_session(engine) as session:
        return int(
            session.execute(
                update(campaign_table)
                .where(
                    campaign.status == CampaignStatus.RUNNING,
                    campaign.enqueued.is_(True),
                    ~select(message.id)
                    .where(message.campaign_id == campaign.id, message.state.in_(open_states))
                    .exists(),
                )
                .values(status=CampaignStatus.DONE)
            ).rowcount  # type: ignore[attr-defined]
        )
