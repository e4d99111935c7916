"""The send queue: claim under a lease, record answers and reports, expire leases.

Every function is one short transaction, so a worker killed at any point leaves the
ledger in a state the next worker (or the lease sweep) can finish: a message is
`sending` only while a lease covers it, and an expired lease makes it `uncertain`,
never silently re-sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, bindparam, insert, select, update
from sqlmodel import Session

from console.ledger import (
    FAILED,
    QUEUED,
    REJECTED,
    SENDING,
    SUBMITTED,
    UNCERTAIN,
    can_move,
)
from console.providers.base import DeliveryReport, SendResult
from storage.engine import is_sqlite, write_session
from storage.models import Campaign, DeliveryEvent, Message

# Campaigns whose messages may be claimed.
ACTIVE = ("queued", "running")
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


def claim_batch(
    engine: Engine, owner: str, now: datetime, lease_seconds: int, limit: int
) -> list[Claimed]:
    """Take up to `limit` due messages, emergencies first, and commit them `sending`.

    PostgreSQL: FOR UPDATE SKIP LOCKED lets several workers share the queue without
    waiting on each other or taking the same row. SQLite has one worker (the sender
    lease), and BEGIN IMMEDIATE makes the read and the update one step.
    """
    message: Any = Message
    campaign: Any = Campaign
    with write_session(engine) as session:
        stmt = (
            select(message.id, message.campaign_id, message.number, message.attempts,
                   campaign.text, campaign.sender_id, campaign.kind)
            .join(campaign, campaign.id == message.campaign_id)
            .where(message.state == QUEUED, message.next_attempt_at <= now,
                   campaign.status.in_(ACTIVE))
            .order_by(message.priority.desc(), message.next_attempt_at, message.id)
            .limit(limit)
        )
        if not is_sqlite(engine):
            stmt = stmt.with_for_update(skip_locked=True, of=message)
        rows = session.execute(stmt).all()
        if not rows:
            return []
        ids = [row.id for row in rows]
        session.execute(
            update(message)
            .where(message.id.in_(ids), message.state == QUEUED)
            .values(state=SENDING, lease_owner=owner,
                    lease_expires_at=now + timedelta(seconds=lease_seconds),
                    attempts=message.attempts + 1, updated_at=now)
        )
        campaign_ids = {row.campaign_id for row in rows}
        session.execute(
            update(campaign).where(campaign.id.in_(campaign_ids), campaign.status == "queued")
            .values(status="running")
        )
    return [
        Claimed(row.id, row.campaign_id, row.number, row.text, row.sender_id,
                row.attempts + 1, row.kind == "emergency")
        for row in rows
    ]


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
    `uncertain`) is left as it is: the answer is still recorded as an event.
    """
    by_id = {c.message_id: c for c in claimed}
    answered = [r for r in results if r.message_id in by_id]
    if not answered:
        return {}
    message: Any = Message
    table: Any = Message.__table__  # type: ignore[attr-defined]
    events: Any = DeliveryEvent.__table__  # type: ignore[attr-defined]
    new_states: dict[int, str] = {}
    # Three statements for the whole batch (hot path: one commit per few answers).
    with write_session(engine) as session:
        # FOR UPDATE (PostgreSQL): a delivery report for one of these rows waits for
        # this commit instead of reading a state we are about to change.
        held = {
            row.id: row for row in session.execute(
                select(message.id, message.provider_ref, message.next_attempt_at,
                       message.reason)
                .where(message.id.in_([r.message_id for r in answered]),
                       message.state == SENDING, message.lease_owner == owner)
                .order_by(message.id)
                .with_for_update())
        }
        updates: list[dict[str, Any]] = []
        event_rows: list[dict[str, Any]] = []
        for result in answered:
            values = _values_for(result, by_id[result.message_id], now, max_attempts)
            current = held.get(result.message_id)
            if current is not None:
                updates.append({
                    "mid": result.message_id, "new_state": values["state"],
                    "new_reason": values.get("reason", current.reason),
                    "new_ref": values.get("provider_ref", current.provider_ref),
                    "new_next": values.get("next_attempt_at", current.next_attempt_at),
                })
                new_states[result.message_id] = values["state"]
            event_rows.append({
                "message_id": result.message_id, "state": values["state"],
                "applied": current is not None, "source": "send",
                "detail": (result.reason or result.provider_ref)[:500], "at": now})
        if updates:
            session.execute(
                update(table)
                .where(table.c.id == bindparam("mid"), table.c.state == SENDING,
                       table.c.lease_owner == owner)
                .values(state=bindparam("new_state"), reason=bindparam("new_reason"),
                        provider_ref=bindparam("new_ref"),
                        next_attempt_at=bindparam("new_next"), lease_owner="",
                        lease_expires_at=None, updated_at=now),
                updates,
            )
        session.execute(insert(events), event_rows)
    return new_states


