"""Pilot tests of the Calendrier (mode 4): moving through days, months and views,
planning, editing and cancelling a send, and what a viewer may not do."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, Static

from console.context import Context
from console.planning import scheduler
from console.planning.rules import localize, send_rules
from console.planning.service import EventRequest, PlanRequest, add_event, add_plan
from console.roles import Role
from console.sending.campaigns import Audience
from screens.calendar import CalendarGrid, CalendrierScreen
from screens.plan_form import EVERYONE, CancelPlanScreen, PlanAudienceList, PlanFormScreen
from storage.models import AuditEntry, Occurrence, Schedule
from tests.ui.conftest import AppFactory


def _paris(ctx: Context, *args: int) -> datetime:
    return localize(datetime(*args), send_rules(ctx.config).zone)  # type: ignore[misc]


def seed_plans(ctx: Context) -> None:
    """A weekly market, works, a brocante with reminders and a missed send."""
    clock = ctx.clock
    base = {"sender_id": "MAIRIE", "audience": Audience(everyone=True)}
    add_plan(
        ctx,
        PlanRequest(
            topic="evenements",
            text="Marché hebdomadaire samedi matin, place de la Halle",
            when="cron",
            cron="every-saturday 10:00",
            **base,  # type: ignore[arg-type]
        ),
    )
    add_plan(
        ctx,
        PlanRequest(
            topic="travaux",
            text="[b]Travaux[/b] rue Haute \x1b[31m: circulation alternée " + "é" * 200,
            when="cron",
            cron="every-day 12:15",
            first_day=datetime(2026, 3, 16).date(),
            last_day=datetime(2026, 3, 20).date(),
            **base,  # type: ignore[arg-type]
        ),
    )
    event_id = add_event(
        ctx,
        EventRequest(
            name="Brocante 🧺 [i]du printemps[/i]",
            starts_at=_paris(ctx, 2026, 3, 29, 9, 0),
            topic="evenements",
            place="Place de l'Église",
        ),
    )
    add_plan(
        ctx,
        PlanRequest(
            topic="evenements",
            text="Brocante dimanche 29 mars, place de l'Église",
            when="event",
            event_id=event_id,
            offsets=(7, 1),
            **base,  # type: ignore[arg-type]
        ),
    )
    # A send due at 10:05 today that no worker was up for: missed.
    add_plan(
        ctx,
        PlanRequest(
            topic="infos",
            text="Collecte des encombrants",
            when="at",
            at=_paris(ctx, 2026, 3, 14, 10, 5),
            **base,  # type: ignore[arg-type]
        ),
    )
    from datetime import timedelta

    clock.advance(timedelta(minutes=45))  # type: ignore[attr-defined]
    scheduler.tick(ctx)
    clock.advance(timedelta(minutes=-45))  # type: ignore[attr-defined]


async def loaded(pilot: Pilot[None], at_least: int = 1) -> None:
    """Wait until the calendar has read the database (in a thread)."""
    app = pilot.app
    start = getattr(app.screen, "loads", 0)
    await wait_loads(pilot, start + at_least)


async def press_loaded(pilot: Pilot[None], *keys: str) -> None:
    """Press keys that change the period, and wait for the new read."""
    start = getattr(pilot.app.screen, "loads", 0)
    await pilot.press(*keys)
    await wait_loads(pilot, start + 1)


async def wait_loads(pilot: Pilot[None], wanted: int) -> None:
    app = pilot.app
    for _ in range(200):
        await pilot.pause(0.02)
        screen = app.screen
        if isinstance(screen, CalendrierScreen) and screen.loads >= wanted:
            await pilot.pause()
            return
    raise AssertionError("the calendar never loaded")


def screen_loads(app: object) -> int:
    """The calendar's read count, seen from a dialog above it."""
    for screen in reversed(app.screen_stack):  # type: ignore[attr-defined]
        if isinstance(screen, CalendrierScreen):
            return screen.loads
    return 0


