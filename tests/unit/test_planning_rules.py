"""The French send rules: holidays by subdivision, quiet hours, Sundays, elections,
DST, best slots and reminders' keys (2026-2027 pinned)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from console.config import Config, parse_config
from console.planning.rules import (
    ELECTION_L49,
    HOLIDAY,
    QUIET_HOURS,
    SUNDAY,
    SendRules,
    localize,
)
from console.planning.schedules import ScheduleError, occurrences, preset_cron
from storage.models import Schedule

PARIS = ZoneInfo("Europe/Paris")


def _rules(text: str = "") -> SendRules:
    return SendRules(parse_config(text, "test") if text else Config())


def _paris(*args: int) -> datetime:
    return localize(datetime(*args), PARIS)  # type: ignore[misc]


@pytest.mark.parametrize(
    "day",
    [
        date(2026, 4, 6),  # Easter Monday
        date(2026, 5, 14),  # Ascension
        date(2026, 5, 25),  # Whit Monday
        date(2026, 7, 14),
        date(2026, 11, 11),
        date(2027, 3, 29),  # Easter Monday 2027
        date(2027, 5, 6),  # Ascension 2027
        date(2027, 5, 17),  # Whit Monday 2027
        date(2027, 7, 14),
        date(2027, 11, 11),
    ],
)
def test_national_holidays_hold_planned_sends(day: date) -> None:
    rules = _rules()
    assert rules.holiday(day) is not None
    blocked = rules.blocked("evenements", _paris(day.year, day.month, day.day, 12, 15))
    assert blocked is not None and blocked.reason == HOLIDAY


@pytest.mark.parametrize("day", [date(2026, 4, 3), date(2026, 12, 26), date(2027, 3, 26)])
def test_good_friday_and_26_december_in_moselle_only(day: date) -> None:
    assert _rules().holiday(day) is None
    assert _rules('[planning]\nholidays_subdivision = "57"').holiday(day) is not None
    assert _rules('[planning]\nholidays_subdivision = "67"').holiday(day) is not None


def test_reunion_has_20_december_from_the_town_region() -> None:
    rules = _rules('[town]\nregion = "RE"\ntimezone = "Indian/Reunion"')
    assert rules.holiday(date(2026, 12, 20)) is not None
    assert rules.holiday(date(2027, 12, 20)) is not None
    assert _rules().holiday(date(2026, 12, 20)) is None


def test_quiet_hours_and_sunday_move_to_the_next_allowed_slot() -> None:
    rules = _rules()
    # Saturday 14 March 2026, 20:30 -> Monday 16 March 08:00 (Sunday in between).
    due, moved = rules.next_allowed("evenements", _paris(2026, 3, 14, 20, 30))
    assert due == _paris(2026, 3, 16, 8, 0)
    assert [b.reason for b in moved] == [QUIET_HOURS, SUNDAY]
    # Allowed: unchanged.
    at = _paris(2026, 3, 14, 10, 0)
    assert rules.next_allowed("evenements", at) == (at, [])
    # Easter weekend: Sunday then Easter Monday.
    due, moved = rules.next_allowed("evenements", _paris(2026, 4, 5, 12, 0))
    assert due == _paris(2026, 4, 7, 8, 0)
    assert [b.reason for b in moved] == [SUNDAY, HOLIDAY]


def test_alert_topic_passes_every_rule_but_it_is_known() -> None:
    rules = _rules()
    sunday_night = _paris(2026, 3, 15, 23, 0)
    assert rules.blocked("alertes", sunday_night) is None
    assert rules.next_allowed("alertes", sunday_night) == (sunday_night, [])
    assert rules.would_block_alert(sunday_night) is not None


def test_per_topic_rules_replace_the_defaults() -> None:
    rules = _rules('[planning.topic_rules.travaux]\nsundays = true\nquiet_start = "21:00"')
    sunday = _paris(2026, 3, 15, 20, 30)
    assert rules.blocked("travaux", sunday) is None
    assert rules.blocked("evenements", sunday) is not None


ELECTIONS = """
[[planning.elections]]
name = "Municipales"
first_round = 2026-03-15
second_round = 2026-03-22
"""


def test_election_periods() -> None:
    rules = _rules(ELECTIONS)
    # L52-1: from 1 September 2025 (sixth month before March) to the last round.
    assert rules.needs_justification("evenements", date(2025, 9, 1))
    assert not rules.needs_justification("evenements", date(2025, 8, 31))
    assert not rules.needs_justification("travaux", date(2026, 1, 10))
    assert not rules.needs_justification("infos", date(2026, 3, 23))
    # L49: from 00:00 on the eve until the polls close, only alerts and elections.
    eve = _paris(2026, 3, 14, 10, 0)
    blocked = rules.blocked("travaux", eve)
    assert blocked is not None and blocked.reason == ELECTION_L49
    assert rules.blocked("elections", eve) is None
    assert rules.blocked("travaux", _paris(2026, 3, 13, 19, 59)) is None
    due, _ = rules.next_allowed("elections", _paris(2026, 3, 21, 12, 0))
    assert due == _paris(2026, 3, 21, 12, 0)
    # After the eve (Saturday) and the day (Sunday): Monday 08:00.
    due, _ = rules.next_allowed("travaux", _paris(2026, 3, 21, 9, 0))
    assert due == _paris(2026, 3, 23, 8, 0)


def test_window_end_is_the_next_forbidden_instant() -> None:
    rules = _rules()
    assert rules.window_end("evenements", _paris(2026, 3, 14, 10, 0)) == _paris(2026, 3, 14, 20)
    assert rules.window_end("evenements", _paris(2026, 3, 13, 10, 0)) == _paris(2026, 3, 13, 20)


def test_best_slot_skips_sundays_and_holidays() -> None:
    rules = _rules()
    # Sunday 5 April, Easter Monday 6 April: Tuesday 12:15.
    assert rules.best_slot("evenements", date(2026, 4, 5)) == _paris(2026, 4, 7, 12, 15)
    assert rules.best_slot("evenements", date(2026, 3, 14)) == _paris(2026, 3, 14, 10, 0)


def test_localize_across_dst() -> None:
    # 02:30 does not exist on 29 March 2026: 03:00 local.
    assert localize(datetime(2026, 3, 29, 2, 30), PARIS) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    # 02:30 happens twice on 25 October 2026: the first one.
    assert localize(datetime(2026, 10, 25, 2, 30), PARIS) == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC
    )


def _schedule(**values: object) -> Schedule:
    base: dict[str, object] = {
        "kind": "cron",
        "topic": "alertes",
        "text": "x",
        "sender_id": "MAIRIE",
        "created_by": "t",
        "created_at": datetime(2026, 3, 1, tzinfo=UTC),
        "updated_at": datetime(2026, 3, 1, tzinfo=UTC),
    }
    return Schedule(**{**base, **values})


@pytest.mark.parametrize(
    ("after", "day", "expected"),
    [
        ("2026-03-28T12:00", date(2026, 3, 29), datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
        ("2026-10-24T12:00", date(2026, 10, 25), datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
        ("2027-03-27T12:00", date(2027, 3, 28), datetime(2027, 3, 28, 1, 0, tzinfo=UTC)),
        ("2027-10-30T12:00", date(2027, 10, 31), datetime(2027, 10, 31, 0, 30, tzinfo=UTC)),
    ],
)
def test_daily_0230_fires_once_on_dst_days(after: str, day: date, expected: datetime) -> None:
    # The alert topic: no quiet hours, so the DST handling shows alone.
    found = occurrences(_schedule(cron="30 2 * * *"), _rules(), after_key=after, limit=3)
    on_day = [o for o in found if o.local.date() == day]
    assert len(on_day) == 1
    assert on_day[0].due == expected
    assert on_day[0].key == f"{day.isoformat()}T02:30"
    assert len({o.key for o in found}) == 3


def test_presets() -> None:
    assert preset_cron("every-monday 12:15") == "15 12 * * 1"
    assert preset_cron("chaque-lundi 12h15") == "15 12 * * 1"
    assert preset_cron("first-saturday 10:00") == "0 10 * * 6#1"
    assert preset_cron("premier-samedi 10h00") == "0 10 * * 6#1"
    assert preset_cron("every-day 12:15") == "15 12 * * *"
    assert preset_cron("0 9 * * 1-5") == "0 9 * * 1-5"
    with pytest.raises(ScheduleError):
        preset_cron("every-blursday 12:15")
    with pytest.raises(ScheduleError):
        preset_cron("not a cron")


def test_first_saturday_and_works_period() -> None:
    rules = _rules()
    found = occurrences(
        _schedule(topic="travaux", cron=preset_cron("first-saturday 10:00")), rules, limit=3
    )
    assert [o.key for o in found] == ["2026-03-07T10:00", "2026-04-04T10:00", "2026-05-02T10:00"]
    works = _schedule(
        topic="travaux", cron="15 12 * * *", first_day="2026-04-01", last_day="2026-04-10"
    )
    found = occurrences(works, rules, limit=50)
    assert found[0].key == "2026-04-01T12:15" and found[-1].key == "2026-04-10T12:15"
    # Sunday 5 and Easter Monday 6 April move to the next allowed instant.
    moved = {o.key: o.due for o in found if o.moved_by}
    assert moved["2026-04-05T12:15"] == _paris(2026, 4, 7, 8, 0)
    assert all(o.due.astimezone(PARIS).time() >= time(8) for o in found)
    assert all(o.due - o.nominal >= timedelta(0) for o in found)


@pytest.mark.parametrize(
    "expression",
    [
        "15 12 * * *",
        "0 10 * * 6#1",
        "*/45 * * * *",
        "0 9 * * 1-5",
        "0 0 1,15 * 1",
        "30 2 * * 7",
        "0 0 L * *",
        "0 12 * 3 *",
        "5,35 8-18/2 * * 0,6",
        "0 7 29 2 *",
        "0 10 * * 2#3",
    ],
)
def test_the_fast_cron_walk_agrees_with_croniter(expression: str) -> None:
    from croniter import croniter

    from console.planning.schedules import cron_walk

    start = datetime(2026, 1, 1, 0, 0)
    walker = croniter(expression, start)
    expected = [walker.get_next(datetime) for _ in range(300)]
    fast = cron_walk(expression, start)
    assert [next(fast) for _ in range(300)] == expected
