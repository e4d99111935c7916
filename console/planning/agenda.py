"""The town's agenda: `tocsin event import agenda.ics` and `tocsin calendar export`.

Import: each VEVENT becomes an event keyed by its UID (a recurring one expands, over
the coming year, into one event per instance keyed "UID#start"); a re-import
updates what changed (a moved event moves its unsent reminders) and never doubles.
A cancelled VEVENT cancels the event and its reminders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from console.context import Context
from console.errors import TocsinError
from console.planning.rules import localize, send_rules
from console.planning.service import (
    EventRequest,
    add_event,
    cancel_event,
    list_plans,
    move_event,
    schedule_occurrences,
)
from console.roles import Role
from storage.engine import read_session, write_session
from storage.models import Event, Schedule

# Recurring agenda events are expanded this far ahead.
HORIZON_DAYS = 366
# At most this many instances per recurring event (a daily one for a year fits).
MAX_INSTANCES = 400
MAX_ICS_BYTES = 10 * 1024 * 1024


class AgendaError(TocsinError):
    pass


@dataclass
class ImportResult:
    created: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    unchanged: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "created": len(self.created),
            "updated": len(self.updated),
            "cancelled": len(self.cancelled),
            "unchanged": self.unchanged,
            "event_ids": self.created,
        }


@dataclass(frozen=True)
class _Instance:
    key: str
    name: str
    place: str
    starts_at: datetime
    cancelled: bool


def _as_utc(value: date | datetime, ctx: Context) -> datetime:
    zone = send_rules(ctx.config).zone
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return localize(value, zone)
        return value.astimezone(UTC)
    # An all-day event starts at the beginning of its day, town time.
    return localize(datetime.combine(value, time()), zone)


def _instances(ctx: Context, data: bytes) -> list[_Instance]:
    import icalendar
    from dateutil.rrule import rrulestr

    try:
        calendar: Any = icalendar.Calendar.from_ical(data)
    except ValueError as exc:
        raise AgendaError(f"not a valid iCalendar file: {exc}", "agenda_invalid") from exc
    now = ctx.clock.now()
    horizon = now + timedelta(days=HORIZON_DAYS)
    found: dict[str, _Instance] = {}
    overrides: list[tuple[str, Any]] = []
    for component in calendar.walk("VEVENT"):
        uid = str(component.get("UID", "")).strip()
        start = component.get("DTSTART")
        if not uid or start is None:
            continue
        name = str(component.get("SUMMARY", "")).strip() or uid
        place = str(component.get("LOCATION", "")).strip()
        cancelled = str(component.get("STATUS", "")).upper() == "CANCELLED"
        if component.get("RECURRENCE-ID") is not None:
            overrides.append((uid, component))
            continue
        first = _as_utc(start.dt, ctx)
        rule = component.get("RRULE")
        if rule is None:
            found[uid] = _Instance(uid, name, place, first, cancelled)
            continue
        excluded: set[datetime] = set()
        exdates = component.get("EXDATE")
        for entry in exdates if isinstance(exdates, list) else [exdates] if exdates else []:
            excluded.update(_as_utc(d.dt, ctx) for d in entry.dts)
        local_first = start.dt
        if not isinstance(local_first, datetime):
            local_first = datetime.combine(local_first, time())
        if local_first.tzinfo is None:
            local_first = local_first.replace(tzinfo=send_rules(ctx.config).zone)
        walker = rrulestr(rule.to_ical().decode(), dtstart=local_first)
        for index, at in enumerate(walker):
            instant = at.astimezone(UTC)
            if instant > horizon or index >= MAX_INSTANCES:
                break
            if instant in excluded or instant < now:
                continue
            key = f"{uid}#{instant.strftime('%Y%m%dT%H%M%SZ')}"
            found[key] = _Instance(key, name, place, instant, cancelled)
    for uid, component in overrides:
        original = _as_utc(component.get("RECURRENCE-ID").dt, ctx)
        key = f"{uid}#{original.strftime('%Y%m%dT%H%M%SZ')}"
        base = found.get(key)
        name = str(component.get("SUMMARY", "")).strip() or (base.name if base else uid)
        place = str(component.get("LOCATION", "")).strip() or (base.place if base else "")
        start = component.get("DTSTART")
        starts = _as_utc(start.dt, ctx) if start is not None else original
        cancelled = str(component.get("STATUS", "")).upper() == "CANCELLED"
        found[key] = _Instance(key, name, place, starts, cancelled)
    return list(found.values())


def import_ics(ctx: Context, path: Path, *, topic: str = "evenements") -> ImportResult:
    ctx.require(Role.OPERATOR)
    if topic not in ctx.config.topics:
        raise AgendaError(f"unknown topic {topic!r}", "consent_topic", topic=topic)
    if path.stat().st_size > MAX_ICS_BYTES:
        raise AgendaError(f"{path}: larger than {MAX_ICS_BYTES} bytes", "agenda_too_large")
    instances = _instances(ctx, path.read_bytes())
    with read_session(ctx.engine) as session:
        known = {
            event.uid: event
            for event in session.execute(
                select(Event).where(col(Event.uid).in_([i.key for i in instances]))
            ).scalars()
        }
    result = ImportResult()
    for instance in instances:
        event = known.get(instance.key)
        if event is None:
            if instance.cancelled:
                continue
            result.created.append(
                add_event(
                    ctx,
                    EventRequest(
                        name=instance.name[:300],
                        starts_at=instance.starts_at,
                        topic=topic,
                        place=instance.place[:300],
                        uid=instance.key[:500],
                        source="ics",
                    ),
                )
            )
            continue
        assert event.id is not None
        if instance.cancelled:
            if event.status == "active":
                cancel_event(ctx, event.id)
                result.cancelled.append(event.id)
            else:
                result.unchanged += 1
            continue
        changed = False
        if (event.name, event.place) != (instance.name[:300], instance.place[:300]):
            with write_session(ctx.engine) as session:
                row = session.get(Event, event.id)
                assert row is not None
                row.name, row.place = instance.name[:300], instance.place[:300]
                row.updated_at = ctx.clock.now()
                session.add(row)
            changed = True
        if event.starts_at != instance.starts_at and event.status == "active":
            move_event(ctx, event.id, instance.starts_at)
            changed = True
        if changed:
            result.updated.append(event.id)
        else:
            result.unchanged += 1
    return result


def export_ics(ctx: Context, path: Path, *, per_schedule: int = 10) -> int:
    """The coming planned sends, for the town's shared agenda. Returns how many."""
    import icalendar

    calendar: Any = icalendar.Calendar()
    calendar.add("prodid", "-//Tocsin//planned sends//FR")
    calendar.add("version", "2.0")
    count = 0
    stamp = ctx.clock.now()
    for view in list_plans(ctx):
        with read_session(ctx.engine) as session:
            schedule = session.get(Schedule, view.id)
        if schedule is None:
            continue
        for occurrence in schedule_occurrences(ctx, schedule, count=per_schedule):
            if occurrence.held is not None:
                continue
            entry: Any = icalendar.Event()
            entry.add("uid", f"tocsin-{view.id}-{occurrence.key}@tocsin")
            entry.add("dtstamp", stamp)
            entry.add("dtstart", occurrence.due)
            entry.add("dtend", occurrence.due + timedelta(minutes=15))
            entry.add("summary", f"SMS {view.topic} : {view.text[:80]}")
            entry.add("description", view.text)
            calendar.add_component(entry)
            count += 1
    path.write_bytes(calendar.to_ical())
    return count
