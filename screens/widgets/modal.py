"""What every Tocsin dialog shares: context, translations, the error line, Cancel."""

from __future__ import annotations

from typing import Any, TypeVar

from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from console.context import Context
from console.i18n import Translator
from console.text import visible
from screens.widgets.shell import shell
from screens.widgets.translate import translate_bindings

ResultT = TypeVar("ResultT")

# `!` in a dialog whose fields never take it as text (a count, a file path): the
# alert opens over the dialog, which is there again, as it was, when the alert is done.
# Priority, so that the focused field does not swallow it; same id as the App's `!`,
# so a site keymap moves both.
ALERT_KEY = Binding(
    "exclamation_mark", "alert", "binding.emergency", id="app.emergency", priority=True, show=False
)


class TocsinModal(ModalScreen[ResultT]):
    # What esc and the Cancel button hand back.
    CANCEL_RESULT: Any = None

    def __init__(self) -> None:
        super().__init__()
        self.ctx: Context = shell(self).ctx
        self.t: Translator = shell(self).t
        translate_bindings(self, self.t)

    def show_error(self, message: str | BaseException) -> None:
        """One red line in #form-error, in the operator's language; never markup."""
        text = self.t.error(message) if isinstance(message, BaseException) else message
        self.query_one("#form-error", Static).update(Text(f"✗ {visible(text)}", style="red"))

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(self.CANCEL_RESULT)

    def action_alert(self) -> None:
        shell(self).open_alert()
