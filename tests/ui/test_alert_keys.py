"""Pilot tests of the promise of issue 8: at every step of the alert, what the screen
tells the operator to type is exactly what works, and nothing else can happen by
accident. Mode keys, `q`, `!` at each step; `q` asking first; `!` bringing back the
alert already open and opening over dialogs that then come back; back and forward
keeping what was typed; ticked quartiers drawn `[x]`."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static, TextArea

from console.context import Context
from console.sending.campaigns import Audience, CampaignRequest, create_campaign
from console.sending.workers import beat, new_owner
from screens.app import TocsinApp
from screens.confirm_action import ConfirmActionScreen
from screens.contacts import ContactsScreen
from screens.emergency_audience import AudienceList, AudienceStep
from screens.emergency_compose import ComposeStep
from screens.emergency_confirm import ConfirmStep
from screens.emergency_template import TemplateStep
from screens.envois import EnvoisScreen
from screens.erase import EraseScreen
from screens.help import HelpScreen
from screens.import_screen import ImportScreen
from screens.widgets.alert_step import AlertStep
from screens.widgets.tick_list import TICKED, UNTICKED
from screens.widgets.typed_count import CountField
from tests.ui.conftest import AppFactory
from tests.ui.test_alert_flows import _campaigns, _expected_count, _plain, _settle, _wait_for
from tests.ui.test_envois_flows import polled

MODE_KEYS = ["1", "2", "3", "4"]
STRAY_KEYS = [*MODE_KEYS, "q", "colon", "exclamation_mark"]


def _all_steps(app: TocsinApp) -> list[Screen[Any]]:
    """Every alert step in every mode's stack: never more than one alert."""
    stacks = app._screen_stacks.values()  # read only: no public view of other modes
    return [s for stack in stacks for s in stack if isinstance(s, AlertStep)]


def _templates_open(app: TocsinApp) -> int:
    return sum(isinstance(s, TemplateStep) for s in _all_steps(app))


async def _start(pilot: Pilot[None]) -> None:
    await pilot.press("exclamation_mark")
    await _wait_for(pilot, TemplateStep)


async def _no_worker_question(pilot: Pilot[None]) -> None:
    """Sent with no worker alive: the console offers to start one; not now."""
    await _wait_for(pilot, ConfirmActionScreen)
    assert "Aucun worker actif" in _plain(pilot.app.screen.query_one("#form-title", Static))
    await pilot.press("escape")
    await _wait_for(pilot, EnvoisScreen)


async def _stray_keys_do_nothing(pilot: Pilot[None], keys: list[str]) -> None:
    app = pilot.app
    assert isinstance(app, TocsinApp)
    screen, mode = app.screen, app.current_mode
    for key in keys:
        await pilot.press(key)
        await _settle(pilot, 2)
        assert app.screen is screen, f"{key!r} left {screen}"
        assert app.current_mode == mode and app.is_running
        assert _templates_open(app) == 1


async def test_mode_keys_q_and_bang_are_inert_at_every_step(
    make_app: AppFactory, town: Context
) -> None:
    app = make_app(start_mode="envois")
    async with app.run_test(size=(80, 24)) as pilot:
        await _start(pilot)
        await _stray_keys_do_nothing(pilot, STRAY_KEYS)
        await pilot.press("enter")  # Inondation
        await _wait_for(pilot, AudienceStep)
        choices = app.screen.query_one(AudienceList)
        before = list(choices.selected)
        await _stray_keys_do_nothing(pilot, STRAY_KEYS)
        assert list(choices.selected) == before
        await pilot.press("down", "space", "enter")
        await _wait_for(pilot, ComposeStep)
        # Step 3 is all text fields: the keys are the operator's text, nothing else.
        area = app.screen.query_one(TextArea)
        text = area.text
        await _stray_keys_do_nothing(pilot, ["end", "space", "q", "2", "exclamation_mark"])
        assert area.text.endswith(" q2!") and area.text.startswith(text[:20])
        area.text = text
        await pilot.press("ctrl+n")
        await _wait_for(pilot, ConfirmStep)
        expected = await _expected_count(pilot)
        # Step 4: digits go into the count field; letters and symbols do nothing.
        await _stray_keys_do_nothing(pilot, STRAY_KEYS)
        field = app.screen.query_one(CountField)
        assert field.value == "1234"
        field.value = ""
        await pilot.press(*str(expected), "enter")
        await _no_worker_question(pilot)
    assert len(_campaigns(town)) == 1


