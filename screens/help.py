"""Help: every key of the app and of the screen underneath, with its binding id."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Static

from screens.widgets.inert import INERT_WHILE_TYPING, keys_inert_on
from screens.widgets.shell import shell
from screens.widgets.translate import translate_bindings


class HelpScreen(ModalScreen[None]):
    CSS_PATH = "help.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,f1", "dismiss", "binding.back", id="help.close"),
    ]

    def __init__(self, under: Screen[Any]) -> None:
        super().__init__()
        self.under = under
        translate_bindings(self, shell(self).t)

    def compose(self) -> ComposeResult:
        t = shell(self).t
        with Vertical(id="help-box"):
            yield Static(Text(t("help.title"), style="bold"), id="help-title")
            yield Static(Text(t("help.intro")), id="help-intro")
            yield DataTable(id="help-table", cursor_type="row", zebra_stripes=True)
            yield Static(Text(t("help.close"), style="dim"), id="help-close")

    def on_mount(self) -> None:
        t = shell(self).t
        table = self.query_one(DataTable)
        table.add_columns(t("help.col.key"), t("help.col.action"), t("help.col.id"))
        seen: set[tuple[str, str]] = set()
        # Over an alert step or a dialog, the App's single keys do nothing: not listed.
        inert = keys_inert_on(self.under)
        for node in (self.app, self.under):
            for bindings in node._bindings.key_to_bindings.values():
                for binding in bindings:
                    # Textual's own bindings (focus, copy) have no id and no catalog entry.
                    if not binding.id or (binding.action, binding.key) in seen:
                        continue
                    action = binding.action.partition("(")[0]
                    if inert and node is self.app and action in INERT_WHILE_TYPING:
                        continue
                    seen.add((binding.action, binding.key))
                    table.add_row(
                        Text(self.app.get_key_display(binding)),
                        Text(binding.description),
                        Text(binding.id or "", style="dim"),
                    )
        if not inert:
            palette = self.app.COMMAND_PALETTE_BINDING
            table.add_row(
                Text(palette), Text(t("binding.palette")), Text("app.palette", style="dim")
            )
        table.focus()

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
