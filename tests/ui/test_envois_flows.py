"""Pilot tests of the live queue (Envois) and a campaign's view, checked in the database."""

from __future__ import annotations

from rich.text import Text
from sqlmodel import Session, col, select
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from console.context import Context
from console.roles import Role
from console.sending.campaign_ops import get_campaign
from console.sending.campaigns import Audience, CampaignRequest, create_campaign
from console.sending.providers.base import SendResult
from console.sending.queue import claim_batch, record_results
from console.sending.workers import beat
from screens.app import TocsinApp
from screens.campaign import CampaignScreen
from screens.confirm_action import ConfirmActionScreen
from screens.envois import EnvoisScreen
from storage.models import AuditEntry, Message
from tests.ui.conftest import AppFactory


def _campaign(town: Context, kind: str = "planned") -> int:
    return create_campaign(
        town,
        CampaignRequest(
            topic="alertes",
            text="Coupure d'eau rue [b]Haute[/b] demain 8h-12h",
            sender_id="MAIRIE",
            audience=Audience(everyone=True),
            kind=kind,
        ),
    ).campaign_id  # type: ignore[arg-type]


def _answer(town: Context, count: int, outcome: str, reason: str = "") -> None:
    claimed = claim_batch(town.engine, "w1", town.clock.now(), 60, count)
    record_results(
        town.engine,
        "w1",
        claimed,
        [
            SendResult(c.message_id, outcome, reason=reason)  # type: ignore[arg-type]
            for c in claimed
        ],
        town.clock.now(),
        5,
    )


async def polled(
    pilot: Pilot[None],
    screen_type: type = EnvoisScreen,
    at_least: int = 1,
) -> None:
    """Wait until the screen has read the database (its poll runs in a thread)."""
    app = pilot.app
    start = getattr(app.screen, "polls", 0)
    for _ in range(100):
        await pilot.pause(0.02)
        screen = app.screen
        if isinstance(screen, screen_type) and screen.polls >= start + at_least:  # type: ignore[attr-defined]
            await pilot.pause()
            return
    raise AssertionError(f"{screen_type.__name__} never polled")


def _detail(app: TocsinApp) -> str:
    renderable = app.screen.query_one("#detail", Static).render()
    return renderable.plain if isinstance(renderable, Text) else str(renderable)


async def test_queue_shows_counts_and_follows_the_database(
    make_app: AppFactory, town: Context
) -> None:
    campaign_id = _campaign(town)
    _answer(town, 10, "submitted")
    app = make_app(start_mode="envois")
    async with app.run_test(size=(120, 40)) as pilot:
        await polled(pilot)
        table = app.screen.query_one(DataTable)
        assert table.row_count == 1
        assert "transmis 10" in _detail(app)
        # The worker goes on in another process: the screen follows without a key.
        _answer(town, 5, "failed", reason="21610: unsubscribed recipient")
        await polled(pilot, at_least=2)
        assert "échecs 5" in _detail(app) and "transmis 10" in _detail(app)
        # Residents' text is shown as typed, never as markup.
        assert "[b]Haute[/b]" in _detail(app)
        assert "Aucun worker actif" in str(app.screen.query_one("#worker-line", Static).render())
        beat(town.engine, "w1", "simulated", town.clock.now(), 15)
        await polled(pilot, at_least=2)
        assert "Worker actif" in str(app.screen.query_one("#worker-line", Static).render())
        assert get_campaign(town, campaign_id).counts["failed"] == 5


async def test_drill_in_filter_and_retry_failed(make_app: AppFactory, town: Context) -> None:
    campaign_id = _campaign(town)
    _answer(town, 3, "failed", reason="30003: Unreachable destination handset")
    app = make_app(start_mode="envois")
    async with app.run_test(size=(120, 40)) as pilot:
        await polled(pilot)
        await pilot.press("enter")
        await polled(pilot, CampaignScreen)
        screen = app.screen
        assert isinstance(screen, CampaignScreen)
        # f cycles through the states that have messages: all -> queued -> failed...
        while screen.state_filter != "failed":
            await pilot.press("f")
        await polled(pilot, CampaignScreen, at_least=2)
        table = screen.query_one(DataTable)
        assert table.row_count == 3
        assert table.get_row_at(0)[4].plain == "30003: Unreachable destination handset"

        await pilot.press("R")
        assert isinstance(app.screen, ConfirmActionScreen)
        await pilot.press("shift+tab", "4", "enter")  # the wrong count: nothing happens
        assert isinstance(app.screen, ConfirmActionScreen)
        assert get_campaign(town, campaign_id).counts["failed"] == 3
        await pilot.press("backspace", "3", "enter")
        await pilot.pause()
        assert isinstance(app.screen, CampaignScreen)
        assert get_campaign(town, campaign_id).counts["failed"] == 0
        await pilot.press("escape")
        assert isinstance(app.screen, EnvoisScreen)
    with Session(town.engine) as session:
        assert "campaign.retry" in session.exec(select(AuditEntry.action)).all()


