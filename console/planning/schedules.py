"""When a schedule's occurrences fall: one-off, cron (with the town's presets) and
event reminders, each keyed by its local date-time, and moved to an allowed slot.

Cron expressions run on the town's wall clock: croniter walks naive local times, so
each local time happens once per schedule whatever DST does; `localize` then puts a
time that does not exist (02:30 on the last Sunday of March) at the end of the gap
and a time that happens twice (02:30 on the last Sunday of October) at its first.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from croniter import croniter

from console.errors import TocsinError
from console.planning.rules import VALID_UNTIL, Blocked, SendRules, localize
from storage.models import Schedule

KEY_FORMAT = "%Y-%m-%dT%H:%M"
_DAY_NAMES = {
    "monday": 1, "lundi": 1, "tuesday": 2, "mardi": 2, "wednesday": 3, "mercredi": 3,
    "thursday": 4, "jeudi": 4, "friday": 5, "vendredi": 5, "saturday": 6, "samedi": 6,
    "sunday": 0, "dimanche": 0,
}  # fmt: skip
_PRESET = re.compile(
    r"(?P<kind>every|chaque|first|premier)-(?P<day>[a-z]+)\s+(?P<h>[0-2]?[0-9])[:h](?P<m>[0-5][0-9])"
)


class ScheduleError(TocsinError):
    pass


def preset_cron(text: str) -> str:
    """A preset ("every-monday 12:15", "first-saturday 10:00", "every-day 12:15", or
    in French "chaque-lundi 12h15", "premier-samedi 10h00", "chaque-jour 12h15") as
    a cron expression; anything else is taken as a cron expression and checked."""
    cleaned = text.strip().lower()
    found = _PRESET.fullmatch(cleaned)
    if found is not None:
        hour, minute = int(found["h"]), int(found["m"])
        if hour > 23:
            raise ScheduleError(f"{text!r}: no such hour", "plan_cron", cron=text)
        day, kind = found["day"], found["kind"]
        if day in ("day", "jour") and kind in ("every", "chaque"):
            return f"{minute} {hour} * * *"
        if day not in _DAY_NAMES:
            raise ScheduleError(f"{text!r}: unknown day {day!r}", "plan_cron", cron=text)
        weekday = _DAY_NAMES[day]
        if kind in ("every", "chaque"):
            return f"{minute} {hour} * * {weekday}"
        return f"{minute} {hour} * * {weekday}#1"
    if not croniter.is_valid(cleaned) or len(cleaned.split()) != 5:
        raise ScheduleError(
            f"{text!r}: expected a cron expression (minute hour day month weekday) or a "
            "preset such as every-monday 12:15, first-saturday 10:00, every-day 12:15",
            "plan_cron",
            cron=text,
        )
    return cleaned


@dataclass(frozen=True)
class Occurrence:
    """One occurrence: its key (the nominal local date-time), when it was meant to
    fire and when it may (UTC), and what moved or holds it."""

    key: str
    nominal: datetime
    due: datetime
    moved_by: list[Blocked] = field(default_factory=list)
    held: Blocked | None = None

    @property
    def local(self) -> datetime:
        return datetime.strptime(self.key, KEY_FORMAT)


def _day(text: str) -> date | None:
    return date.fromisoformat(text) if text else None


def nominal_times(
    schedule: Schedule, rules: SendRules, *, after_key: str = "", reminder_day: date | None = None
) -> Iterator[datetime]:
    """The schedule's local (naive) date-times after `after_key`, in order."""
    after = datetime.strptime(after_key, KEY_FORMAT) if after_key else None
    if schedule.kind == "once":
        at = datetime.strptime(schedule.at_local, KEY_FORMAT)
        if after is None or at > after:
            yield at
        return
    if schedule.kind == "reminder":
        if reminder_day is None:
            return
        slots = rules.slots_of(reminder_day) or [time(12, 15)]
        at = datetime.combine(reminder_day, slots[0])
        if after is None or at > after:
            yield at
        return
    first, last = _day(schedule.first_day), _day(schedule.last_day)
    start = after
    if first is not None:
        day_before = datetime.combine(first, time()) - timedelta(minutes=1)
        start = day_before if start is None or start < day_before else start
    if start is None:
        start = schedule.created_at.astimezone(rules.zone).replace(tzinfo=None, second=0)
        start -= timedelta(minutes=1)
    for step in cron_walk(schedule.cron, start):
        if last is not None and step.date() > last:
            return
        yield step


