"""What every Tocsin dialog shares: context, translations, the error line, Cancel."""

from __future__ import annotations

from typing import Any, TypeVar

from rich.text import Text
from textual import on
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from console.context import Context
from console.i18n import Translator
from screens.widgets.translate import translate_bindings

ResultT = TypeVar("ResultT")


class TocsinModal(ModalScreen[ResultT]):
    # What esc and the Cancel button hand back.
    CANCEL_RESULT: Any = None

    def __init__(self) -> None:
        super().__init__()
        self.ctx: Context = self.app.ctx  # type: ignore[attr-defined]
        self.t: Translator = self.app.t  # type: ignore[attr-defined]
        translate_bindings(self, self.t)

    def show_error(self, message: object) -> None:
        """One red line in #form-error; the text is never read as markup."""
        self.query_one("#form-error", Static).update(Text(f"✗ {message}", style="red"))

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(self.CANCEL_RESULT)