async def test_pause_resume_and_cancel_ask_first(make_app: AppFactory, town: Context) -> None:
    campaign_id = _campaign(town)
    app = make_app(start_mode="envois")
    async with app.run_test(size=(120, 40)) as pilot:
        await polled(pilot)
        await pilot.press("p")
        assert isinstance(app.screen, ConfirmActionScreen)
        await pilot.press("enter")  # focus is on Cancel: nothing changes
        assert get_campaign(town, campaign_id).status == "queued"
        await pilot.press("p", "tab", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert get_campaign(town, campaign_id).status == "paused"
        await pilot.press("r", "tab", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert get_campaign(town, campaign_id).status == "running"
        waiting = get_campaign(town, campaign_id).counts["queued"]
        await pilot.press("x")
        body = str(app.screen.query_one("#confirm-body", Static).render())
        assert f"{waiting} messages en attente ne partiront jamais" in body
        await pilot.press("shift+tab", *str(waiting), "enter")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert get_campaign(town, campaign_id).status == "cancelled"
    with Session(town.engine) as session:
        states = set(
            session.exec(select(Message.state).where(col(Message.campaign_id) == campaign_id))
        )
    assert states == {"skipped"}


async def test_a_viewer_may_watch_but_not_act(make_app: AppFactory, town: Context) -> None:
    campaign_id = _campaign(town)
    app = make_app(role=Role.VIEWER, start_mode="envois")
    async with app.run_test(size=(120, 40)) as pilot:
        await polled(pilot)
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, EnvoisScreen)
        assert get_campaign(town, campaign_id).status == "queued"


async def test_two_consoles_see_the_same_campaign(make_app: AppFactory, town: Context) -> None:
    campaign_id = _campaign(town)
    first, second = make_app(start_mode="envois"), make_app(start_mode="envois")
    async with first.run_test(size=(120, 40)) as one, second.run_test(size=(120, 40)) as two:
        await polled(one)
        await polled(two)
        await one.press("p", "tab", "enter")
        await one.pause()
        await polled(two, at_least=2)
        assert "en pause" in _detail(second)
        assert get_campaign(town, campaign_id).status == "paused"


async def test_a_console_reopened_mid_send_finds_it_where_it_is(
    make_app: AppFactory, town: Context
) -> None:
    _campaign(town, kind="emergency")
    _answer(town, 4, "submitted")
    first = make_app(start_mode="envois")
    async with first.run_test(size=(120, 40)) as pilot:
        await polled(pilot)
        assert "transmis 4" in _detail(first)
    # The SSH session dropped; the worker went on meanwhile.
    _answer(town, 6, "submitted")
    second = make_app(start_mode="envois")
    async with second.run_test(size=(120, 40)) as pilot:
        await polled(pilot)
        assert "transmis 10" in _detail(second)
        assert "ALERTE" in _detail(second)


async def test_a_long_campaign_pages_and_refreshes_around_the_cursor(
    make_app: AppFactory, town: Context
) -> None:
    from console.contacts.service import ContactInput, add_contact

    for i in range(230):
        add_contact(town, ContactInput(number=f"06 40 00 {i // 100:02d} {i % 100:02d}"))
    campaign_id = _campaign(town)
    app = make_app(start_mode="envois")
    async with app.run_test(size=(120, 40)) as pilot:
        await polled(pilot)
        await pilot.press("enter")
        await polled(pilot, CampaignScreen)
        screen = app.screen
        assert isinstance(screen, CampaignScreen)
        table = screen.query_one(DataTable)
        assert table.row_count == 100  # one page
        for _ in range(12):  # down past what is loaded: the next pages come
            await pilot.press("pagedown")
            await pilot.pause()
        assert table.row_count > 200
        deep = table.cursor_row
        assert deep > 150
        # The worker answers for every message; the rows around the cursor follow.
        _answer(town, 400, "failed", reason="30003: Unreachable destination handset")
        await polled(pilot, CampaignScreen, at_least=3)
        row = table.get_row_at(deep)
        assert row[2].plain == "échecs" and row[4].plain.startswith("30003")
        assert table.row_count > 200  # what was loaded stays loaded
    assert get_campaign(town, campaign_id).counts["failed"] > 200