def _values_for(result: SendResult, item: Claimed, now: datetime,
                max_attempts: int) -> dict[str, Any]:
    reason = result.reason[:500]
    if result.outcome == "submitted":
        return {"state": SUBMITTED, "provider_ref": result.provider_ref[:100], "reason": reason}
    if result.outcome == "retry":
        if item.attempts >= max_attempts:
            return {"state": FAILED,
                    "reason": f"gave up after {item.attempts} attempts: {reason}"[:500]}
        delay = backoff(item.attempts, result.retry_after)
        return {"state": QUEUED, "reason": reason,
                "next_attempt_at": now + timedelta(seconds=delay)}
    if result.outcome == "unknown":
        if item.emergency:
            # A duplicate is better than a miss: re-send at once.
            return {"state": QUEUED, "reason": f"re-sent after: {reason}"[:500]}
        return {"state": UNCERTAIN, "reason": reason}
    return {"state": FAILED if result.outcome == "failed" else REJECTED, "reason": reason}


def release(engine: Engine, owner: str, claimed: Sequence[Claimed], now: datetime,
            reason: str) -> None:
    """Put claimed messages back untouched (the provider was never called for them)."""
    message: Any = Message
    with write_session(engine) as session:
        session.execute(
            update(message)
            .where(message.id.in_([c.message_id for c in claimed]),
                   message.state == SENDING, message.lease_owner == owner)
            .values(state=QUEUED, lease_owner="", lease_expires_at=None,
                    attempts=message.attempts - 1, reason=reason[:500], updated_at=now)
        )


def expire_leases(engine: Engine, now: datetime) -> int:
    """`sending` past its lease: the provider may or may not have it -> `uncertain`.

    Emergency campaigns re-send them at once; the others hold them for the operator.
    """
    message: Any = Message
    campaign: Any = Campaign
    with write_session(engine) as session:
        expired = session.execute(
            select(message.id, campaign.resend_uncertain)
            .join(campaign, campaign.id == message.campaign_id)
            .where(message.state == SENDING, message.lease_expires_at < now)
        ).all()
        for message_id, resend in expired:
            state = QUEUED if resend else UNCERTAIN
            reason = "lease expired during the provider call" + (
                "; re-sent (emergency)" if resend else "")
            session.execute(
                update(message).where(message.id == message_id, message.state == SENDING)
                .values(state=state, reason=reason, lease_owner="", lease_expires_at=None,
                        updated_at=now)
            )
            _event(session, message_id, UNCERTAIN, True, "lease", reason, now)
    return len(expired)


def apply_report(engine: Engine, report: DeliveryReport, now: datetime) -> bool:
    """Apply a delivery report unless it would move the message backwards.

    Reports arrive twice and out of order: a duplicate or an older report is kept as
    an event, not applied.
    """
    message: Any = Message
    with write_session(engine) as session:
        if report.message_id is not None:
            where = message.id == report.message_id
        elif report.provider_ref:
            where = message.provider_ref == report.provider_ref
        else:
            return False
        # Locked (PostgreSQL) so that the answer to the submit, committed concurrently,
        # cannot slip between this read and the update below.
        found = session.execute(
            select(message.id, message.state).where(where).with_for_update()).first()
        if found is None:
            return False
        message_id, current = found
        applied = current != report.state and can_move(current, report.state)
        if applied:
            applied = bool(session.execute(
                update(message).where(and_(message.id == message_id,
                                           message.state == current))
                .values(state=report.state, reason=report.provider_status[:500],
                        lease_owner="", lease_expires_at=None, updated_at=now)
            ).rowcount)  # type: ignore[attr-defined]
        _event(session, message_id, report.state, applied, "report",
               report.provider_status, now)
    return applied


def _event(session: Session, message_id: int, state: str, applied: bool, source: str,
           detail: str, at: datetime) -> None:
    session.add(DeliveryEvent(message_id=message_id, state=state, applied=applied,
                              source=source, detail=detail[:500], at=at))


def finish_campaigns(engine: Engine) -> int:
    """A running campaign with nothing left to send or decide is done."""
    campaign: Any = Campaign
    message: Any = Message
    open_states = (QUEUED, SENDING, UNCERTAIN)
    with write_session(engine) as session:
        return int(session.execute(
            update(campaign)
            .where(campaign.status == "running",
                   ~select(message.id).where(message.campaign_id == campaign.id,
                                             message.state.in_(open_states)).exists())
            .values(status="done")
        ).rowcount)  # type: ignore[attr-defined]