# A cron that matches no day for this long (30 February) has no occurrence.
_NO_MATCH_DAYS = 366 * 8


_CronFields = tuple[list[time], bool, bool, bool, set[int], set[int], set[int], dict[int, set[int]]]


@functools.lru_cache(maxsize=4096)
def _cron_fields(expression: str) -> _CronFields | None:
    """croniter's parse of an expression (half a millisecond each), kept; None for
    what the day-by-day walk does not handle (L, W, seconds)."""
    parsed = croniter(expression)
    minutes, hours, doms, months, dows = parsed.expanded[:5]
    nth: dict[int, set[Any]] = parsed.nth_weekday_of_month
    plain = all(
        isinstance(value, int) or value == "*" for field in (doms, months, dows) for value in field
    ) and all(isinstance(n, int) for wanted in nth.values() for n in wanted)
    if not plain or len(parsed.expanded) > 5:
        return None
    every_minute = list(range(60)) if minutes == ["*"] else sorted(minutes)
    every_hour = list(range(24)) if hours == ["*"] else sorted(hours)
    return (
        [time(h, m) for h in every_hour for m in every_minute],
        doms == ["*"],
        dows == ["*"],
        months == ["*"],
        set(doms),
        set(months),
        # croniter writes Sunday 0 (and 7).
        {value % 7 for value in dows if isinstance(value, int)},
        nth,
    )


def cron_walk(expression: str, after: datetime) -> Iterator[datetime]:
    """The local (naive) times after `after` that `expression` matches, in order.

    Day by day over croniter's parsed fields: croniter's own walk costs about half a
    millisecond a step, which the month view (hundreds of daily schedules) cannot
    afford. Expressions with L or W fall back to croniter (tests keep both in step)."""
    fields = _cron_fields(expression)
    if fields is None:
        walker = croniter(expression, after)
        while True:
            yield walker.get_next(datetime)
    times, dom_any, dow_any, month_any, dom_set, month_set, dow_set, nth = fields

    def matches(day: date) -> bool:
        if not month_any and day.month not in month_set:
            return False
        dom_ok = day.day in dom_set
        weekday = (day.weekday() + 1) % 7
        dow_ok = weekday in dow_set and (
            weekday not in nth or (day.day - 1) // 7 + 1 in nth[weekday]
        )
        if dom_any and dow_any:
            return True
        if dom_any:
            return dow_ok
        if dow_any:
            return dom_ok
        return dom_ok or dow_ok

    day = after.date()
    idle = 0
    while idle < _NO_MATCH_DAYS:
        if matches(day):
            idle = 0
            for at in times:
                candidate = datetime.combine(day, at)
                if candidate > after:
                    yield candidate
        else:
            idle += 1
        day += timedelta(days=1)


def occurrences(
    schedule: Schedule,
    rules: SendRules,
    *,
    after_key: str = "",
    reminder_day: date | None = None,
    limit: int = 10,
    until: datetime | None = None,
) -> list[Occurrence]:
    """Up to `limit` occurrences after `after_key` (and, with `until`, only those due
    by then plus the first one after it), each moved to an allowed slot."""
    found: list[Occurrence] = []
    # Read once: the month view walks thousands of occurrences.
    topic, valid_until, zone = schedule.topic, schedule.valid_until, rules.zone
    for local in nominal_times(schedule, rules, after_key=after_key, reminder_day=reminder_day):
        nominal = localize(local, zone)
        due, moved = rules.next_allowed(topic, nominal)
        held = None
        if valid_until is not None and due >= valid_until:
            held = Blocked(VALID_UNTIL)
        # The KEY_FORMAT, written by the C isoformat rather than strftime.
        key = local.isoformat(timespec="minutes")
        found.append(Occurrence(key, nominal, due, moved, held))
        if len(found) >= limit or (until is not None and due > until):
            break
    return found
