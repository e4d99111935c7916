"""How the live queue writes its figures: durations, rates, bars. Plain text, no UI."""

from __future__ import annotations

import math

from console.i18n import Translator

BAR_FULL, BAR_EMPTY = "█", "░"


def bar(fraction: float, width: int) -> str:
    """A bar that shows full only when everything is done (never rounds up to 100%)."""
    fraction = min(max(fraction, 0.0), 1.0)
    filled = width if fraction >= 1 else min(width - 1, math.floor(fraction * width))
    return BAR_FULL * filled + BAR_EMPTY * (width - filled)


def percent(fraction: float) -> str:
    value = min(max(fraction, 0.0), 1.0) * 100
    return "100 %" if value >= 100 else f"{math.floor(value)} %"


def duration(t: Translator, seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = math.ceil(seconds)
    if seconds < 60:
        return t("figures.seconds", s=seconds)
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return t("figures.minutes", m=minutes, s=seconds)
    hours, minutes = divmod(minutes, 60)
    return t("figures.hours", h=hours, m=minutes)


def rate(t: Translator, per_second: float) -> str:
    if per_second <= 0:
        return "—"
    shown = f"{per_second:.1f}" if per_second < 10 else f"{per_second:.0f}"
    return t("figures.rate", rate=shown.replace(".", t("figures.decimal")))


def count(t: Translator, value: int) -> str:
    """Thousands grouped the local way: 50 000 in French, 50,000 in English."""
    return f"{value:,}".replace(",", t("figures.thousands"))
