"""Snapshots of the Calendrier at 80x24 and 120x40: month, week, agenda, the form and
its preview (frozen clock, seeded town and plans)."""

from __future__ import annotations

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from console.context import Context
from screens.plan_form import PlanFormScreen
from tests.ui.conftest import AppFactory
from tests.ui.test_calendar_flows import press_loaded, seed_plans

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]


async def _month(pilot: Pilot[None]) -> None:
    await press_loaded(pilot, "4")
    await pilot.wait_for_scheduled_animations()


@pytest.mark.parametrize("size", SIZES)
def test_calendar_month(
    snap_compare, make_app: AppFactory, town: Context, size: tuple[int, int]
) -> None:
    seed_plans(town)
    assert snap_compare(make_app(), terminal_size=size, run_before=_month)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("presses", [1, 2], ids=["week", "agenda"])
def test_calendar_views(
    snap_compare, make_app: AppFactory, town: Context, size: tuple[int, int], presses: int
) -> None:
    seed_plans(town)

    async def view(pilot: Pilot[None]) -> None:
        await _month(pilot)
        for _ in range(presses):
            await press_loaded(pilot, "v")
        await pilot.wait_for_scheduled_animations()

    assert snap_compare(make_app(), terminal_size=size, run_before=view)


@pytest.mark.parametrize("size", SIZES)
def test_calendar_form_preview(
    snap_compare, make_app: AppFactory, town: Context, size: tuple[int, int]
) -> None:
    seed_plans(town)

    async def form(pilot: Pilot[None]) -> None:
        await _month(pilot)
        await pilot.press("n")
        await pilot.pause()
        screen = pilot.app.screen
        assert isinstance(screen, PlanFormScreen)
        screen.query_one("#message").load_text("Réunion publique lundi à 18h")  # type: ignore[attr-defined]
        screen.query_one("#field-when", Input).value = "cron chaque-lundi 12h15"
        screen.action_show_preview()
        for _ in range(100):
            await pilot.pause(0.02)
            if screen.preview is not None and screen.preview.occurrences[0].key.endswith("12:15"):
                break
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()

    assert snap_compare(make_app(), terminal_size=size, run_before=form)


@pytest.mark.parametrize("size", SIZES)
def test_calendar_month_in_an_election_period(
    snap_compare, engine, clock, town: Context, size: tuple[int, int]
) -> None:
    """Municipales on 15 and 22 March 2026: L52-1 shades the month, L49 the eves and
    the days of the rounds; the day panel names them."""
    from console.config import parse_config
    from screens.app import TocsinApp
    from tests.conftest import make_context

    config = parse_config(
        '[[planning.elections]]\nname = "Municipales"\n'
        "first_round = 2026-03-15\nsecond_round = 2026-03-22\n",
        "test",
    )
    app = TocsinApp(make_context(engine, config, clock), start_mode="contacts")
    assert snap_compare(app, terminal_size=size, run_before=_month)