async def test_mode_4_opens_the_month_and_moves(make_app: AppFactory, town: Context) -> None:
    seed_plans(town)
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await press_loaded(pilot, "4")
        screen = app.screen
        assert isinstance(screen, CalendrierScreen)
        assert screen.selected.isoformat() == "2026-03-14"
        grid = str(screen.query_one(CalendarGrid).render())
        assert "Lu" in grid
        await pilot.press("right", "right")
        assert screen.selected.isoformat() == "2026-03-16"
        await pilot.press("down")
        assert screen.selected.isoformat() == "2026-03-23"
        await press_loaded(pilot, "pagedown")
        assert screen.selected.isoformat() == "2026-04-23"
        await press_loaded(pilot, "t")
        assert screen.selected.isoformat() == "2026-03-14"
        day = screen.query_one("#cal-day", Static).render()
        assert "samedi 14 mars 2026" in str(day)
        # The missed send shows on today's list.
        sends = screen.query_one("#cal-sends", OptionList)
        assert any(
            "Collecte" in str(sends.get_option_at_index(i).prompt)
            for i in range(sends.option_count)
        )
        await press_loaded(pilot, "v")
        assert screen.view == "week"
        await press_loaded(pilot, "v")
        assert screen.view == "agenda"


async def test_a_day_to_come_shows_its_forecast_load(make_app: AppFactory, town: Context) -> None:
    seed_plans(town)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await press_loaded(pilot, "4")
        screen = app.screen
        assert isinstance(screen, CalendrierScreen)
        # Saturday 28 March: the market and the brocante's J-1 reminder, both to the
        # whole town: one goes out, the cap holds the other for those in both.
        await pilot.press("down", "down")
        await pilot.pause()
        assert screen.selected.isoformat() == "2026-03-28"
        info = screen.data.days[screen.selected] if screen.data else None
        assert info is not None and info.forecast > 0 and info.forecast_capped > 0
        day = str(screen.query_one("#cal-day", Static).render())
        assert "À venir (estimation)" in day
        assert f"{info.forecast_capped} retenu(s)" in day


async def test_plan_a_send_from_the_form(make_app: AppFactory, town: Context, engine) -> None:  # type: ignore[no-untyped-def]
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await press_loaded(pilot, "4")
        await pilot.press("right", "right", "n")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, PlanFormScreen)
        picker = form.query_one("#field-audience", PlanAudienceList)
        for _ in range(100):  # the quartiers load off the UI thread
            await pilot.pause(0.02)
            if picker.option_count > 1:
                break
        assert picker.has_focus and picker.selected == [EVERYONE]
        # The alert's picker: each quartier with its residents; space ticks one, which
        # unticks "Tous les habitants".
        lines = [str(picker.get_option_at_index(i).prompt) for i in range(picker.option_count)]
        assert lines[0] == "Tous les habitants"
        index = next(i for i, line in enumerate(lines) if line.startswith("Centre-bourg ("))
        assert "habitants)" in lines[index]
        picker.highlighted = index
        await pilot.press("space")
        assert picker.selected == ["Centre-bourg"]
        # Typing "4" or "q" in the form types them: single keys are inert here.
        await pilot.press("tab")
        groups = form.query_one("#field-groups", Input)
        assert groups.has_focus
        await pilot.press("q", "4")
        assert isinstance(app.screen, PlanFormScreen) and groups.value == "q4"
        groups.value = ""
        form.query_one("#message").load_text("Réunion publique lundi 18h")  # type: ignore[attr-defined]
        when = form.query_one("#field-when", Input)
        when.value = "2026-03-16 21:00"
        await pilot.click("#preview")
        for _ in range(100):
            await pilot.pause(0.02)
            if form.preview is not None:
                break
        assert form.preview is not None
        assert [b.reason for b in form.preview.occurrences[0].moved_by] == ["quiet_hours"]
        preview = str(form.query_one("#plan-preview", Static).render())
        assert "mardi 17 mars 2026 à 08:00" in preview
        await pilot.press("ctrl+s")
        for _ in range(200):  # saved from a thread
            await pilot.pause(0.02)
            if isinstance(app.screen, CalendrierScreen):
                break
        assert isinstance(app.screen, CalendrierScreen)
    with Session(engine) as session:
        schedule = session.execute(select(Schedule)).scalar_one()
    assert schedule.at_local == "2026-03-16T21:00"
    assert schedule.audience == Audience(zones=("Centre-bourg",)).to_json()


