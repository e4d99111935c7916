"""Pilot tests of the emergency alert: `!` from anywhere, a template, zones, the typed
count, then the live queue, with the simulated provider sending for real."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.text import Text
from sqlmodel import Session, col, select
from textual.pilot import Pilot
from textual.widgets import Static, TextArea

from console.context import Context
from console.roles import Role
from console.sending.demo_worker import DemoWorker
from console.sending.worker_launch import Launched
from screens.app import TocsinApp
from screens.confirm_action import ConfirmActionScreen
from screens.contacts import ContactsScreen
from screens.emergency_audience import AudienceStep
from screens.emergency_compose import ComposeStep
from screens.emergency_confirm import ConfirmStep
from screens.emergency_template import TemplateStep
from screens.envois import EnvoisScreen
from screens.widgets.typed_count import CountField
from storage.models import AuditEntry, Campaign, Message
from tests.ui.conftest import AppFactory
from tests.ui.test_envois_flows import polled


def _plain(widget: Static) -> str:
    rendered = widget.render()
    return rendered.plain if isinstance(rendered, Text) else str(rendered)


async def _settle(pilot: Pilot[None], rounds: int = 5) -> None:
    for _ in range(rounds):
        await pilot.pause(0.05)


async def _wait_for(pilot: Pilot[None], screen_type: type) -> None:
    for _ in range(100):
        if isinstance(pilot.app.screen, screen_type):
            await _settle(pilot)
            return
        await pilot.pause(0.02)
    raise AssertionError(f"{screen_type.__name__} never came; at {pilot.app.screen}")


async def _expected_count(pilot: Pilot[None]) -> int:
    screen = pilot.app.screen
    assert isinstance(screen, ConfirmStep)
    for _ in range(100):
        if screen.expected is not None:
            return screen.expected.recipients
        await pilot.pause(0.02)
    raise AssertionError("the confirmation never counted the recipients")


def _campaigns(town: Context) -> list[Campaign]:
    with Session(town.engine) as session:
        return list(session.exec(select(Campaign)).all())


@pytest.fixture
def worker(town: Context) -> Iterator[DemoWorker]:
    running = DemoWorker(town).start()
    yield running
    running.stop()


async def _to_confirmation(pilot: Pilot[None], zone_downs: int = 1) -> int:
    await pilot.press("exclamation_mark")
    await _wait_for(pilot, TemplateStep)
    await pilot.press("enter")  # Inondation
    await _wait_for(pilot, AudienceStep)
    await pilot.press(*["down"] * zone_downs, "space", "enter")  # the first zone
    await _wait_for(pilot, ComposeStep)
    await pilot.press("ctrl+n")
    await _wait_for(pilot, ConfirmStep)
    return await _expected_count(pilot)


async def test_alert_from_contacts_to_delivered(
    make_app: AppFactory, town: Context, worker: DemoWorker
) -> None:
    app = make_app(start_mode="contacts")
    async with app.run_test(size=(120, 40)) as pilot:
        assert isinstance(app.screen, ContactsScreen)
        expected = await _to_confirmation(pilot)
        assert expected > 0
        # The cursor sits in the count field: the count is typed as the screen says.
        assert app.focused is not None and app.focused.id == "confirm-count"
        await pilot.press(*str(expected), "enter")
        await _wait_for(pilot, EnvoisScreen)
        campaign = _campaigns(town)[0]
        assert campaign.kind == "emergency" and campaign.priority == 100
        assert "Centre-bourg" in campaign.text and "Commune de démonstration" in campaign.text
        screen = app.screen
        assert isinstance(screen, EnvoisScreen)
        for _ in range(300):
            await polled(pilot)
            progress = screen.snapshot.campaigns[0] if screen.snapshot else None
            if progress and progress.waiting == 0 and progress.counts["submitted"] == 0:
                break
        else:
            raise AssertionError("the alert never finished")
        assert screen.selected_campaign() == campaign.id
        assert progress.total == expected + sum(progress.counts[s] for s in ("skipped",))
        assert progress.counts["delivered"] > 0
        detail = _plain(screen.query_one("#detail", Static))
        assert f"délivrés {progress.counts['delivered']}" in detail
    with Session(town.engine) as session:
        queued = session.exec(
            select(Message).where(
                col(Message.campaign_id) == campaign.id, col(Message.state) == "queued"
            )
        ).all()
        actions = session.exec(select(AuditEntry.action)).all()
    assert queued == [] and "campaign.create" in actions and "campaign.enqueued" in actions


async def test_a_placeholder_must_be_filled(make_app: AppFactory, town: Context) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("exclamation_mark")
        await _wait_for(pilot, TemplateStep)
        await pilot.press("down", "enter")  # Accident de la route: {lieu}
        await _wait_for(pilot, AudienceStep)
        await pilot.press("enter")  # everyone
        await _wait_for(pilot, ComposeStep)
        await pilot.press("ctrl+n")
        assert "Complétez d'abord : {lieu}" in _plain(app.screen.query_one("#form-error", Static))
        assert isinstance(app.screen, ComposeStep)
        # {lieu} is selected: typing replaces it.
        await pilot.press(*"RD 12")
        assert "(RD 12)" in app.screen.query_one(TextArea).text
        await pilot.press("ctrl+n")
        await _wait_for(pilot, ConfirmStep)


async def test_a_wrong_count_sends_nothing(make_app: AppFactory, town: Context) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        expected = await _to_confirmation(pilot)
        await pilot.press("enter")  # a reflex Enter on the empty field: nothing sent
        await _settle(pilot)
        assert isinstance(app.screen, ConfirmStep)
        assert "tapez " + str(expected) in _plain(app.screen.query_one("#form-error", Static))
        await pilot.press(*str(expected + 1), "enter")  # the wrong count: nothing either
        await _settle(pilot)
        assert isinstance(app.screen, ConfirmStep)
        assert app.screen.query_one(CountField).value == ""
        assert _campaigns(town) == []
        await pilot.press("tab", "enter")  # "Abandonner l'alerte": dropped, nothing sent
        await _wait_for(pilot, ContactsScreen)
        assert app.alert is None
    assert _campaigns(town) == []


async def test_esc_backs_out_one_step_at_a_time(make_app: AppFactory, town: Context) -> None:
    app = make_app(start_mode="contacts")
    async with app.run_test(size=(120, 40)) as pilot:
        await _to_confirmation(pilot)
        for step in (ComposeStep, AudienceStep, TemplateStep, ContactsScreen):
            await pilot.press("escape")
            await _wait_for(pilot, step)
    assert _campaigns(town) == []


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
async def test_only_alerters_get_past_composing(
    make_app: AppFactory, town: Context, role: Role
) -> None:
    app = make_app(role=role)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("exclamation_mark")
        await _wait_for(pilot, TemplateStep)
        # Said from the first step: who they are, that they may only prepare, who sends.
        said = _plain(app.screen.query_one("#alert-role", Static))
        assert "peut préparer cette alerte mais pas l'envoyer" in said
        assert "le groupe tocsin-alert" in said and "root" in said
        await pilot.press("enter")
        await _wait_for(pilot, AudienceStep)
        await pilot.press("enter")
        await _wait_for(pilot, ComposeStep)
        await pilot.press("ctrl+n")
        await _settle(pilot)
        # ctrl+n is shown dimmed and does nothing; the header still says who sends.
        assert isinstance(app.screen, ComposeStep)
        assert "pas l'envoyer" in _plain(app.screen.query_one("#alert-role", Static))
    assert _campaigns(town) == []


async def test_an_alerter_is_told_nothing_about_roles(make_app: AppFactory) -> None:
    app = make_app(role=Role.ALERTER)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("exclamation_mark")
        await _wait_for(pilot, TemplateStep)
        assert not app.screen.query("#alert-role")


async def test_no_worker_is_said_at_once_and_one_can_be_started(
    make_app: AppFactory, town: Context, tmp_path: Path
) -> None:
    started: list[bool] = []

    def launcher() -> Launched:
        started.append(True)
        return Launched(4242, tmp_path / "worker.log")

    app: TocsinApp = make_app()
    app.worker_launcher = launcher
    async with app.run_test(size=(120, 40)) as pilot:
        expected = await _to_confirmation(pilot)
        # Said in red before confirming, and asked again once it is queued.
        ahead = _plain(app.screen.query_one("#ahead", Static))
        assert "Aucun service d'envoi (worker) actif" in ahead
        await pilot.press(*str(expected), "enter")
        await _wait_for(pilot, ConfirmActionScreen)
        assert "Aucun worker actif" in _plain(app.screen.query_one("#form-title", Static))
        await pilot.press("tab", "enter")
        await _wait_for(pilot, EnvoisScreen)
        assert started == [True]
        assert "Aucun worker actif" in _plain(app.screen.query_one("#worker-line", Static))
    assert len(_campaigns(town)) == 1