async def test_digits_typed_on_a_button_go_into_the_count(
    make_app: AppFactory, town: Context
) -> None:
    app = make_app(start_mode="contacts")
    async with app.run_test(size=(80, 24)) as pilot:
        await _start(pilot)
        await pilot.press("enter", "enter")
        await _wait_for(pilot, ComposeStep)
        await pilot.press("ctrl+n")
        await _wait_for(pilot, ConfirmStep)
        expected = await _expected_count(pilot)
        await pilot.press("tab", "tab")  # on "Envoyer l'alerte"
        assert app.focused is not None and app.focused.id == "confirm"
        # Typed fast, Enter right after the digits: it confirms in the field.
        await pilot.press(*str(expected), "enter")
        await _no_worker_question(pilot)
        assert app.current_mode == "envois"
    assert len(_campaigns(town)) == 1


async def test_q_asks_while_an_alert_is_being_prepared(make_app: AppFactory, town: Context) -> None:
    app = make_app(start_mode="envois")
    async with app.run_test(size=(80, 24)) as pilot:
        await _start(pilot)
        await pilot.press("enter")
        await _wait_for(pilot, AudienceStep)
        step = app.screen
        # ctrl+q on a step asks the same question.
        await pilot.press("ctrl+q")
        await _wait_for(pilot, ConfirmActionScreen)
        await pilot.press("escape")
        await _wait_for(pilot, AudienceStep)
        assert app.screen is step and app.is_running
        # Modes do not change from a step (keys and palette are closed); should
        # anything change it behind the alert's back, `q` and `!` still know.
        app.switch_mode("contacts")
        await _wait_for(pilot, ContactsScreen)
        await pilot.press("q")
        await _wait_for(pilot, ConfirmActionScreen)
        body = _plain(app.screen.query_one("#confirm-body", Static))
        assert "Une alerte est en préparation (étape 2/4) : quitter l'abandonne." in body
        await pilot.press("enter")  # the focus is on Cancel: nothing lost
        await _wait_for(pilot, ContactsScreen)
        assert app.is_running
        # `!` brings back the same alert, where it was left.
        await pilot.press("exclamation_mark")
        await _settle(pilot)
        assert app.current_mode == "envois" and app.screen is step
        assert _templates_open(app) == 1


async def test_q_names_the_demo_worker_it_would_stop(make_app: AppFactory, town: Context) -> None:
    create_campaign(
        town,
        CampaignRequest(
            topic="evenements",
            text="Fête du village samedi",
            sender_id="MAIRIE",
            audience=Audience(everyone=True),
        ),
    )
    # A worker of this very process, as the demo's is.
    beat(town.engine, new_owner(), "simulated", town.clock.now())
    app = make_app(start_mode="envois")
    exits: list[bool] = []
    async with app.run_test(size=(80, 24)) as pilot:
        app.exit = lambda *args, **kwargs: exits.append(True)  # type: ignore[method-assign]
        await polled(pilot)
        await pilot.press("q")
        await _wait_for(pilot, ConfirmActionScreen)
        body = _plain(app.screen.query_one("#confirm-body", Static))
        assert "Messages en attente d'envoi" in body
        assert "de la démo tourne dans cette console : quitter l'arrête" in body
        await pilot.press("tab", "enter")  # "Quitter"
        await _settle(pilot)
    assert exits == [True]


async def test_q_quits_at_once_when_nothing_is_at_stake(make_app: AppFactory) -> None:
    app = make_app(start_mode="contacts")
    exits: list[bool] = []
    async with app.run_test(size=(80, 24)) as pilot:
        app.exit = lambda *args, **kwargs: exits.append(True)  # type: ignore[method-assign]
        await pilot.press("q")
        for _ in range(50):
            if exits:
                break
            await pilot.pause(0.02)
        assert isinstance(app.screen, ContactsScreen)
    assert exits == [True]


async def test_bang_from_the_import_dialog_comes_back_to_it(
    make_app: AppFactory, town: Context
) -> None:
    app = make_app(start_mode="contacts")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("i", *"habitants/liste.csv")
        dialog = app.screen
        assert isinstance(dialog, ImportScreen)
        await pilot.press("exclamation_mark")
        await _wait_for(pilot, TemplateStep)
        assert dialog in app.screen_stack
        await pilot.press("escape")  # leaving the alert at its first step
        await _settle(pilot)
        assert app.screen is dialog and app.alert is None
        assert dialog.query_one("#path", Input).value == "habitants/liste.csv"
        # Sent from over the dialog: the queue shows it; the dialog waits in Contacts.
        await pilot.press("exclamation_mark")
        await _wait_for(pilot, TemplateStep)
        await pilot.press("enter", "enter")
        await _wait_for(pilot, ComposeStep)
        await pilot.press("ctrl+n")
        await _wait_for(pilot, ConfirmStep)
        expected = await _expected_count(pilot)
        await pilot.press(*str(expected), "enter")
        await _no_worker_question(pilot)
        await pilot.press("2")
        await _settle(pilot)
        assert app.screen is dialog
        assert dialog.query_one("#path", Input).value == "habitants/liste.csv"
    assert len(_campaigns(town)) == 1


