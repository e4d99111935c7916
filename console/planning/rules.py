"""The French send rules, evaluated in the town's time zone.

Quiet hours, Sundays and public holidays (the `holidays` package with the town's
subdivision), and election periods: from the first day of the sixth month before
the election month (Code électoral L52-1) some topics need a justification; from
00:00 on the eve of each round until the polls close (L49) only the alert topic and
the election topics may send. The alert topic passes every rule.

This module needs nothing but the config: sending imports it to audit the alerts
that pass a rule, and the scheduler to move occurrences to allowed slots.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from console.config import Config, ElectionConfig, SendRulesConfig

QUIET_HOURS = "quiet_hours"
SUNDAY = "sunday"
HOLIDAY = "holiday"
ELECTION_L49 = "election_l49"
VALID_UNTIL = "valid_until"
FATIGUE_CAP = "fatigue_cap"

# town.region -> the `holidays` subdivision of the overseas départements and
# collectivités, whose public holidays differ (20 December in Réunion...).
_REGION_SUBDIVISIONS = {
    "RE": "974",
    "GP": "971",
    "MQ": "972",
    "GF": "973",
    "YT": "976",
    "PM": "PM",
    "BL": "BL",
    "MF": "MF",
    "NC": "NC",
    "PF": "PF",
    "WF": "WF",
}
# What a town may write for Alsace-Moselle.
_SUBDIVISION_ALIASES = {"67": "6AE", "68": "6AE", "alsace": "6AE", "moselle": "57"}
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Bounds every search for an allowed slot (a topic forbidden every day never loops).
_SEARCH_DAYS = 400


def holidays_subdivision(config: Config) -> str | None:
    given = config.planning.holidays_subdivision.strip()
    if given:
        return _SUBDIVISION_ALIASES.get(given.lower(), given)
    return _REGION_SUBDIVISIONS.get(config.town.region)


@functools.lru_cache(maxsize=256)
def _hhmm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


@functools.lru_cache(maxsize=65536)
def localize(naive: datetime, zone: ZoneInfo) -> datetime:
    """A local wall time as UTC. A time that does not exist (the spring DST gap)
    goes to the end of the gap (02:30 -> 03:00); one that happens twice is the first."""
    first = naive.replace(tzinfo=zone, fold=0)
    instant = first.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == naive:
        return instant
    # In the gap: the first instant whose wall time is at or after `naive`.
    low = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    candidate = low.replace(second=0, microsecond=0)
    while candidate.astimezone(zone).replace(tzinfo=None) < naive:
        candidate += timedelta(minutes=1)
    return candidate


@dataclass(frozen=True)
class Election:
    name: str
    rounds: tuple[date, ...]
    # L52-1: from the first day of the sixth month before the election month.
    period_start: date

    @classmethod
    def from_config(cls, election: ElectionConfig) -> Election:
        first = election.first_round
        month = first.month - 6
        year = first.year + (month - 1) // 12
        month = (month - 1) % 12 + 1
        rounds = (first,) if election.second_round is None else (first, election.second_round)
        return cls(election.name, rounds, date(year, month, 1))

    @property
    def period_end(self) -> date:
        return self.rounds[-1]


@dataclass(frozen=True)
class Blocked:
    reason: str
    detail: str = ""


class SendRules:
    """Built once per config; answers "may this topic send at this instant?"."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.zone = ZoneInfo(config.town.timezone)
        planning = config.planning
        self.alert_topic = config.alert.topic
        self.subdivision = holidays_subdivision(config)
        self.elections = tuple(Election.from_config(e) for e in planning.elections)
        self.polls_close = _hhmm(planning.polls_close)
        self.election_topics = frozenset(planning.election_topics)
        self.justification_topics = frozenset(planning.justification_topics)
        self._slots = _parse_slots(planning.best_slots)
        self._allowed: dict[tuple[str, datetime], tuple[datetime, list[Blocked]]] = {}

    # -- calendar facts ---------------------------------------------------------------

    @functools.lru_cache(maxsize=64)  # noqa: B019 (one instance per config, long-lived)
    def _holidays_of(self, year: int) -> dict[date, str]:
        import holidays

        found: Any = holidays.country_holidays(
            "FR", subdiv=self.subdivision, years=year, language="fr"
        )
        return dict(found.items())

    def holiday(self, day: date) -> str | None:
        return self._holidays_of(day.year).get(day)

    def l52_election(self, day: date) -> Election | None:
        """The election whose L52-1 period holds this day."""
        for election in self.elections:
            if election.period_start <= day <= election.period_end:
                return election
        return None

    def l49_election(self, local: datetime) -> Election | None:
        """The election round whose eve-and-day (L49) holds this local time."""
        for election in self.elections:
            for day in election.rounds:
                start = datetime.combine(day - timedelta(days=1), time())
                end = datetime.combine(day, self.polls_close)
                if start <= local < end:
                    return election
        return None

    def needs_justification(self, topic: str, day: date) -> bool:
        return topic in self.justification_topics and self.l52_election(day) is not None

    def rules_for(self, topic: str) -> SendRulesConfig | None:
        """None for the alert topic: it passes every rule."""
        if topic == self.alert_topic:
            return None
        return self.config.planning.topic_rules.get(topic, self.config.planning.rules)

    # -- the rules --------------------------------------------------------------------

    def blocked_local(self, rules: SendRulesConfig, topic: str, local: datetime) -> Blocked | None:
        start, end = _hhmm(rules.quiet_start), _hhmm(rules.quiet_end)
        now = local.time()
        if start != end and (
            (start > end and (now >= start or now < end)) or (start < end and start <= now < end)
        ):
            return Blocked(QUIET_HOURS, f"{rules.quiet_start}-{rules.quiet_end}")
        if not rules.sundays and local.weekday() == 6:
            return Blocked(SUNDAY)
        if not rules.holidays:
            name = self.holiday(local.date())
            if name is not None:
                return Blocked(HOLIDAY, name)
        if topic not in self.election_topics:
            election = self.l49_election(local)
            if election is not None:
                return Blocked(ELECTION_L49, election.name)
        return None

    def blocked(self, topic: str, at: datetime, *, as_topic: str | None = None) -> Blocked | None:
        """Why `topic` may not send at `at` (UTC), or None. `as_topic` evaluates the
        rules of another topic (what an alert passes)."""
        rules = self.rules_for(as_topic or topic)
        if rules is None:
            return None
        return self.blocked_local(
            rules, as_topic or topic, at.astimezone(self.zone).replace(tzinfo=None)
        )

    def would_block_alert(self, at: datetime) -> Blocked | None:
        """The rule an alert at `at` passes that would have held any other topic."""
        return self.blocked_local(
            self.config.planning.rules, "", at.astimezone(self.zone).replace(tzinfo=None)
        )

    def next_allowed(self, topic: str, at: datetime) -> tuple[datetime, list[Blocked]]:
        """The first instant at or after `at` when `topic` may send, and the rules
        that moved it there (empty when `at` is allowed)."""
        # The month view asks for the same slots over and over (hundreds of
        # schedules at 12:15): the answer depends on the config alone.
        key = (topic, at)
        found = self._allowed.get(key)
        if found is None:
            if len(self._allowed) > 100_000:
                self._allowed.clear()
            found = self._allowed[key] = self._next_allowed(topic, at)
        return found[0], list(found[1])

    def _next_allowed(self, topic: str, at: datetime) -> tuple[datetime, list[Blocked]]:
        rules = self.rules_for(topic)
        if rules is None:
            return at, []
        local = at.astimezone(self.zone).replace(tzinfo=None)
        moved: list[Blocked] = []
        limit = local + timedelta(days=_SEARCH_DAYS)
        while local < limit:
            why = self.blocked_local(rules, topic, local)
            if why is None:
                return (localize(local, self.zone) if moved else at), moved
            if why not in moved:
                moved.append(why)
            local = self._after(rules, why, local)
        raise ValueError(f"topic {topic!r} has no allowed slot within {_SEARCH_DAYS} days")

    def _after(self, rules: SendRulesConfig, why: Blocked, local: datetime) -> datetime:
        """The next local time worth testing once `why` holds at `local`."""
        end = _hhmm(rules.quiet_end)
        quiet_off = rules.quiet_start == rules.quiet_end
        if why.reason == QUIET_HOURS:
            day = local.date() if local.time() < end else local.date() + timedelta(days=1)
            return datetime.combine(day, end)
        if why.reason == ELECTION_L49:
            for election in self.elections:
                for day in election.rounds:
                    close = datetime.combine(day, self.polls_close)
                    if datetime.combine(day - timedelta(days=1), time()) <= local < close:
                        return close
        next_day = local.date() + timedelta(days=1)
        return datetime.combine(next_day, time() if quiet_off else end)

    def window_end(self, topic: str, at: datetime) -> datetime:
        """The first instant after `at` (allowed) when `topic` may no longer send."""
        rules = self.rules_for(topic)
        if rules is None:
            return at + timedelta(days=_SEARCH_DAYS)
        local = at.astimezone(self.zone).replace(tzinfo=None)
        start = _hhmm(rules.quiet_start)
        limit = local + timedelta(days=_SEARCH_DAYS)
        while local < limit:
            candidates = [datetime.combine(local.date() + timedelta(days=1), time())]
            if rules.quiet_start != rules.quiet_end:
                quiet = datetime.combine(local.date(), start)
                if quiet <= local:
                    quiet += timedelta(days=1)
                candidates.append(quiet)
            for election in self.elections:
                for day in election.rounds:
                    eve = datetime.combine(day - timedelta(days=1), time())
                    if eve > local:
                        candidates.append(eve)
            local = min(candidates)
            if self.blocked_local(rules, topic, local) is not None:
                return localize(local, self.zone)
        return localize(limit, self.zone)

    # -- best slots -------------------------------------------------------------------

    def best_slot(self, topic: str, day: date, *, not_before: datetime | None = None) -> datetime:
        """The first best slot on or after `day` that the topic may send in (and
        after `not_before`), as UTC."""
        for offset in range(_SEARCH_DAYS):
            current = day + timedelta(days=offset)
            for weekday, at in self._slots:
                if weekday != current.weekday():
                    continue
                instant = localize(datetime.combine(current, at), self.zone)
                if not_before is not None and instant < not_before:
                    continue
                if self.blocked(topic, instant) is None:
                    return instant
        raise ValueError(f"no best slot for topic {topic!r} within {_SEARCH_DAYS} days")

    def slots_of(self, day: date) -> list[time]:
        return [at for weekday, at in self._slots if weekday == day.weekday()]


def _parse_slots(slots: list[str]) -> list[tuple[int, time]]:
    parsed: list[tuple[int, time]] = []
    for slot in slots:
        days, at = slot.split()
        first, _, last = days.partition("-")
        start = _DAYS.index(first)
        end = _DAYS.index(last or first)
        for weekday in range(start, end + 1):
            parsed.append((weekday, _hhmm(at)))
    return sorted(parsed, key=lambda item: (item[0], item[1]))


_rules_cache: dict[int, SendRules] = {}


def send_rules(config: Config) -> SendRules:
    """One SendRules per config object (holidays are computed once per year)."""
    found = _rules_cache.get(id(config))
    if found is None or found.config is not config:
        found = _rules_cache[id(config)] = SendRules(config)
    return found
