"""Contacts: the resident base, paged from the database, searched and filtered."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Select, Static

from console.consent.ledger import may_receive
from console.contacts.browser import ContactBrowser, Filters
from console.contacts.numbers import display
from console.context import Context
from console.roles import Role
from console.text import visible
from screens.widgets.mode_bar import ModeBar
from screens.widgets.shell import shell
from screens.widgets.translate import translate_bindings
from storage.engine import read_session
from storage.queries import ContactRow, group_names, zones

# Rows left below the cursor when the next page is fetched.
PREFETCH_MARGIN = 10
SEARCH_DEBOUNCE_S = 0.25


def short_names(keys: list[str]) -> dict[str, str]:
    """The shortest prefix of each topic key that no other key starts with."""
    short: dict[str, str] = {}
    for key in keys:
        size = 1
        while size < len(key) and any(o != key and o.startswith(key[:size]) for o in keys):
            size += 1
        short[key] = key[:size]
    return short


class ContactsScreen(Screen[None]):
    CSS_PATH = "contacts.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "search", "binding.search", id="contacts.search"),
        Binding("a", "add", "binding.add", id="contacts.add"),
        Binding("e", "edit", "binding.edit", id="contacts.edit"),
        Binding("c", "consent", "binding.consent", id="contacts.consent"),
        Binding("h", "history", "binding.cons_history", id="contacts.history", show=False),
        Binding("d,delete", "erase", "binding.erase", id="contacts.erase"),
        Binding("f", "filters", "binding.filters", id="contacts.filters"),
        Binding("i", "import", "binding.import", id="contacts.import"),
        Binding("escape", "clear", "binding.clear", id="contacts.clear"),
        Binding("ctrl+r", "reload", "binding.reload", id="contacts.reload", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.ctx: Context = shell(self).ctx
        self.t = shell(self).t
        translate_bindings(self, self.t)
        self.browser = ContactBrowser(self.ctx)
        self._short = short_names(list(self.ctx.config.topics))
        self._search_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        t = self.t
        yield ModeBar("contacts")
        yield Input(placeholder=t("contacts.search_placeholder"), id="search", compact=True)
        with Horizontal(id="filters"):
            yield Select[str]([], prompt=t("contacts.filter.zone"), id="zone", compact=True)
            yield Select[str]([], prompt=t("contacts.filter.group"), id="group", compact=True)
            yield Select[str](
                self._consent_options(),
                prompt=t("contacts.filter.topic"),
                id="consent",
                compact=True,
            )
            yield Select[str](
                [(t("contacts.filter.yes"), "yes"), (t("contacts.filter.no"), "no")],
                prompt=t("contacts.filter.sendable"),
                id="sendable",
                compact=True,
            )
        yield DataTable(id="table", cursor_type="row", zebra_stripes=True)
        yield Static(id="counts")
        yield Footer()

    def _consent_options(self) -> list[tuple[str, str]]:
        options: list[tuple[str, str]] = []
        for key, topic in self.ctx.config.topics.items():
            options.append((self.t("contacts.filter.topic_yes", topic=topic.label), f"{key}:1"))
            options.append((self.t("contacts.filter.topic_no", topic=topic.label), f"{key}:0"))
        return options

    def on_mount(self) -> None:
        t = self.t
        table = self.query_one(DataTable)
        # 80 columns: 66 of text, 12 of cell padding, 2 of scrollbar.
        extra = max(self.app.size.width, 80) - 80
        for label, key, base, share in (
            (t("contacts.col.name"), "name", 17, 0.3),
            (t("contacts.col.number"), "number", 14, 0.05),
            (t("contacts.col.zone"), "zone", 10, 0.2),
            (t("contacts.col.groups"), "groups", 9, 0.25),
            (t("contacts.col.sms"), "sms", 5, 0.05),
            (t("contacts.col.consents"), "consents", 11, 0.1),
        ):
            table.add_column(label, key=key, width=base + int(extra * share))
        self._refresh_choices()
        self.reload()
        table.focus()

    def _refresh_choices(self) -> None:
        with read_session(self.ctx.engine) as session:
            zone_names, groups = zones(session), group_names(session)
        self.query_one("#zone", Select).set_options((visible(z), z) for z in zone_names)
        self.query_one("#group", Select).set_options((visible(g), g) for g in groups)

    # Loading -----------------------------------------------------------------

    def reload(self, keep_id: int | None = None, *, data_changed: bool = True) -> None:
        table = self.query_one(DataTable)
        table.clear()
        self.browser.restart()
        self._append(self.browser.next_page())
        if keep_id is not None:
            self._move_to(keep_id)
        self._update_counts(refresh_totals=data_changed)

    def _move_to(self, contact_id: int) -> None:
        table = self.query_one(DataTable)
        while True:
            try:
                table.move_cursor(row=table.get_row_index(str(contact_id)))
                return
            except Exception:
                if self.browser.exhausted:
                    return
                self._append(self.browser.next_page())

    def _append(self, rows: list[ContactRow]) -> None:
        table = self.query_one(DataTable)
        for row in rows:
            table.add_row(*self._cells(row), key=str(row.id))

    def _cells(self, row: ContactRow) -> list[Text]:
        t = self.t
        if row.sendable:
            sms = Text(t("contacts.sendable"))
        else:
            kind = (
                row.number_kind
                if row.number_kind in ("fixed_line", "voip", "fixed_line_or_mobile", "mobile")
                else "other"
            )
            sms = Text(t(f"kind.{kind}"), style="yellow")
        marks = Text(no_wrap=True)
        for key, topic in self.ctx.config.topics.items():
            state = row.consents.get(key)
            reached = may_receive(topic.legal_basis, state)
            short = self._short[key]
            marks.append(short if reached else "·" * len(short), style="" if reached else "dim")
            marks.append(" ")
        # Residents' text is wrapped in Text so it is never read as markup.
        return [
            Text(visible(row.name)),
            Text(display(row.number)),
            Text(visible(row.zone)),
            Text(visible(row.groups.replace(",", ", "))),
            sms,
            marks,
        ]

    def _update_counts(self, *, refresh_totals: bool = False) -> None:
        counts = self.browser.counts(refresh_totals=refresh_totals)
        text = self.t(
            "contacts.footer",
            shown=self.browser.loaded,
            matching=counts.shown_matching,
            total=counts.total,
            sendable=counts.sendable,
        )
        if counts.matching == 0:
            text = f"{self.t('contacts.empty')}  {text}"
        self.query_one("#counts", Static).update(Text(text))

    @on(DataTable.RowHighlighted)
    def _prefetch(self, event: DataTable.RowHighlighted) -> None:
        table = event.data_table
        if not self.browser.exhausted and event.cursor_row >= table.row_count - PREFETCH_MARGIN:
            self._append(self.browser.next_page())
            self._update_counts()

    # Search and filters ------------------------------------------------------

    @on(Input.Changed, "#search")
    def _search_changed(self, event: Input.Changed) -> None:
        if self._search_timer is not None:
            self._search_timer.stop()
        value = event.value
        self._search_timer = self.set_timer(SEARCH_DEBOUNCE_S, lambda: self._search(value))

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        if self._search_timer is not None:
            self._search_timer.stop()
        self._search(event.value)
        self.query_one(DataTable).focus()

    def _search(self, text: str) -> None:
        if text == self.browser.search:
            return
        self.browser.restart(search=text)
        self.reload(data_changed=False)

    @on(Select.Changed)
    def _filter_changed(self, event: Select.Changed) -> None:
        value: Any = None if event.value is Select.NULL else event.value
        select_id = event.select.id
        if select_id == "zone":
            filters = self.browser.with_filter(zone=value)
        elif select_id == "group":
            filters = self.browser.with_filter(group=value)
        elif select_id == "sendable":
            filters = self.browser.with_filter(sendable=None if value is None else value == "yes")
        elif select_id == "consent":
            topic, _, wanted = (value or "").partition(":")
            filters = self.browser.with_filter(
                topic=topic or None, consent=None if not topic else wanted == "1"
            )
        else:
            return
        if filters != self.browser.filters:
            self.browser.restart(filters=filters)
            self.reload(data_changed=False)

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_filters(self) -> None:
        self.query_one("#zone", Select).focus()

    def action_clear(self) -> None:
        search = self.query_one("#search", Input)
        table = self.query_one(DataTable)
        if not table.has_focus:
            table.focus()
            return
        if search.value or self.browser.filters != Filters():
            search.value = ""
            for select_id in ("#zone", "#group", "#consent", "#sendable"):
                self.query_one(select_id, Select).clear()
            self.browser.restart(search="", filters=Filters())
            self.reload(data_changed=False)

    def action_reload(self) -> None:
        self._refresh_choices()
        self.reload(keep_id=self.selected_id())

    # Actions on a contact ----------------------------------------------------

    def selected_id(self) -> int | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return int(key.value) if key.value is not None else None

    def _allowed(self, needed: Role) -> bool:
        if self.ctx.role >= needed:
            return True
        self.notify(self.t("role.viewer_only", role=self.ctx.role.name.lower()), severity="warning")
        return False

    def action_add(self) -> None:
        from screens.contact_form import ContactFormScreen

        if self._allowed(Role.OPERATOR):
            self.app.push_screen(ContactFormScreen(None), self._after_form)

    def action_edit(self) -> None:
        from screens.contact_form import ContactFormScreen

        contact_id = self.selected_id()
        if contact_id is None:
            self.notify(self.t("contacts.no_selection"))
        elif self._allowed(Role.OPERATOR):
            self.app.push_screen(ContactFormScreen(contact_id), self._after_form)

    def _after_form(self, contact_id: int | None) -> None:
        if contact_id is not None:
            self._refresh_choices()
            self.reload(keep_id=contact_id)

    def action_consent(self) -> None:
        from screens.consent_form import ConsentFormScreen

        contact_id = self.selected_id()
        if contact_id is None:
            self.notify(self.t("contacts.no_selection"))
        elif self._allowed(Role.OPERATOR):
            self.app.push_screen(ConsentFormScreen(contact_id), self._after_form)

    def action_history(self) -> None:
        from screens.consent import HistoryScreen

        contact_id = self.selected_id()
        if contact_id is None:
            self.notify(self.t("contacts.no_selection"))
        else:
            self.app.push_screen(HistoryScreen(contact_id))

    def action_erase(self) -> None:
        from screens.erase import EraseScreen

        contact_id = self.selected_id()
        if contact_id is None:
            self.notify(self.t("contacts.no_selection"))
        elif self._allowed(Role.ADMIN):
            self.app.push_screen(EraseScreen(contact_id), self._after_erase)

    def _after_erase(self, erased: bool | None) -> None:
        if erased:
            self._refresh_choices()
            self.reload()

    def action_import(self) -> None:
        from screens.import_screen import ImportScreen

        if self._allowed(Role.OPERATOR):
            self.app.push_screen(ImportScreen(), self._after_import)

    def _after_import(self, changed: bool | None) -> None:
        if changed:
            self._refresh_choices()
            self.reload()
