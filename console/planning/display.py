"""How planning shows times and rules to people, in the operator's language."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from console.i18n import Translator
from console.planning.rules import Blocked


def say_date(t: Translator, day: date) -> str:
    return t(
        "planning.date",
        day=t(f"planning.day.{day.weekday()}"),
        date=day.day,
        month=t(f"planning.month.{day.month}"),
        year=day.year,
    )


def say_when(t: Translator, at: datetime, zone: ZoneInfo) -> str:
    """ "lundi 16 mars 2026 à 08:00", in the town's time zone."""
    local = at.astimezone(zone)
    return t(
        "planning.datetime",
        day=t(f"planning.day.{local.weekday()}"),
        date=local.day,
        month=t(f"planning.month.{local.month}"),
        year=local.year,
        time=local.strftime("%H:%M"),
    )


def say_rule(t: Translator, blocked: Blocked) -> str:
    return t(f"planning.reason.{blocked.reason}", detail=blocked.detail)


def say_period(t: Translator, year: int, month: int) -> str:
    return f"{t(f'planning.month.{month}')} {year}"
