"""Snapshots of every screen at 80x24 and 120x40, on a seeded town and a frozen clock."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from console.clock import FrozenClock
from console.context import Context
from console.roles import Role
from console.sending.campaigns import Audience, CampaignRequest, create_campaign
from console.sending.providers.base import SendResult
from console.sending.queue import claim_batch, finish_campaigns, record_results
from console.sending.workers import beat, new_owner
from screens.campaign import CampaignScreen
from tests.ui.conftest import AppFactory
from tests.ui.test_envois_flows import polled

REPO = Path(__file__).resolve().parents[2]
SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]


async def _settle(pilot: Pilot[None]) -> None:
    await pilot.pause()
    # A blinking cursor is drawn or not depending on when the picture is taken.
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()


@pytest.mark.parametrize("size", SIZES)
def test_contacts(snap_compare, make_app: AppFactory, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(), terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
def test_contacts_english(snap_compare, make_app: AppFactory, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(language="en"), terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
def test_contacts_search(snap_compare, make_app: AppFactory, size: tuple[int, int]) -> None:
    async def search(pilot: Pilot[None]) -> None:
        await pilot.press("slash", *"garcon", "enter")
        await _settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=search)


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare, make_app: AppFactory, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(), press=["question_mark"], terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
def test_add_form(snap_compare, make_app: AppFactory, size: tuple[int, int]) -> None:
    async def fill(pilot: Pilot[None]) -> None:
        await pilot.press("a", *"01 42 76 40 41")
        await _settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=fill)


@pytest.mark.parametrize("size", SIZES)
def test_consent_form(snap_compare, make_app: AppFactory, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(), press=["c"], terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
def test_erase_confirmation(snap_compare, make_app: AppFactory, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(), press=["d"], terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
def test_import_screen(snap_compare, make_app: AppFactory, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(), press=["i"], terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", SIZES)
def test_import_preview(
    snap_compare, make_app: AppFactory, size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A relative path, so the screen is the same wherever the repository is cloned.
    monkeypatch.chdir(REPO)

    async def preview(pilot: Pilot[None]) -> None:
        await pilot.press("i", *"tests/fixtures/habitants-exemple.csv", "enter")
        await _settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=preview)


# The live queue, a campaign, the confirmations and the alert, each step --------------


def _busy_town(town: Context) -> int:
    """Two campaigns: a planned one done an hour ago, an emergency under way."""
    clock = town.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(timedelta(hours=-1))
    planned = create_campaign(
        town,
        CampaignRequest(
            topic="evenements",
            text="Fête du village samedi 15h, place de la mairie",
            sender_id="MAIRIE",
            audience=Audience(everyone=True),
        ),
    ).campaign_id
    claimed = claim_batch(town.engine, "w1", clock.now(), 60, 100)
    record_results(
        town.engine,
        "w1",
        claimed,
        [SendResult(c.message_id, "submitted") for c in claimed],
        clock.now(),
        5,
    )
    finish_campaigns(town.engine)
    clock.advance(timedelta(minutes=59))
    emergency = create_campaign(
        town,
        CampaignRequest(
            topic="alertes",
            text="Crue de la Sèvre : évacuez les berges [vite]",
            sender_id="MAIRIE",
            audience=Audience(everyone=True),
            kind="emergency",
        ),
    ).campaign_id
    claimed = claim_batch(town.engine, "w1", clock.now(), 60, 25)
    results = [SendResult(c.message_id, "submitted") for c in claimed[:20]]
    results += [
        SendResult(c.message_id, "failed", reason="21211: Invalid 'To' Phone Number")
        for c in claimed[20:22]
    ]
    results += [SendResult(c.message_id, "unknown", reason="timeout") for c in claimed[22:]]
    record_results(town.engine, "w1", claimed, results, clock.now(), 5)
    clock.advance(timedelta(minutes=1))
    beat(town.engine, "w1", "simulated", clock.now(), 25)
    assert planned
    return emergency


async def _polled(pilot: Pilot[None]) -> None:
    await polled(pilot, type(pilot.app.screen))
    await _settle(pilot)


@pytest.mark.parametrize("size", SIZES)
def test_envois_empty(snap_compare, make_app: AppFactory, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(start_mode="envois"), terminal_size=size, run_before=_polled)


@pytest.mark.parametrize("size", SIZES)
def test_envois_live(
    snap_compare, make_app: AppFactory, town: Context, size: tuple[int, int]
) -> None:
    _busy_town(town)
    assert snap_compare(make_app(start_mode="envois"), terminal_size=size, run_before=_polled)


@pytest.mark.parametrize("size", SIZES)
def test_campaign_view(
    snap_compare, make_app: AppFactory, town: Context, size: tuple[int, int]
) -> None:
    _busy_town(town)

    async def drill(pilot: Pilot[None]) -> None:
        await _polled(pilot)
        await pilot.press("enter")
        await polled(pilot, CampaignScreen)
        await _settle(pilot)

    assert snap_compare(make_app(start_mode="envois"), terminal_size=size, run_before=drill)


@pytest.mark.parametrize("size", SIZES)
def test_cancel_confirmation(
    snap_compare, make_app: AppFactory, town: Context, size: tuple[int, int]
) -> None:
    _busy_town(town)

    async def cancel(pilot: Pilot[None]) -> None:
        await _polled(pilot)
        await pilot.press("x")
        await _settle(pilot)

    assert snap_compare(make_app(start_mode="envois"), terminal_size=size, run_before=cancel)


async def _alert_steps(pilot: Pilot[None], keys: list[str]) -> None:
    """Each step counts its recipients in a worker thread: wait for the workers, not
    for a length of time."""
    await _settle(pilot)
    for key in ["exclamation_mark", *keys]:
        await pilot.press(key)
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
    await _settle(pilot)


@pytest.mark.parametrize("size", SIZES)
def test_alert_template(snap_compare, make_app: AppFactory, size: tuple[int, int]) -> None:
    async def run(pilot: Pilot[None]) -> None:
        await _alert_steps(pilot, [])

    assert snap_compare(make_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_alert_audience(snap_compare, make_app: AppFactory, size: tuple[int, int]) -> None:
    async def run(pilot: Pilot[None]) -> None:
        await _alert_steps(pilot, ["enter", "down", "down", "space"])

    assert snap_compare(make_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_alert_composer(snap_compare, make_app: AppFactory, size: tuple[int, int]) -> None:
    """The composer on a template with {lieu} still to fill, after typing characters
    that force UCS-2."""

    async def run(pilot: Pilot[None]) -> None:
        await _alert_steps(pilot, ["down", "enter", "enter", *"la forêt"])

    assert snap_compare(make_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_alert_confirmation(snap_compare, make_app: AppFactory, size: tuple[int, int]) -> None:
    async def run(pilot: Pilot[None]) -> None:
        await _alert_steps(pilot, ["enter", "down", "space", "enter", "ctrl+n"])

    assert snap_compare(make_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_alert_refused_to_a_viewer(
    snap_compare, make_app: AppFactory, size: tuple[int, int]
) -> None:
    async def run(pilot: Pilot[None]) -> None:
        await _alert_steps(pilot, ["enter", "enter", "ctrl+n"])

    assert snap_compare(make_app(role=Role.VIEWER), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_retry_confirmation(
    snap_compare, make_app: AppFactory, town: Context, size: tuple[int, int]
) -> None:
    """A typed-count dialog from a campaign's view: the count field focused."""
    _busy_town(town)

    async def retry(pilot: Pilot[None]) -> None:
        await _polled(pilot)
        await pilot.press("enter")
        await polled(pilot, CampaignScreen)
        await pilot.press("R")
        await pilot.app.workers.wait_for_complete()
        await _settle(pilot)

    assert snap_compare(make_app(start_mode="envois"), terminal_size=size, run_before=retry)


