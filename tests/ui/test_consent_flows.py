"""Pilot tests of the Consentements screen, checked in the database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select
from textual.pilot import Pilot
from textual.widgets import Button, Checkbox, DataTable

from console.consent.review import pending_count
from console.context import Context
from console.roles import Role
from console.sending.inbound import handle_inbound
from console.sending.providers.base import InboundSms
from screens.consent import (
    AskScreen,
    ClassifyScreen,
    ConsentementsScreen,
    HistoryScreen,
    ResidentsScreen,
)
from screens.contacts import ContactsScreen
from storage.models import ConsentEvent, InboundMessage
from tests.ui.conftest import HOSTILE_NAMES, AppFactory


async def settle(pilot: Pilot[None]) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def _cells(app, column: int = 0) -> list[str]:  # type: ignore[no-untyped-def]
    table = app.screen.query_one(DataTable)
    return [table.get_row_at(i)[column].plain for i in range(table.row_count)]


@pytest.fixture
def replies(town: Context) -> Context:
    handle_inbound(town, InboundSms("0612340010", "", "Merci, stop"), "kannel")
    handle_inbound(town, InboundSms("0612340011", "", "S T O P"), "kannel")
    handle_inbound(town, InboundSms("0781000000", "", "oui travaux"), "kannel")
    return town


async def test_coverage_per_quartier_and_the_residents_behind_a_figure(
    make_app: AppFactory,
) -> None:
    app = make_app(start_mode="consentements")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, ConsentementsScreen)
        assert _cells(app)[:2] == ["Alertes", "Événements"]
        assert _cells(app, 1)[1] == "20"  # half the seeded town consented to events
        await pilot.press("down", "enter")  # Événements, per quartier
        await settle(pilot)
        assert _cells(app) == ["Centre-bourg", "La Gare", "Le Moulin", "Les Prés"]
        await pilot.press("right", "enter")  # consented in Centre-bourg
        await settle(pilot)
        assert isinstance(app.screen, ResidentsScreen)
        names = _cells(app)
        assert names and all(name for name in names)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, HistoryScreen)
        assert "Événements" in _cells(app, 1)
        await pilot.press("escape", "escape")
        await settle(pilot)
        assert isinstance(app.screen, ConsentementsScreen)
        await pilot.press("escape")  # back to the whole town
        await settle(pilot)
        assert _cells(app)[0] == "Alertes"


async def test_journal_filter_and_history(make_app: AppFactory, replies: Context) -> None:
    app = make_app(start_mode="consentements")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("j")
        await settle(pilot)
        # Newest first: the keyword opt-in from the resident with a markup-like name.
        assert _cells(app, 1)[0] == HOSTILE_NAMES[0]
        assert _cells(app, 4)[0] == "Mot-clé SMS"
        await pilot.press("slash")
        assert isinstance(app.screen, AskScreen)
        # Single-key bindings are inert while typing: "j", "q" and "3" are text.
        await pilot.press(*"thème=evenements q3j")
        assert isinstance(app.screen, AskScreen)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ConsentementsScreen)  # refused, said, nothing lost
        await pilot.press("slash", "ctrl+a", "ctrl+k", *"origine=formulaire_papier", "enter")
        await settle(pilot)
        assert set(_cells(app, 2)) == {"Événements"} and len(_cells(app)) == 20
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, HistoryScreen)


async def test_operator_classifies_a_reply(make_app: AppFactory, replies: Context, engine) -> None:  # type: ignore[no-untyped-def]
    app = make_app(start_mode="consentements")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        assert _cells(app, 2) == ["Merci, stop", "S T O P"]
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ClassifyScreen)
        # Keys typed while the dialog is open do not switch modes.
        await pilot.press("1")
        assert isinstance(app.screen, ClassifyScreen)
        app.screen.query_one("#topic-infos", Checkbox).value = True
        app.screen.query_one("#withdraw", Button).press()
        await settle(pilot)
        assert isinstance(app.screen, ConsentementsScreen)
        assert _cells(app, 2) == ["S T O P"]
        await pilot.press("enter")
        await settle(pilot)
        app.screen.query_one("#all", Button).press()
        await settle(pilot)
    assert pending_count(replies) == 0
    with Session(engine) as session:
        withdrawn = session.exec(
            select(ConsentEvent).where(ConsentEvent.source == "operator")
        ).all()
        statuses = set(session.exec(select(InboundMessage.status)).all())
    assert len(withdrawn) == 1 + len(replies.config.topics)
    assert all(e.proof_ref.startswith("inbound:") for e in withdrawn)
    assert statuses == {"classified", "done"}


async def test_viewers_see_but_do_not_classify(make_app: AppFactory, replies: Context) -> None:
    app = make_app(role=Role.VIEWER, start_mode="consentements")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        assert len(_cells(app)) == 2
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ConsentementsScreen)
    assert pending_count(replies) == 2


async def test_state_on_a_past_date(make_app: AppFactory) -> None:
    app = make_app(start_mode="consentements")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("t", *"01/09/2025", "enter")
        await settle(pilot)
        # Before the town was seeded: nobody on file.
        assert set(_cells(app, 1)) == {"0"} and set(_cells(app, 3)) == {"0"}
        await pilot.press("t", *"31/02/2026", "enter")
        await settle(pilot)
        assert isinstance(app.screen, ConsentementsScreen)  # refused with a message
        await pilot.press("t", "ctrl+a", "ctrl+k", *"14/03/2026", "enter")
        await settle(pilot)
        assert _cells(app, 1)[1] == "20"
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen.at is None  # type: ignore[attr-defined]


async def test_h_in_contacts_opens_the_history(make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, ContactsScreen)
        await pilot.press("h")
        await settle(pilot)
        assert isinstance(app.screen, HistoryScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, ContactsScreen)


async def test_register_pdf_from_the_screen(
    make_app: AppFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pypdf import PdfReader

    monkeypatch.chdir(tmp_path)
    app = make_app(start_mode="consentements")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("down", "p")
        await settle(pilot)
    (written,) = tmp_path.glob("registre-evenements-*.pdf")
    assert "Registre des consentements" in PdfReader(written).pages[0].extract_text()


async def test_checks_view(make_app: AppFactory, replies: Context) -> None:
    app = make_app(start_mode="consentements")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("v")
        await settle(pilot)
        lines = _cells(app)
    assert any("Chaîne consent vérifiée" in line for line in lines)
    assert any("Réponses en attente : 2" in line for line in lines)


async def test_lists_view_and_withdrawals_from_the_journal(
    make_app: AppFactory, town: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from console.consent.lists import ListInput, add_list

    proof = tmp_path / "preuve.pdf"
    proof.write_bytes(b"proof")
    add_list(
        town,
        ListInput(
            "dataloc-2025",
            "[b]DataLoc[/b]",
            "C-1",
            datetime(2025, 1, 1, tzinfo=UTC),
            "Oui",
            ("infos",),
            proof,
        ),
    )
    monkeypatch.chdir(tmp_path)
    app = make_app(start_mode="consentements")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("l")
        await settle(pilot)
        assert _cells(app) == ["dataloc-2025"]
        assert _cells(app, 1) == ["[b]DataLoc[/b]"]  # shown as typed, not as markup
        assert _cells(app, 5) == ["01/01/2026"]  # 12 months after the consent
        await pilot.press("j", "p")
        await settle(pilot)
    (written,) = tmp_path.glob("retraits-*.csv")
    assert "Appel téléphonique" in written.read_text(encoding="utf-8-sig")
