"""What the Calendrier screen shows, read in one go: each day of a period with its
holidays, Sunday, election periods, planned sends (to come, sent, missed, held) and
load. Built without the UI so the screen only draws."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import ColumnElement, func, or_, select, true
from sqlmodel import Session, col

from console.config import Config
from console.context import Context
from console.planning.rules import localize, send_rules
from console.planning.schedules import KEY_FORMAT, occurrences
from console.planning.service import reminder_day
from console.sending.campaigns import Audience
from console.sending.states import SKIPPED
from storage.engine import read_session
from storage.models import Campaign, ConsentState, Contact, ContactGroup, Event, Message, Schedule
from storage.models import Occurrence as OccurrenceRow

# Per schedule and period: a minute-by-minute cron cannot flood the screen.
MAX_PER_SCHEDULE = 200


@dataclass(frozen=True)
class PlannedItem:
    schedule_id: int
    key: str
    due: datetime
    topic: str
    text: str
    kind: str
    # planned | sent | missed | dropped | blocked | cancelled
    state: str
    moved_by: tuple[str, ...] = ()


@dataclass
class DayInfo:
    day: date
    holiday: str | None = None
    sunday: bool = False
    l52: str | None = None
    l49: str | None = None
    items: list[PlannedItem] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    messages: int = 0
    capped: int = 0
    # For the sends still to come that day: an estimate (see forecast_day).
    forecast: int = 0
    forecast_capped: int = 0


@dataclass
class PeriodView:
    first: date
    last: date
    today: date
    days: dict[date, DayInfo]
    quiet: tuple[str, str]

    def items(self) -> list[PlannedItem]:
        found = [item for day in sorted(self.days) for item in self.days[day].items]
        return sorted(found, key=lambda item: (item.due, item.schedule_id))


def read_period(ctx: Context, first: date, last: date) -> PeriodView:
    """Every day from `first` to `last` (inclusive), town time."""
    rules = send_rules(ctx.config)
    zone = rules.zone
    start = localize(datetime.combine(first, time()), zone)
    end = localize(datetime.combine(last + timedelta(days=1), time()), zone)
    now = ctx.clock.now()
    days: dict[date, DayInfo] = {}
    current = first
    while current <= last:
        info = DayInfo(current, rules.holiday(current), current.weekday() == 6)
        election = rules.l52_election(current)
        info.l52 = election.name if election else None
        noon = datetime.combine(current, time(12))
        l49 = rules.l49_election(noon) or rules.l49_election(datetime.combine(current, time()))
        info.l49 = l49.name if l49 else None
        days[current] = info
        current += timedelta(days=1)

    with read_session(ctx.engine) as session:
        schedules = {
            s.id: s
            for s in session.execute(
                select(Schedule).where(col(Schedule.status) != "cancelled")
            ).scalars()
        }
        recorded = list(
            session.execute(
                select(OccurrenceRow).where(
                    col(OccurrenceRow.due_at) >= start, col(OccurrenceRow.due_at) < end
                )
            ).scalars()
        )
        all_keys = {
            (schedule_id, key)
            for schedule_id, key in session.execute(
                select(col(OccurrenceRow.schedule_id), col(OccurrenceRow.local_key)).where(
                    col(OccurrenceRow.schedule_id).in_(list(schedules))
                )
            ).all()
        }
        events = {
            e.id: e
            for e in session.execute(select(Event).where(col(Event.status) == "active")).scalars()
        }
        # Messages per campaign and state, off the (campaign, state) index alone: a
        # month with two all-town sends holds 200,000 messages.
        campaign_days = {
            campaign_id: started
            for campaign_id, started in session.execute(
                select(col(Campaign.id), col(Campaign.start_at)).where(
                    col(Campaign.start_at) >= start, col(Campaign.start_at) < end
                )
            ).all()
        }
        loads = (
            session.execute(
                select(col(Message.campaign_id), func.count())
                .where(
                    col(Message.campaign_id).in_(list(campaign_days)),
                    col(Message.state) != SKIPPED,
                )
                .group_by(col(Message.campaign_id))
            ).all()
            if campaign_days
            else []
        )

    for row in recorded:
        schedule = schedules.get(row.schedule_id)
        day = row.due_at.astimezone(zone).date()
        if day in days:
            days[day].items.append(
                PlannedItem(
                    row.schedule_id,
                    row.local_key,
                    row.due_at,
                    schedule.topic if schedule else "",
                    schedule.text if schedule else "",
                    schedule.kind if schedule else "",
                    row.state,
                )
            )
    for event in events.values():
        day = event.starts_at.astimezone(zone).date()
        if day in days:
            days[day].events.append(event.name)
    after = (start - timedelta(minutes=1)).astimezone(zone).strftime(KEY_FORMAT)
    too_late = now - timedelta(minutes=ctx.config.planning.grace_minutes)
    # Occurrences due before `too_late` and not recorded are not shown: no need to walk
    # them. A few days' margin keeps those a Sunday or a holiday moved to today.
    past = (too_late - timedelta(days=4)).astimezone(zone).strftime(KEY_FORMAT)
    # What each day's sends still to come would reach: (topic, audience) per send.
    pending: dict[date, list[tuple[str, str]]] = {}
    for schedule in schedules.values():
        if schedule.status != "active":
            continue
        schedule_id = schedule.id
        assert schedule_id is not None
        reminder = None
        if schedule.kind == "reminder":
            event = events.get(schedule.event_id)
            if event is None:
                continue
            reminder = reminder_day(rules, event, schedule.offset_days)
        key = max(after, schedule.cursor_local, past)
        topic, text, kind = schedule.topic, schedule.text, schedule.kind
        for occurrence in occurrences(
            schedule,
            rules,
            after_key=key,
            reminder_day=reminder,
            limit=MAX_PER_SCHEDULE,
            until=end,
        ):
            due = occurrence.due
            if due >= end:
                break
            if due < too_late or (schedule_id, occurrence.key) in all_keys:
                continue
            shown = days.get(due.astimezone(zone).date())
            if shown is not None:
                if not occurrence.held and due >= now:
                    pending.setdefault(shown.day, []).append((topic, schedule.audience))
                shown.items.append(
                    PlannedItem(
                        schedule_id,
                        occurrence.key,
                        due,
                        topic,
                        text,
                        kind,
                        "blocked" if occurrence.held else "planned",
                        tuple(b.reason for b in occurrence.moved_by),
                    )
                )
    for campaign_id, sent in loads:
        day = campaign_days[campaign_id].astimezone(zone).date()
        if day in days:
            days[day].messages += int(sent)
    for row in recorded:
        day = row.due_at.astimezone(zone).date()
        if day in days:
            days[day].capped += row.capped
    for info in days.values():
        info.items.sort(key=lambda item: (item.due, item.schedule_id))
    if pending:
        # One COUNT per distinct (topic, audience) in the period, not per occurrence:
        # 500 plans to the whole town cost one query.
        wanted = {pair for sends in pending.values() for pair in sends}
        with read_session(ctx.engine) as session:
            reach = reaches(session, ctx.config, wanted)
        for day, sends in pending.items():
            days[day].forecast, days[day].forecast_capped = forecast_day(
                ctx.config, [(topic, reach[(topic, audience)]) for topic, audience in sends]
            )
    planning = ctx.config.planning
    return PeriodView(
        first,
        last,
        now.astimezone(zone).date(),
        days,
        (planning.rules.quiet_start, planning.rules.quiet_end),
    )


def reaches(
    session: Session, config: Config, wanted: set[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """audience_reach for each (topic, audience JSON), cheaply: audiences made of
    "everyone" or quartiers (nearly all) are summed from one per-quartier COUNT per
    topic; only those naming groups get a COUNT of their own."""
    found: dict[tuple[str, str], int] = {}
    per_zone: dict[str, dict[str, int]] = {}
    for topic, audience_json in wanted:
        audience = Audience.from_json(audience_json)
        if audience.groups:
            found[(topic, audience_json)] = audience_reach(session, config, topic, audience_json)
            continue
        if topic not in per_zone:
            per_zone[topic] = _zone_reach(session, config, topic)
        zones = per_zone[topic]
        residents = (
            sum(zones.values())
            if audience.everyone
            else sum(zones.get(zone, 0) for zone in set(audience.zones))
        )
        found[(topic, audience_json)] = residents + len(audience.numbers)
    return found


def _reachable(config: Config, topic: str) -> list[ColumnElement[bool]]:
    """The conditions for a live, sendable contact whose consent lets `topic` reach
    them (as `preview_campaign` decides)."""
    settings = config.topics.get(topic)
    public_safety = settings is not None and settings.legal_basis == "public_safety"
    consent = select(col(ConsentState.contact_id)).where(
        col(ConsentState.topic) == topic, col(ConsentState.granted).is_(not public_safety)
    )
    return [
        col(Contact.erased_at).is_(None),
        col(Contact.sendable).is_(True),
        # Public safety reaches all but those who opted out; others need opt-in.
        col(Contact.id).not_in(consent) if public_safety else col(Contact.id).in_(consent),
    ]


def _zone_reach(session: Session, config: Config, topic: str) -> dict[str, int]:
    rows = session.execute(
        select(col(Contact.zone), func.count())
        .where(*_reachable(config, topic))
        .group_by(col(Contact.zone))
    ).all()
    return {zone: int(n) for zone, n in rows}


def audience_reach(session: Session, config: Config, topic: str, audience_json: str) -> int:
    """How many residents a send of `topic` to this audience would be handed to today:
    live, sendable contacts of the audience whose consent state lets the topic reach
    them (as `preview_campaign` decides), plus typed numbers. One COUNT; the STOP list
    (hashed numbers) is left out, as STOP also withdraws consent."""
    audience = Audience.from_json(audience_json)
    conditions: list[ColumnElement[bool]] = []
    if audience.everyone:
        conditions.append(true())
    if audience.zones:
        conditions.append(col(Contact.zone).in_(audience.zones))
    if audience.groups:
        conditions.append(
            col(Contact.id).in_(
                select(col(ContactGroup.contact_id)).where(
                    col(ContactGroup.name).in_(audience.groups)
                )
            )
        )
    if not conditions:
        return len(audience.numbers)
    query = (
        select(func.count())
        .select_from(Contact)
        .where(or_(*conditions), *_reachable(config, topic))
    )
    return int(session.execute(query).scalar_one()) + len(audience.numbers)


def forecast_day(config: Config, sends: list[tuple[str, int]]) -> tuple[int, int]:
    """(messages, held by the cap) for a day's sends still to come, each given as
    (topic, residents it reaches). An estimate that assumes the audiences nest (the
    smaller ones inside the larger, as "everyone" and a quartier do): a resident gets
    at most `per_day` of the day's non-alert sends, the largest ones; the alert topic
    is never capped. The 7- and 30-day caps are checked again when each send fires."""
    alert_topic = config.alert.topic
    alerts = sum(n for topic, n in sends if topic == alert_topic)
    others = sorted((n for topic, n in sends if topic != alert_topic), reverse=True)
    alert_sends = sum(1 for topic, _ in sends if topic == alert_topic)
    # Alerts are never capped but count: they use up the day's allowance first.
    per_day = max(config.planning.fatigue.per_day - alert_sends, 0)
    kept = sum(others[:per_day])
    return alerts + kept, sum(others) - kept


def audience_label(audience_json: str) -> str:
    loaded = json.loads(audience_json or "{}")
    if loaded.get("all"):
        return "*"
    parts = [*loaded.get("zones", []), *loaded.get("groups", [])]
    if loaded.get("numbers"):
        parts.append(f"{len(loaded['numbers'])} n°")
    return ", ".join(parts)


def month_bounds(year: int, month: int) -> tuple[date, date]:
    first = date(year, month, 1)
    following = date(year + (month == 12), month % 12 + 1, 1)
    return first, following - timedelta(days=1)
