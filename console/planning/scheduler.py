"""The scheduler, run by `tocsin worker`: due occurrences become campaigns, once.

Each occurrence is keyed (schedule, local date-time) by a unique row written in the
very transaction that creates its campaign: a worker killed half-way leaves neither,
and a second worker (PostgreSQL) or a restarted one that tries the same occurrence
hits the key and makes nothing. An occurrence found later than the grace period
(the worker was down) is recorded as missed and waits for the operator.

Its campaigns carry the end of the slot they may send in (`send_until`, which the
claim obeys) and their valid-until: each tick moves `send_until` to the end of the
current allowed slot, and skips what is still queued past the valid-until.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from console.audit import append_audit
from console.context import Context
from console.errors import TocsinError
from console.planning.fatigue import capped_contacts
from console.planning.rules import VALID_UNTIL, send_rules
from console.planning.schedules import Occurrence, occurrences
from console.planning.service import (
    DEFAULT_VALID_HOURS,
    PlanError,
    event_reminder_day,
    get_schedule,
)
from console.roles import Role
from console.sending.campaigns import (
    SKIP_FATIGUE_CAP,
    Audience,
    CampaignRequest,
    create_campaign,
)
from console.sending.states import QUEUED, SKIPPED
from storage.engine import read_session, write_session
from storage.models import Campaign, Message, Schedule
from storage.models import Occurrence as OccurrenceRow

log = logging.getLogger("tocsin.scheduler")

# Due schedules handled per tick (the rest wait for the next one, seconds later).
TICK_BATCH = 200
# Occurrences walked per schedule per tick (a schedule down for a long time).
WALK_LIMIT = 2000


@dataclass
class TickResult:
    sent: int = 0
    missed: int = 0
    blocked: int = 0
    duplicates: int = 0
    expired: int = 0


def tick(ctx: Context, now: datetime | None = None) -> TickResult:
    """One pass: fire what is due, then keep the planned campaigns within their slots."""
    now = now or ctx.clock.now()
    result = TickResult()
    with read_session(ctx.engine) as session:
        due = list(
            session.execute(
                select(Schedule)
                .where(col(Schedule.status) == "active", col(Schedule.next_due_at) <= now)
                .order_by(col(Schedule.next_due_at))
                .limit(TICK_BATCH)
            ).scalars()
        )
    for schedule in due:
        try:
            _advance(ctx, schedule, now, result)
        except (IntegrityError, PlanError, ValueError, TocsinError) as exc:
            # One broken plan (a topic removed from config, an impossible rule) must
            # not stop the others nor the sender: it is logged and retried later.
            log.error("planned send #%s: %s", schedule.id, exc)
    _keep_in_slot(ctx, now, result)
    return result


def _advance(ctx: Context, schedule: Schedule, now: datetime, result: TickResult) -> None:
    rules = send_rules(ctx.config)
    try:
        day = event_reminder_day(ctx, schedule)
    except PlanError:
        day = None
    found = occurrences(
        schedule,
        rules,
        after_key=schedule.cursor_local,
        reminder_day=day,
        limit=WALK_LIMIT,
        until=now,
    )
    cursor = schedule.cursor_local
    next_due: datetime | None = None
    for occurrence in found:
        if occurrence.due > now:
            next_due = occurrence.due
            break
        _fire(ctx, schedule, occurrence, now, result)
        cursor = occurrence.key
    else:
        if len(found) >= WALK_LIMIT:
            next_due = now
    with write_session(ctx.engine) as session:
        # Another worker may have advanced it meanwhile: the cursor only moves forward.
        session.execute(
            update(Schedule)
            .where(
                col(Schedule.id) == schedule.id,
                col(Schedule.status) == "active",
                col(Schedule.cursor_local) <= cursor,
            )
            .values(
                cursor_local=cursor,
                next_due_at=next_due,
                status="active" if next_due is not None else "done",
                updated_at=now,
            )
        )


def _fire(
    ctx: Context, schedule: Schedule, occurrence: Occurrence, now: datetime, result: TickResult
) -> None:
    assert schedule.id is not None
    with read_session(ctx.engine) as session:
        if _recorded(session, schedule.id, occurrence.key):
            return
    grace = timedelta(minutes=ctx.config.planning.grace_minutes)
    if occurrence.held is not None:
        if _record(ctx, schedule, occurrence, "blocked", occurrence.held.reason, now):
            result.blocked += 1
        return
    if now - occurrence.due > grace:
        if _record(ctx, schedule, occurrence, "missed", "late", now):
            result.missed += 1
            log.warning(
                "planned send #%d: occurrence %s missed (due %s); waiting for the operator",
                schedule.id,
                occurrence.key,
                occurrence.due.isoformat(),
            )
        return
    if materialise(ctx, schedule, occurrence, now):
        result.sent += 1
    else:
        result.duplicates += 1


def _recorded(session: Session, schedule_id: int, key: str) -> bool:
    return (
        session.execute(
            select(col(OccurrenceRow.id)).where(
                col(OccurrenceRow.schedule_id) == schedule_id,
                col(OccurrenceRow.local_key) == key,
            )
        ).first()
        is not None
    )


def _record(
    ctx: Context, schedule: Schedule, occurrence: Occurrence, state: str, reason: str, now: datetime
) -> bool:
    assert schedule.id is not None
    try:
        with write_session(ctx.engine) as session:
            session.add(
                OccurrenceRow(
                    schedule_id=schedule.id,
                    local_key=occurrence.key,
                    due_at=occurrence.due,
                    state=state,
                    reason=reason,
                    recorded_at=now,
                )
            )
            session.flush()
            append_audit(
                session,
                at=now,
                operator="scheduler",
                action=f"plan.{state}",
                target=f"schedule:{schedule.id}",
                details={"occurrence": occurrence.key, "reason": reason},
            )
    except IntegrityError:
        return False
    return True


def _as_planner(ctx: Context, schedule: Schedule) -> Context:
    """The campaign is made in the name of who planned it (authorised then)."""
    return dataclasses.replace(
        ctx,
        operator=f"{schedule.created_by} (plan #{schedule.id})",
        role=max(ctx.role, Role.OPERATOR),
    )


def materialise(
    ctx: Context,
    schedule: Schedule,
    occurrence: Occurrence,
    now: datetime,
    *,
    replace_state: str = "",
) -> bool:
    """Make the occurrence's campaign and its key row in one transaction. False when
    the occurrence was already made (another worker, a retry after a crash).
    `replace_state`: a recorded occurrence in that state (missed) becomes sent."""
    schedule_id = schedule.id
    assert schedule_id is not None
    rules = send_rules(ctx.config)
    valid_until = schedule.valid_until or occurrence.due + timedelta(hours=DEFAULT_VALID_HOURS)
    start = max(now, occurrence.due)
    send_until = min(rules.window_end(schedule.topic, start), valid_until)
    request = CampaignRequest(
        topic=schedule.topic,
        text=schedule.text,
        sender_id=schedule.sender_id,
        audience=Audience.from_json(schedule.audience),
        kind="planned",
        start_at=start,
        schedule_id=schedule.id,
        send_until=send_until,
        valid_until=valid_until,
        capped=(
            frozenset()
            if schedule.topic == ctx.config.alert.topic
            else capped_contacts(ctx.engine, ctx.config, start)
        ),
    )

    def record(session: Session, campaign_id: int) -> None:
        if replace_state:
            changed = session.execute(
                update(OccurrenceRow)
                .where(
                    col(OccurrenceRow.schedule_id) == schedule.id,
                    col(OccurrenceRow.local_key) == occurrence.key,
                    col(OccurrenceRow.state) == replace_state,
                )
                .values(state="sent", campaign_id=campaign_id, reason="operator")
            ).rowcount  # type: ignore[attr-defined]
            if not changed:
                raise _AlreadyDone
            return
        session.add(
            OccurrenceRow(
                schedule_id=schedule_id,
                local_key=occurrence.key,
                due_at=occurrence.due,
                state="sent",
                reason=",".join(b.reason for b in occurrence.moved_by),
                campaign_id=campaign_id,
                recorded_at=now,
            )
        )
        session.flush()

    try:
        made = create_campaign(_as_planner(ctx, schedule), request, in_transaction=record)
    except (IntegrityError, _AlreadyDone):
        return False
    capped = made.skipped.get(SKIP_FATIGUE_CAP, 0)
    if capped:
        with write_session(ctx.engine) as session:
            session.execute(
                update(OccurrenceRow)
                .where(col(OccurrenceRow.campaign_id) == made.campaign_id)
                .values(capped=capped)
            )
    return True


class _AlreadyDone(Exception):
    pass


def resolve_missed(ctx: Context, schedule_id: int, action: str) -> int:
    """The operator sends (now, or at the next allowed slot) or drops the missed
    occurrences of a planned send. Returns how many were resolved."""
    ctx.require(Role.OPERATOR)
    schedule = get_schedule(ctx, schedule_id)
    now = ctx.clock.now()
    rules = send_rules(ctx.config)
    with read_session(ctx.engine) as session:
        missed = list(
            session.execute(
                select(OccurrenceRow).where(
                    col(OccurrenceRow.schedule_id) == schedule_id,
                    col(OccurrenceRow.state) == "missed",
                )
            ).scalars()
        )
    done = 0
    for row in missed:
        if action == "drop":
            with write_session(ctx.engine) as session:
                changed = session.execute(
                    update(OccurrenceRow)
                    .where(col(OccurrenceRow.id) == row.id, col(OccurrenceRow.state) == "missed")
                    .values(state="dropped", reason="operator")
                ).rowcount  # type: ignore[attr-defined]
                if changed:
                    append_audit(
                        session,
                        at=now,
                        operator=ctx.operator,
                        action="plan.drop",
                        target=f"schedule:{schedule_id}",
                        details={"occurrence": row.local_key},
                    )
                    done += 1
            continue
        due, moved = rules.next_allowed(schedule.topic, now)
        valid_until = schedule.valid_until or row.due_at + timedelta(hours=DEFAULT_VALID_HOURS)
        if due >= valid_until:
            raise PlanError(
                f"occurrence {row.local_key} is past its valid-until "
                f"({valid_until.isoformat()}): it can only be dropped",
                "plan_past_valid",
                key=row.local_key,
            )
        occurrence = Occurrence(row.local_key, row.due_at, due, moved)
        operator_ctx = dataclasses.replace(ctx)
        if materialise(operator_ctx, schedule, occurrence, now, replace_state="missed"):
            done += 1
    return done


def _keep_in_slot(ctx: Context, now: datetime, result: TickResult) -> None:
    """Planned campaigns send only within allowed slots and before their valid-until."""
    rules = send_rules(ctx.config)
    with read_session(ctx.engine) as session:
        running = list(
            session.execute(
                select(
                    col(Campaign.id),
                    col(Campaign.topic),
                    col(Campaign.send_until),
                    col(Campaign.valid_until),
                ).where(
                    col(Campaign.schedule_id).is_not(None),
                    col(Campaign.status).in_(("queued", "running")),
                )
            ).all()
        )
    for campaign_id, topic, send_until, valid_until in running:
        if valid_until is not None and valid_until <= now:
            with write_session(ctx.engine) as session:
                expired = session.execute(
                    update(Message)
                    .where(col(Message.campaign_id) == campaign_id, col(Message.state) == QUEUED)
                    .values(state=SKIPPED, reason=VALID_UNTIL, updated_at=now)
                ).rowcount  # type: ignore[attr-defined]
                if expired:
                    append_audit(
                        session,
                        at=now,
                        operator="scheduler",
                        action="campaign.valid_until",
                        target=f"campaign:{campaign_id}",
                        details={"skipped": int(expired)},
                    )
            result.expired += int(expired)
            continue
        if send_until is not None and send_until > now:
            continue
        if rules.blocked(topic, now) is not None:
            continue
        end = rules.window_end(topic, now)
        if valid_until is not None:
            end = min(end, valid_until)
        with write_session(ctx.engine) as session:
            session.execute(
                update(Campaign).where(col(Campaign.id) == campaign_id).values(send_until=end)
            )
