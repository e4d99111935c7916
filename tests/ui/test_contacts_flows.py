"""Pilot tests of what an operator does on the Contacts screen, checked in the database."""

from __future__ import annotations

from rich.text import Text
from sqlmodel import Session, select
from textual.widgets import DataTable, Input, Select, Static

from console.roles import Role
from screens.consent import ConsentementsScreen
from screens.consent_form import ConsentFormScreen
from screens.contact_form import ContactFormScreen
from screens.contacts import ContactsScreen
from screens.envois import EnvoisScreen
from screens.erase import EraseScreen
from screens.help import HelpScreen
from screens.placeholder import PlaceholderScreen
from storage.models import AuditEntry, ConsentState, Contact
from tests.ui.conftest import AppFactory


def _table(app) -> DataTable:  # type: ignore[no-untyped-def]
    return app.screen.query_one(DataTable)


def _names(app) -> list[str]:  # type: ignore[no-untyped-def]
    table = _table(app)
    return [table.get_row_at(i)[0].plain for i in range(table.row_count)]


def _contact(engine, **where: object) -> Contact | None:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        stmt = select(Contact)
        for key, value in where.items():
            stmt = stmt.where(getattr(Contact, key) == value)
        return session.exec(stmt).first()


async def test_add_contact_from_the_keyboard(make_app: AppFactory, engine) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("a")
        assert isinstance(app.screen, ContactFormScreen)
        await pilot.press(
            *"06.98.76.54.32",
            "tab",
            *"Léon Carré",
            "tab",
            *"Les Prés",
            "tab",
            *"seniors, Parents",
            "enter",
        )
        await pilot.pause()
        assert isinstance(app.screen, ContactsScreen)
        contact = _contact(engine, number="+33698765432")
        assert contact is not None
        assert (contact.name, contact.zone, contact.groups) == (
            "Léon Carré",
            "Les Prés",
            "parents,seniors",
        )
        # The table shows the new contact, under the cursor.
        table = _table(app)
        assert table.get_row_at(table.cursor_row)[0].plain == "Léon Carré"
    with Session(engine) as session:
        actions = session.exec(select(AuditEntry.action)).all()
    assert "contact.add" in actions


async def test_invalid_number_is_refused_on_the_spot(make_app: AppFactory, engine) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("a", *"06 12")
        check = app.screen.query_one("#number-check", Static)
        assert "✗" in str(check.render())
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ContactFormScreen)  # still open, nothing saved
        assert "✗" in str(app.screen.query_one("#form-error", Static).render())


async def test_same_person_in_another_format_is_refused(make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        # 06 12 34 00 10 is in the seeded town; typed here the international way.
        await pilot.press("a", *"+33 (0)6 12 34 00 10", "ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ContactFormScreen)
        error = str(app.screen.query_one("#form-error", Static).render())
        assert "est déjà le contact #" in error  # said in French, like the rest


async def test_edit_contact(make_app: AppFactory, engine) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("slash", *"0612340010", "enter")
        await pilot.pause()
        assert _table(app).row_count == 1
        await pilot.press("e")
        assert isinstance(app.screen, ContactFormScreen)
        name = app.screen.query_one("#field-name", Input)
        name.value = "Camille Martin-Roux"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ContactsScreen)
    contact = _contact(engine, number="+33612340010")
    assert contact is not None and contact.name == "Camille Martin-Roux"


async def test_erase_needs_the_typed_count(make_app: AppFactory, engine) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("slash", *"0612340010", "enter")
        await pilot.pause()
        await pilot.press("d")
        assert isinstance(app.screen, EraseScreen)
        assert app.screen.query_one("#cancel").has_focus  # a stray Enter cancels
        app.screen.query_one("#erase-count", Input).focus()
        await pilot.press("2", "enter")
        await pilot.pause()
        assert isinstance(app.screen, EraseScreen)  # wrong count: nothing erased
        assert _contact(engine, number="+33612340010") is not None
        app.screen.query_one("#erase-count", Input).value = "1"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ContactsScreen)
    assert _contact(engine, number="+33612340010") is None


async def test_record_and_withdraw_consent(make_app: AppFactory, engine) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("slash", *"0612340011", "enter")
        await pilot.pause()
        contact = _contact(engine, number="+33612340011")
        assert contact is not None
        await pilot.press("c")
        assert isinstance(app.screen, ConsentFormScreen)
        app.screen.query_one("#topic", Select).value = "travaux"
        app.screen.query_one("#source", Select).value = "phone_call"
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.press("c")
        app.screen.query_one("#topic", Select).value = "travaux"
        app.screen.query_one("#action", Select).value = "withdraw"
        app.screen.query_one("#source", Select).value = "paper_form"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ContactsScreen)
    with Session(engine) as session:
        state = session.get(ConsentState, (contact.id, "travaux"))
    assert state is not None and state.granted is False


async def test_rented_list_without_proof_is_refused(make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("c")
        app.screen.query_one("#topic", Select).value = "infos"
        app.screen.query_one("#source", Select).value = "rented_list"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ConsentFormScreen)
        assert "preuve du fournisseur" in str(app.screen.query_one("#form-error", Static).render())