async def test_bang_from_the_erase_dialog_comes_back_to_it(make_app: AppFactory) -> None:
    app = make_app(start_mode="contacts")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("d")
        dialog = app.screen
        assert isinstance(dialog, EraseScreen)
        await pilot.press("exclamation_mark")
        await _wait_for(pilot, TemplateStep)
        await pilot.press("escape")
        await _settle(pilot)
        assert app.screen is dialog
        assert app.focused is dialog.query_one(CountField)


async def test_back_and_forward_keep_what_was_typed(make_app: AppFactory, town: Context) -> None:
    app = make_app(start_mode="envois")
    async with app.run_test(size=(120, 40)) as pilot:
        await _start(pilot)
        await pilot.press("enter")  # Inondation
        await _wait_for(pilot, AudienceStep)
        await pilot.press("down", "space", "enter")  # Centre-bourg
        await _wait_for(pilot, ComposeStep)
        await pilot.press("end", *" Restez chez vous.")
        typed = app.screen.query_one(TextArea).text
        assert typed.endswith("Restez chez vous.")
        await pilot.press("escape")
        await _wait_for(pilot, AudienceStep)
        await pilot.press("escape")
        await _wait_for(pilot, TemplateStep)
        await pilot.press("enter")  # the same template, the cursor still on it
        await _wait_for(pilot, AudienceStep)
        assert list(app.screen.query_one(AudienceList).selected) == ["Centre-bourg"]
        await pilot.press("enter")
        await _wait_for(pilot, ComposeStep)
        assert app.screen.query_one(TextArea).text == typed
        assert _plain(app.screen.query_one("#kept-note", Static)) == ""
        # Another template: the operator's own text is kept, and said so.
        await pilot.press("escape")
        await _wait_for(pilot, AudienceStep)
        await pilot.press("escape")
        await _wait_for(pilot, TemplateStep)
        await pilot.press("down", "down", "enter")  # Intempéries
        await _wait_for(pilot, AudienceStep)
        await pilot.press("enter")
        await _wait_for(pilot, ComposeStep)
        assert app.screen.query_one(TextArea).text == typed
        assert "ctrl+r reprend le modèle « Intempéries »" in _plain(
            app.screen.query_one("#kept-note", Static)
        )
        await pilot.press("ctrl+r")
        assert "ALERTE MÉTÉO" in app.screen.query_one(TextArea).text


async def test_an_untouched_text_follows_the_zones(make_app: AppFactory, town: Context) -> None:
    app = make_app(start_mode="envois")
    async with app.run_test(size=(120, 40)) as pilot:
        await _start(pilot)
        await pilot.press("enter")
        await _wait_for(pilot, AudienceStep)
        await pilot.press("down", "space", "enter")
        await _wait_for(pilot, ComposeStep)
        assert "(Centre-bourg)" in app.screen.query_one(TextArea).text
        await pilot.press("escape")
        await _wait_for(pilot, AudienceStep)
        await pilot.press("down", "space", "enter")
        await _wait_for(pilot, ComposeStep)
        assert "(Centre-bourg, La Gare)" in app.screen.query_one(TextArea).text


def _box(choices: AudienceList, row: int) -> str:
    return choices.render_line(row).text[:3]


async def test_ticked_and_unticked_quartiers_differ_in_shape(make_app: AppFactory) -> None:
    app = make_app(start_mode="envois")
    async with app.run_test(size=(80, 24)) as pilot:
        await _start(pilot)
        await pilot.press("enter")
        await _wait_for(pilot, AudienceStep)
        choices = app.screen.query_one(AudienceList)
        assert [_box(choices, row) for row in range(3)] == [TICKED, UNTICKED, UNTICKED]
        await pilot.press("down", "space")
        await _settle(pilot)
        assert [_box(choices, row) for row in range(3)] == [UNTICKED, TICKED, UNTICKED]
        assert TICKED == "[x]" and UNTICKED == "[ ]"