@pytest.mark.parametrize("size", SIZES)
def test_alert_prepared_by_an_operator(
    snap_compare, make_app: AppFactory, size: tuple[int, int]
) -> None:
    """Step 1 says at once that an operator may prepare, and who sends."""

    async def run(pilot: Pilot[None]) -> None:
        await _alert_steps(pilot, [])

    assert snap_compare(make_app(role=Role.OPERATOR), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_alert_confirmation_behind_another_alert(
    snap_compare, make_app: AppFactory, town: Context, size: tuple[int, int]
) -> None:
    """Another alert sending, a worker alive: said in red before the count is typed;
    the count typed so far in the field."""
    _busy_town(town)

    async def run(pilot: Pilot[None]) -> None:
        await _alert_steps(pilot, ["enter", "down", "space", "enter", "ctrl+n", "1"])

    assert snap_compare(make_app(), terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_quit_while_sending(
    snap_compare, make_app: AppFactory, town: Context, size: tuple[int, int]
) -> None:
    """q with messages waiting and the demo's worker in this process: asked first."""
    create_campaign(
        town,
        CampaignRequest(
            topic="evenements",
            text="Fête du village samedi 15h",
            sender_id="MAIRIE",
            audience=Audience(everyone=True),
        ),
    )
    beat(town.engine, new_owner(), "simulated", town.clock.now())

    async def run(pilot: Pilot[None]) -> None:
        await _settle(pilot)
        await pilot.press("q")
        await pilot.app.workers.wait_for_complete()
        await _settle(pilot)

    assert snap_compare(make_app(), terminal_size=size, run_before=run)


# --- Consentements ------------------------------------------------------------------


async def _consent_settle(pilot: Pilot[None]) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()


def _consent_town(town: Context) -> None:
    from console.sending.inbound import handle_inbound
    from console.sending.providers.base import InboundSms

    handle_inbound(town, InboundSms("0612340010", "", "Merci, stop"), "kannel")
    handle_inbound(town, InboundSms("0612340011", "", "STOP"), "kannel")
    handle_inbound(town, InboundSms("0781000000", "", "oui travaux"), "kannel")


@pytest.mark.parametrize("size", SIZES)
def test_consent_coverage(
    snap_compare, make_app: AppFactory, town: Context, size: tuple[int, int]
) -> None:
    _consent_town(town)
    app = make_app(start_mode="consentements")
    assert snap_compare(app, terminal_size=size, run_before=_consent_settle)


@pytest.mark.parametrize("size", SIZES)
def test_consent_journal(
    snap_compare, make_app: AppFactory, town: Context, size: tuple[int, int]
) -> None:
    _consent_town(town)

    async def journal(pilot: Pilot[None]) -> None:
        await _consent_settle(pilot)
        await pilot.press("j")
        await _consent_settle(pilot)

    app = make_app(start_mode="consentements")
    assert snap_compare(app, terminal_size=size, run_before=journal)


@pytest.mark.parametrize("size", SIZES)
def test_consent_classify(
    snap_compare, make_app: AppFactory, town: Context, size: tuple[int, int]
) -> None:
    _consent_town(town)

    async def classify(pilot: Pilot[None]) -> None:
        await _consent_settle(pilot)
        await pilot.press("r")
        await _consent_settle(pilot)
        await pilot.press("enter")
        await _consent_settle(pilot)

    app = make_app(start_mode="consentements")
    assert snap_compare(app, terminal_size=size, run_before=classify)


@pytest.mark.parametrize("size", SIZES)
def test_consent_history(
    snap_compare, make_app: AppFactory, town: Context, size: tuple[int, int]
) -> None:
    _consent_town(town)

    async def history(pilot: Pilot[None]) -> None:
        await _consent_settle(pilot)
        await pilot.press("j")
        await _consent_settle(pilot)
        await pilot.press("enter")
        await _consent_settle(pilot)

    app = make_app(start_mode="consentements")
    assert snap_compare(app, terminal_size=size, run_before=history)