async def test_search_by_name_number_and_zone(make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("slash", *"NOEL GARCON", "enter")
        await pilot.pause()
        assert _names(app) == ["Noël Garçon"]
        await pilot.press("slash", "ctrl+u", *"+33 6 12 34 01 19", "enter")
        await pilot.pause()
        assert _names(app) == ["Noël Garçon"]
        await pilot.press("slash", "ctrl+u", *"les pres", "enter")
        await pilot.pause()
        assert len(_names(app)) == 10
        await pilot.press("escape")
        await pilot.pause()
        assert len(_names(app)) == 43


async def test_filters_by_zone_consent_and_sendable(make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        screen.query_one("#zone", Select).value = "Centre-bourg"
        await pilot.pause()
        assert len(_names(app)) == 11
        screen.query_one("#consent", Select).value = "evenements:1"
        await pilot.pause()
        assert len(_names(app)) == 10
        assert "Mairie annexe" not in _names(app)
        screen.query_one("#consent", Select).value = "alertes:0"
        await pilot.pause()
        # Seeded: every 7th resident withdrew from alerts; 0 and 28 live in Centre-bourg.
        assert len(_names(app)) == 2
        screen.query_one("#zone", Select).clear()
        screen.query_one("#consent", Select).clear()
        screen.query_one("#sendable", Select).value = "no"
        await pilot.pause()
        assert _names(app) == ["Mairie annexe"]
        counts = str(screen.query_one("#counts", Static).render())
        assert "1 correspondent" in counts and "43 contacts" in counts


async def test_hostile_names_show_literally(make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("slash", *"pirate", "enter")
        await pilot.pause()
        cell = _table(app).get_row_at(0)[0]
        assert isinstance(cell, Text) and cell.plain == "[bold red]Pirate[/] Dupont"
        assert not cell.spans  # no markup was applied
        await pilot.press("slash", "ctrl+u", *"xavier", "enter")
        await pilot.pause()
        cell = _table(app).get_row_at(0)[0]
        assert cell.plain == "Xavier \\x1b[31mRouge\\x1b[0m"
        assert "\x1b" not in cell.plain
        await pilot.press("e")  # the edit form shows it too, without crashing
        await pilot.pause()
        assert isinstance(app.screen, ContactFormScreen)


async def test_paging_loads_more_as_the_cursor_moves(make_app: AppFactory) -> None:
    app = make_app(page_size=20)
    async with app.run_test(size=(120, 40)) as pilot:
        assert _table(app).row_count == 20
        for _ in range(12):
            await pilot.press("down")
        await pilot.pause()
        assert _table(app).row_count == 40
        for _ in range(3):
            await pilot.press("pagedown")
        await pilot.pause()
        assert _table(app).row_count == 43
        counts = str(app.screen.query_one("#counts", Static).render())
        assert counts.startswith("43 affichés")


async def test_viewer_cannot_change_anything(make_app: AppFactory) -> None:
    app = make_app(role=Role.VIEWER)
    async with app.run_test(size=(120, 40)) as pilot:
        for key in ("a", "e", "c", "d", "i"):
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, ContactsScreen), key


async def test_operator_cannot_erase(make_app: AppFactory) -> None:
    app = make_app(role=Role.OPERATOR)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ContactsScreen)
        await pilot.press("e")
        assert isinstance(app.screen, ContactFormScreen)


async def test_modes_help_and_quit(make_app: AppFactory) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("1")
        await pilot.pause()
        assert isinstance(app.screen, EnvoisScreen)
        await pilot.press("3")
        await pilot.pause()
        assert isinstance(app.screen, ConsentementsScreen)
        for key, mode in (("4", "calendrier"),):
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, PlaceholderScreen) and mode == app.screen.MODE
        await pilot.press("2")
        assert isinstance(app.screen, ContactsScreen)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, ContactsScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, ContactsScreen)
        await pilot.press("colon")
        await pilot.pause()
        assert type(app.screen).__name__ == "CommandPalette"
        await pilot.press("escape")
        await pilot.press("q")
    assert app.return_code == 0


async def test_keymap_from_config_rebinds(make_app: AppFactory) -> None:
    app = make_app(keymap={"contacts.add": "n"})
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("a")
        assert isinstance(app.screen, ContactsScreen)
        await pilot.press("n")
        assert isinstance(app.screen, ContactFormScreen)


async def test_english_console(make_app: AppFactory) -> None:
    app = make_app(language="en")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        bar = str(app.screen.query_one("#mode-bar", Static).render())
        assert "Sends" in bar and "Envois" not in bar
        assert "reachable by SMS" in str(app.screen.query_one("#counts", Static).render())


async def test_import_from_the_console(make_app: AppFactory, engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    csv_path = tmp_path / "nouveaux.csv"
    csv_path.write_bytes("Nom;Portable\r\nRené Coty;06 98 00 00 01\r\nX;06 12\r\n".encode("cp1252"))
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("i")
        app.screen.query_one("#path", Input).value = str(csv_path)
        await pilot.press("enter")  # preview: a dry run
        await pilot.pause()
        assert _contact(engine, number="+33698000001") is None
        await pilot.click("#run")
        await pilot.pause()
        assert _contact(engine, number="+33698000001") is not None
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ContactsScreen)
        assert "44 contacts" in str(app.screen.query_one("#counts", Static).render())