async def test_the_confirmation_says_another_alert_is_sending(
    make_app: AppFactory, town: Context
) -> None:
    first = create_campaign(
        town,
        CampaignRequest(
            topic="alertes",
            text="Crue : évacuez les berges",
            sender_id="MAIRIE",
            audience=Audience(everyone=True),
            kind="emergency",
        ),
    ).campaign_id
    beat(town.engine, "elsewhere:1:abc", "simulated", town.clock.now())
    app = make_app(start_mode="envois")
    async with app.run_test(size=(80, 24)) as pilot:
        await _start(pilot)
        await pilot.press("enter", "enter")
        await _wait_for(pilot, ComposeStep)
        await pilot.press("ctrl+n")
        await _wait_for(pilot, ConfirmStep)
        await _expected_count(pilot)
        ahead = app.screen.query_one("#ahead", Static)
        said = _plain(ahead)
        assert f"L'alerte n°{first} est en cours d'envoi" in said
        assert "les deux partent ensemble, à tour de rôle" in said
        assert "Aucun service d'envoi" not in said
        assert "red" in repr(ahead.render())


@pytest.mark.parametrize("key", ["x"])
async def test_typed_count_dialogs_take_digits_and_bang(
    make_app: AppFactory, town: Context, key: str
) -> None:
    create_campaign(
        town,
        CampaignRequest(
            topic="alertes",
            text="Coupure d'eau demain",
            sender_id="MAIRIE",
            audience=Audience(everyone=True),
        ),
    )
    app = make_app(start_mode="envois")
    async with app.run_test(size=(80, 24)) as pilot:
        await polled(pilot)
        await pilot.press(key)
        dialog = app.screen
        assert isinstance(dialog, ConfirmActionScreen)
        field = dialog.query_one(CountField)
        assert app.focused is field
        await pilot.press("enter")  # a reflex Enter: refused, nothing cancelled
        assert app.screen is dialog
        await pilot.press("tab", "2")  # a digit on a button: into the field, no mode switch
        assert app.current_mode == "envois" and field.value == "2" and app.focused is field
        await pilot.press("exclamation_mark")
        await _wait_for(pilot, TemplateStep)
        await pilot.press("escape")
        await _settle(pilot)
        assert app.screen is dialog and field.value == "2"
    assert _campaigns(town)[0].status == "queued"


async def test_the_count_field_sits_in_its_row_after_a_dialog(make_app: AppFactory) -> None:
    """Stylesheets are app-wide: the dialogs' own count-field margin must not push the
    alert's field out of its row (it did once a dialog had been shown)."""
    app = make_app(start_mode="contacts")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("d")
        assert isinstance(app.screen, EraseScreen)
        await pilot.press("escape")
        await _start(pilot)
        await pilot.press("enter", "enter")
        await _wait_for(pilot, ComposeStep)
        await pilot.press("ctrl+n")
        await _wait_for(pilot, ConfirmStep)
        await _expected_count(pilot)
        await _settle(pilot)
        field = app.screen.query_one(CountField)
        row = app.screen.query_one("#count-row")
        assert field.region.y == row.region.y and field.region.height == 3


async def test_help_over_a_step_lists_only_the_keys_that_work(make_app: AppFactory) -> None:
    app = make_app(start_mode="envois")
    async with app.run_test(size=(120, 40)) as pilot:
        await _start(pilot)
        await pilot.press("f1")
        await _wait_for(pilot, HelpScreen)
        table = app.screen.query_one(DataTable)
        ids = {str(table.get_row_at(row)[2]) for row in range(table.row_count)}
        assert "alert.back" in ids and "app.help" in ids
        assert not ids & {"mode.envois", "app.quit", "app.emergency", "app.palette"}
        await pilot.press("escape")
        await _wait_for(pilot, TemplateStep)


async def test_q_asks_when_the_database_cannot_tell(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(ctx: Context) -> None:
        raise OSError("database is locked \x1b[31m[b]")

    monkeypatch.setattr("screens.app.sending_now", unreachable)
    app = make_app(start_mode="contacts")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("q")
        await _wait_for(pilot, ConfirmActionScreen)
        body = _plain(app.screen.query_one("#confirm-body", Static))
        assert "Impossible de savoir si des envois sont en cours" in body
        assert "\x1b" not in body and "[b]" in body
        assert app.is_running


async def test_the_red_lines_follow_a_worker_that_starts(
    make_app: AppFactory, town: Context
) -> None:
    app = make_app(start_mode="envois")
    async with app.run_test(size=(80, 24)) as pilot:
        await _start(pilot)
        await pilot.press("enter", "enter")
        await _wait_for(pilot, ComposeStep)
        await pilot.press("ctrl+n")
        await _wait_for(pilot, ConfirmStep)
        await _expected_count(pilot)
        ahead = app.screen.query_one("#ahead", Static)
        assert "Aucun service d'envoi" in _plain(ahead)
        beat(town.engine, "elsewhere:1:abc", "simulated", town.clock.now())
        for _ in range(100):
            await pilot.pause(0.05)
            if "Aucun service d'envoi" not in _plain(ahead):
                break
        assert _plain(ahead) == "" and not ahead.has_class("-shown")
