"""Planning sends and events: add, preview, list, show, cancel, resolve; events add,
move, cancel. Every change is audited; operators plan, viewers look."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, select, update
from sqlmodel import Session, col

from console.audit import append_audit
from console.context import Context
from console.errors import TocsinError
from console.planning.fatigue import capped_contacts
from console.planning.rules import SendRules, send_rules
from console.planning.schedules import KEY_FORMAT, Occurrence, occurrences, preset_cron
from console.roles import Role
from console.sending.campaigns import Audience, CampaignRequest, check_sender_id, preview_campaign
from storage.engine import read_session, write_session
from storage.models import Event, Schedule
from storage.models import Occurrence as OccurrenceRow

When = Literal["at", "best_slot", "cron", "event"]
# A one-off or recurring occurrence not finished within this is never sent later.
DEFAULT_VALID_HOURS = 24


class PlanError(TocsinError):
    pass


def parse_offsets(text: str) -> tuple[int, ...]:
    """ "J-7,J-1" -> (7, 1)."""
    found: list[int] = []
    for part in text.split(","):
        cleaned = part.strip().upper()
        if not cleaned.startswith("J-") or not cleaned[2:].isdigit():
            raise PlanError(
                f"{part.strip()!r}: expected offsets such as J-7,J-1", "plan_offsets", offsets=text
            )
        found.append(int(cleaned[2:]))
    return tuple(dict.fromkeys(found))


@dataclass(frozen=True)
class PlanRequest:
    topic: str
    text: str
    sender_id: str
    audience: Audience
    when: When
    at: datetime | None = None
    best_day: date | None = None
    cron: str = ""
    first_day: date | None = None
    last_day: date | None = None
    event_id: int | None = None
    offsets: tuple[int, ...] = ()
    valid_until: datetime | None = None
    justification: str = ""


@dataclass(frozen=True)
class PlanPreview:
    occurrences: list[Occurrence]
    recipients: int
    skipped: dict[str, int]
    capped: int
    needs_justification: bool
    schedules: list[Schedule] = field(default_factory=list)


def _local_key(rules: SendRules, at: datetime) -> str:
    return at.astimezone(rules.zone).strftime(KEY_FORMAT)


def _event(session: Session, event_id: int) -> Event:
    event = session.get(Event, event_id)
    if event is None:
        raise PlanError(f"no event #{event_id}", "plan_no_event", id=event_id)
    return event


def reminder_day(rules: SendRules, event: Event, offset_days: int) -> date:
    return event.starts_at.astimezone(rules.zone).date() - timedelta(days=offset_days)


def _drafts(ctx: Context, request: PlanRequest) -> list[Schedule]:
    """The schedules a request makes (one per reminder offset), not yet saved."""
    rules = send_rules(ctx.config)
    now = ctx.clock.now()
    base: dict[str, Any] = {
        "topic": request.topic,
        "text": request.text,
        "sender_id": request.sender_id,
        "audience": request.audience.to_json(),
        "justification": request.justification,
        "created_by": ctx.operator,
        "created_at": now,
        "updated_at": now,
        "valid_until": request.valid_until,
    }
    if request.when == "at":
        if request.at is None:
            raise PlanError("--at needs a date and time", "plan_when")
        if request.at <= now:
            raise PlanError("that time is already past", "plan_past")
        return [Schedule(kind="once", at_local=_local_key(rules, request.at), **base)]
    if request.when == "best_slot":
        if request.best_day is None:
            raise PlanError("--best-slot needs a date", "plan_when")
        slot = rules.best_slot(request.topic, request.best_day, not_before=now)
        return [Schedule(kind="once", at_local=_local_key(rules, slot), **base)]
    if request.when == "cron":
        cron = preset_cron(request.cron)
        if request.first_day and request.last_day and request.last_day < request.first_day:
            raise PlanError("--until is before --from", "plan_range")
        return [
            Schedule(
                kind="cron",
                cron=cron,
                first_day=request.first_day.isoformat() if request.first_day else "",
                last_day=request.last_day.isoformat() if request.last_day else "",
                **base,
            )
        ]
    if request.event_id is None:
        raise PlanError("--event needs an event id", "plan_when")
    with read_session(ctx.engine) as session:
        event = _event(session, request.event_id)
    if event.status != "active":
        raise PlanError(f"event #{event.id} is cancelled", "plan_event_cancelled", id=event.id)
    offsets = request.offsets or tuple(int(o[2:]) for o in ctx.config.planning.reminder_offsets)
    drafts = []
    for offset in offsets:
        values: dict[str, Any] = {**base, "valid_until": request.valid_until or event.starts_at}
        drafts.append(Schedule(kind="reminder", event_id=event.id, offset_days=offset, **values))
    return drafts


def event_reminder_day(ctx: Context, schedule: Schedule) -> date | None:
    if schedule.kind != "reminder" or schedule.event_id is None:
        return None
    with read_session(ctx.engine) as session:
        event = _event(session, schedule.event_id)
    return reminder_day(send_rules(ctx.config), event, schedule.offset_days)


def schedule_occurrences(
    ctx: Context, schedule: Schedule, *, count: int = 10, after_key: str = ""
) -> list[Occurrence]:
    """The next `count` occurrences from now (or after `after_key`)."""
    rules = send_rules(ctx.config)
    now = ctx.clock.now()
    key = after_key or max(schedule.cursor_local, _local_key(rules, now - timedelta(minutes=1)))
    return occurrences(
        schedule,
        rules,
        after_key=key,
        reminder_day=event_reminder_day(ctx, schedule),
        limit=count,
    )


def _valid_until(schedule: Schedule, occurrence: Occurrence) -> datetime:
    if schedule.valid_until is not None:
        return schedule.valid_until
    return occurrence.due + timedelta(hours=DEFAULT_VALID_HOURS)


def preview_plan(ctx: Context, request: PlanRequest, count: int = 10) -> PlanPreview:
    """What a request would do, before saving: its occurrences (each with the rules
    that move or hold it), its audience, and how many the fatigue cap would hold."""
    check_sender_id(request.sender_id)
    drafts = _drafts(ctx, request)
    found: list[Occurrence] = []
    for draft in drafts:
        found.extend(schedule_occurrences(ctx, draft, count=count))
    found.sort(key=lambda occurrence: occurrence.due)
    found = found[:count]
    first = found[0].due if found else ctx.clock.now()
    capped = capped_contacts(ctx.engine, ctx.config, first)
    campaign = CampaignRequest(
        topic=request.topic,
        text=request.text,
        sender_id=request.sender_id,
        audience=request.audience,
        capped=capped,
    )
    preview = preview_campaign(ctx, campaign)
    skipped = dict(preview.skipped)
    rules = send_rules(ctx.config)
    justification = any(
        rules.needs_justification(request.topic, o.due.astimezone(rules.zone).date()) for o in found
    )
    return PlanPreview(
        found,
        preview.recipients,
        skipped,
        skipped.get("fatigue_cap", 0),
        justification,
        drafts,
    )


def add_plan(
    ctx: Context, request: PlanRequest, *, preview: PlanPreview | None = None
) -> list[int]:
    """Save the request's schedules; the scheduler fires them when due. `preview`:
    the one just shown for this very request (resolving a 100,000-resident audience
    again costs seconds)."""
    ctx.require(Role.OPERATOR)
    if preview is None:
        preview = preview_plan(ctx, request, count=10)
    if preview.needs_justification and not request.justification.strip():
        raise PlanError(
            "this send falls in an election period (Code électoral L52-1): give a "
            "justification (--justification)",
            "plan_justification",
        )
    if not preview.occurrences:
        raise PlanError("this plan has no occurrence to come", "plan_empty")
    now = ctx.clock.now()
    ids: list[int] = []
    with write_session(ctx.engine) as session:
        for draft in preview.schedules:
            upcoming = schedule_occurrences(ctx, draft, count=1)
            draft.next_due_at = upcoming[0].due if upcoming else None
            if not upcoming:
                continue
            session.add(draft)
            session.flush()
            assert draft.id is not None
            ids.append(draft.id)
            append_audit(
                session,
                at=now,
                operator=ctx.operator,
                action="plan.create",
                target=f"schedule:{draft.id}",
                details={
                    "kind": draft.kind,
                    "topic": draft.topic,
                    "when": draft.at_local or draft.cron or f"event:{draft.event_id}",
                    "offset_days": draft.offset_days,
                    "first_due": upcoming[0].due.isoformat(),
                    "moved_by": [b.reason for b in upcoming[0].moved_by],
                    **(
                        {"justification": draft.justification, "rule": "L52-1"}
                        if preview.needs_justification
                        else {}
                    ),
                },
            )
    return ids


@dataclass(frozen=True)
class PlanView:
    id: int
    kind: str
    topic: str
    status: str
    text: str
    when: str
    next_due_at: datetime | None
    event_id: int | None
    offset_days: int
    audience: dict[str, object]
    occurrences: dict[str, int]

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "kind": self.kind,
            "topic": self.topic,
            "status": self.status,
            "text": self.text,
            "when": self.when,
            "next_due_at": self.next_due_at.isoformat() if self.next_due_at else None,
            "event_id": self.event_id,
            "offset_days": self.offset_days,
            "audience": self.audience,
            "occurrences": self.occurrences,
        }


OCCURRENCE_STATES = ("sent", "missed", "dropped", "blocked", "cancelled")


def _view(session: Session, schedule: Schedule) -> PlanView:
    assert schedule.id is not None
    counts = dict.fromkeys(OCCURRENCE_STATES, 0)
    for state in session.execute(
        select(col(OccurrenceRow.state)).where(col(OccurrenceRow.schedule_id) == schedule.id)
    ).scalars():
        counts[state] = counts.get(state, 0) + 1
    when = schedule.at_local or schedule.cron
    if schedule.kind == "reminder":
        when = f"event #{schedule.event_id} J-{schedule.offset_days}"
    elif schedule.kind == "cron" and (schedule.first_day or schedule.last_day):
        when = f"{when} ({schedule.first_day or '…'} → {schedule.last_day or '…'})"
    return PlanView(
        schedule.id,
        schedule.kind,
        schedule.topic,
        schedule.status,
        schedule.text,
        when,
        schedule.next_due_at,
        schedule.event_id,
        schedule.offset_days,
        json.loads(schedule.audience or "{}"),
        counts,
    )


def list_plans(ctx: Context, *, include_done: bool = False) -> list[PlanView]:
    with read_session(ctx.engine) as session:
        query = select(Schedule).order_by(col(Schedule.next_due_at), col(Schedule.id))
        if not include_done:
            query = query.where(col(Schedule.status) == "active")
        return [_view(session, s) for s in session.execute(query).scalars()]


def get_schedule(ctx: Context, schedule_id: int) -> Schedule:
    with read_session(ctx.engine) as session:
        schedule = session.get(Schedule, schedule_id)
    if schedule is None:
        raise PlanError(f"no planned send #{schedule_id}", "plan_no_schedule", id=schedule_id)
    return schedule


def show_plan(ctx: Context, schedule_id: int) -> PlanView:
    schedule = get_schedule(ctx, schedule_id)
    with read_session(ctx.engine) as session:
        return _view(session, schedule)


def cancel_plan(ctx: Context, schedule_id: int, occurrence_key: str = "") -> int:
    """Cancel the whole series, or one occurrence (by its local date-time key).
    Returns how many occurrences or series were cancelled (0: nothing to cancel)."""
    ctx.require(Role.OPERATOR)
    schedule = get_schedule(ctx, schedule_id)
    now = ctx.clock.now()
    with write_session(ctx.engine) as session:
        if occurrence_key:
            upcoming = schedule_occurrences(ctx, schedule, count=500)
            match = next((o for o in upcoming if o.key == occurrence_key), None)
            if match is None:
                raise PlanError(
                    f"planned send #{schedule_id} has no coming occurrence {occurrence_key}",
                    "plan_no_occurrence",
                    id=schedule_id,
                    key=occurrence_key,
                )
            exists = session.execute(
                select(col(OccurrenceRow.id)).where(
                    col(OccurrenceRow.schedule_id) == schedule_id,
                    col(OccurrenceRow.local_key) == occurrence_key,
                )
            ).first()
            if exists is not None:
                return 0
            session.add(
                OccurrenceRow(
                    schedule_id=schedule_id,
                    local_key=occurrence_key,
                    due_at=match.due,
                    state="cancelled",
                    reason="operator",
                    recorded_at=now,
                )
            )
            changed = 1
        else:
            changed = session.execute(
                update(Schedule)
                .where(col(Schedule.id) == schedule_id, col(Schedule.status) == "active")
                .values(status="cancelled", next_due_at=None, updated_at=now)
            ).rowcount  # type: ignore[attr-defined]
        if changed:
            append_audit(
                session,
                at=now,
                operator=ctx.operator,
                action="plan.cancel",
                target=f"schedule:{schedule_id}",
                details={"occurrence": occurrence_key or "series"},
            )
    return int(changed)


# -- events ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EventRequest:
    name: str
    starts_at: datetime
    topic: str
    place: str = ""
    audience: Audience = field(default_factory=Audience)
    uid: str | None = None
    source: str = "operator"


def _check_event(ctx: Context, request: EventRequest) -> None:
    if not request.name.strip():
        raise PlanError("the event needs a name", "event_name")
    if request.topic not in ctx.config.topics:
        raise PlanError(f"unknown topic {request.topic!r}", "consent_topic", topic=request.topic)


def add_event(ctx: Context, request: EventRequest) -> int:
    ctx.require(Role.OPERATOR)
    _check_event(ctx, request)
    now = ctx.clock.now()
    with write_session(ctx.engine) as session:
        event = Event(
            uid=request.uid,
            name=request.name.strip(),
            place=request.place.strip(),
            topic=request.topic,
            audience=request.audience.to_json(),
            starts_at=request.starts_at,
            source=request.source,
            created_by=ctx.operator,
            created_at=now,
            updated_at=now,
        )
        session.add(event)
        session.flush()
        assert event.id is not None
        append_audit(
            session,
            at=now,
            operator=ctx.operator,
            action="event.create",
            target=f"event:{event.id}",
            details={"topic": event.topic, "starts_at": event.starts_at.isoformat()},
        )
        return event.id


def list_events(ctx: Context, *, include_cancelled: bool = False) -> list[Event]:
    with read_session(ctx.engine) as session:
        query = select(Event).order_by(col(Event.starts_at), col(Event.id))
        if not include_cancelled:
            query = query.where(col(Event.status) == "active")
        return list(session.execute(query).scalars())


def _reschedule_reminders(ctx: Context, session: Session, event: Event) -> int:
    """Unsent reminders follow their event: their next due time is recomputed."""
    rules = send_rules(ctx.config)
    reminders = session.execute(
        select(Schedule).where(
            col(Schedule.event_id) == event.id,
            col(Schedule.kind) == "reminder",
            col(Schedule.status) == "active",
        )
    ).scalars()
    moved = 0
    for schedule in reminders:
        schedule.valid_until = event.starts_at
        upcoming = occurrences(
            schedule,
            rules,
            reminder_day=reminder_day(rules, event, schedule.offset_days),
            limit=1,
        )
        now = ctx.clock.now()
        if upcoming and upcoming[0].due > now and upcoming[0].held is None:
            schedule.next_due_at = upcoming[0].due
            schedule.cursor_local = ""
        else:
            # The new date leaves no time for this reminder: it will not be sent.
            schedule.status, schedule.next_due_at = "done", None
        schedule.updated_at = now
        session.add(schedule)
        moved += 1
    return moved


def move_event(ctx: Context, event_id: int, starts_at: datetime) -> int:
    """Move an event; its unsent reminders move with it. Returns how many moved."""
    ctx.require(Role.OPERATOR)
    now = ctx.clock.now()
    with write_session(ctx.engine) as session:
        event = _event(session, event_id)
        if event.status != "active":
            raise PlanError(f"event #{event_id} is cancelled", "plan_event_cancelled", id=event_id)
        before = event.starts_at
        event.starts_at, event.updated_at = starts_at, now
        session.add(event)
        moved = _reschedule_reminders(ctx, session, event)
        append_audit(
            session,
            at=now,
            operator=ctx.operator,
            action="event.move",
            target=f"event:{event_id}",
            details={
                "from": before.isoformat(),
                "to": starts_at.isoformat(),
                "reminders_moved": moved,
            },
        )
    return moved


def cancel_event(ctx: Context, event_id: int) -> int:
    """Cancel an event and its unsent reminders. Returns how many were cancelled."""
    ctx.require(Role.OPERATOR)
    now = ctx.clock.now()
    with write_session(ctx.engine) as session:
        event = _event(session, event_id)
        event.status, event.updated_at = "cancelled", now
        session.add(event)
        cancelled = session.execute(
            update(Schedule)
            .where(col(Schedule.event_id) == event_id, col(Schedule.status) == "active")
            .values(status="cancelled", next_due_at=None, updated_at=now)
        ).rowcount  # type: ignore[attr-defined]
        append_audit(
            session,
            at=now,
            operator=ctx.operator,
            action="event.cancel",
            target=f"event:{event_id}",
            details={"reminders_cancelled": int(cancelled)},
        )
    return int(cancelled)


def parse_when_text(text: str, zone_name: str) -> dict[str, Any]:
    """What an operator types in the form's "when" field, as PlanRequest fields:
    "2026-03-16T12:15" or "2026-03-16 12:15", "meilleur 2026-03-16" (best 2026-03-16),
    "cron every-monday 12:15 [du 2026-04-01 au 2026-04-30]" (or "from ... to ..."),
    "événement 3 J-7,J-1" (event 3 J-7,J-1)."""
    from zoneinfo import ZoneInfo

    words = text.strip().split()
    if not words:
        raise PlanError("when: empty", "plan_when_text", text=text)
    head = words[0].lower()
    try:
        if head in ("meilleur", "best"):
            return {"when": "best_slot", "best_day": date.fromisoformat(words[1])}
        if head == "cron":
            rest = words[1:]
            first = last = None
            for opener in ("du", "from"):
                if opener in rest:
                    where = rest.index(opener)
                    first = date.fromisoformat(rest[where + 1])
                    closer = rest[where + 2].lower() if len(rest) > where + 2 else ""
                    if closer in ("au", "to"):
                        last = date.fromisoformat(rest[where + 3])
                    rest = rest[:where]
            return {"when": "cron", "cron": " ".join(rest), "first_day": first, "last_day": last}
        if head in ("événement", "evenement", "event"):
            offsets = parse_offsets(words[2]) if len(words) > 2 else ()
            return {"when": "event", "event_id": int(words[1]), "offsets": offsets}
        at = datetime.fromisoformat(" ".join(words).replace(" ", "T", 1))
    except (IndexError, ValueError) as exc:
        raise PlanError(f"when: {text!r} not understood", "plan_when_text", text=text) from exc
    if at.tzinfo is None:
        at = at.replace(tzinfo=ZoneInfo(zone_name))
    return {"when": "at", "at": at}


@dataclass(frozen=True)
class Upcoming:
    """What Envois shows of the planner: the next planned sends and the missed ones."""

    next_sends: list[tuple[datetime, str, str, int]]
    missed: int


def upcoming(ctx: Context, limit: int = 3) -> Upcoming:
    with read_session(ctx.engine) as session:
        rows = session.execute(
            select(
                col(Schedule.next_due_at),
                col(Schedule.topic),
                col(Schedule.text),
                col(Schedule.id),
            )
            .where(col(Schedule.status) == "active", col(Schedule.next_due_at).is_not(None))
            .order_by(col(Schedule.next_due_at))
            .limit(limit)
        ).all()
        missed = session.execute(
            select(func.count()).where(col(OccurrenceRow.state) == "missed")
        ).scalar_one()
    return Upcoming(
        [(due, topic, text, int(schedule_id)) for due, topic, text, schedule_id in rows],
        int(missed),
    )