async def test_a_bad_when_says_why_and_keeps_the_form(make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await press_loaded(pilot, "4")
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, PlanFormScreen)
        form.query_one("#field-when", Input).value = "demain midi"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is form
        assert "pas compris" in str(form.query_one("#form-error", Static).render())


async def test_cancel_one_occurrence_then_the_series(
    make_app: AppFactory, town: Context, engine
) -> None:  # type: ignore[no-untyped-def]
    seed_plans(town)
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await press_loaded(pilot, "4")
        await pilot.press("right", "right")  # Monday 16: the works at 12:15
        await pilot.press("enter", "x")
        await pilot.pause()
        assert isinstance(app.screen, CancelPlanScreen)
        start = screen_loads(app)
        await pilot.click("#one")
        await wait_loads(pilot, start + 1)
        await pilot.press("enter", "x")
        await pilot.pause()
        start = screen_loads(app)
        await pilot.click("#series")
        await wait_loads(pilot, start + 1)
    with Session(engine) as session:
        cancelled = session.execute(
            select(Occurrence).where(col(Occurrence.state) == "cancelled")
        ).scalar_one()
        actions = list(
            session.execute(
                select(col(AuditEntry.action)).where(col(AuditEntry.action) == "plan.cancel")
            ).scalars()
        )
    assert cancelled.local_key == "2026-03-16T12:15"
    assert len(actions) == 2


async def test_viewers_look_but_cannot_plan(make_app: AppFactory, town: Context) -> None:
    seed_plans(town)
    app = make_app(role=Role.VIEWER)
    async with app.run_test(size=(80, 24)) as pilot:
        await press_loaded(pilot, "4")
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, CalendrierScreen)
        await pilot.press("right", "right", "enter", "x")
        await pilot.pause()
        assert isinstance(app.screen, CalendrierScreen)


async def test_envois_lists_the_next_planned_sends_and_the_missed(
    make_app: AppFactory, town: Context
) -> None:
    seed_plans(town)
    app = make_app(start_mode="envois")
    async with app.run_test(size=(120, 40)) as pilot:
        line = app.screen.query_one("#planned", Static)
        for _ in range(100):
            await pilot.pause(0.02)
            if line.display:
                break
        shown = str(line.render())
        assert "Planifiés" in shown and "2 manqué(s)" in shown
        assert "[b]" not in shown or "\x1b" not in shown


def test_the_form_reads_ticks_and_groups() -> None:
    import pytest

    from console.errors import TocsinError
    from screens.plan_form import audience_from

    assert audience_from({EVERYONE}, "") == Audience(everyone=True)
    assert audience_from({"Le Moulin", "La Gare"}, "groupe:seniors , , seniors") == Audience(
        zones=("La Gare", "Le Moulin"), groups=("seniors",)
    )
    # Groups typed with "Tous" ticked narrow the send to the groups.
    assert audience_from({EVERYONE}, "seniors") == Audience(groups=("seniors",))
    # Numbers from `plan add --to` survive an edit in the form.
    assert audience_from(set(), "", ("+33612345678",)) == Audience(numbers=("+33612345678",))
    with pytest.raises(TocsinError):
        audience_from(set(), " , ")


async def test_the_form_without_an_audience_says_so(make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await press_loaded(pilot, "4")
        await pilot.press("n")
        form = app.screen
        assert isinstance(form, PlanFormScreen)
        picker = form.query_one("#field-audience", PlanAudienceList)
        for _ in range(100):
            await pilot.pause(0.02)
            if picker.option_count > 1:
                break
        await pilot.press("space")  # unticks "Tous les habitants"
        await pilot.pause()
        assert picker.selected == []
        error = str(form.query_one("#form-error", Static).render())
        assert "Cochez" in error
        await pilot.press("enter")  # Enter asks for the preview: still the form
        await pilot.pause()
        assert isinstance(app.screen, PlanFormScreen)


async def test_help_in_the_calendar_lists_its_keys(make_app: AppFactory) -> None:
    from screens.help import HelpScreen

    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await press_loaded(pilot, "4")
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
