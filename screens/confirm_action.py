"""A confirmation that says what will happen and to how many; for mass actions the
operator types that number, so a slip of a key never sends or cancels anything."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Static

from screens.widgets.modal import TocsinModal


class ConfirmActionScreen(TocsinModal[bool]):
    CANCEL_RESULT = False
    CSS_PATH = "contact_form.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "binding.back", id="confirm.cancel"),
    ]

    def __init__(
        self,
        title: str,
        body: str,
        confirm_label: str,
        *,
        type_count: int | None = None,
        danger: bool = True,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.confirm_label = confirm_label
        self.type_count = type_count
        self.danger = danger

    def compose(self) -> ComposeResult:
        t = self.t
        with Vertical(id="form-box"):
            yield Static(
                Text(self.title_text, style="bold red" if self.danger else "bold"), id="form-title"
            )
            yield Static(Text(self.body), id="confirm-body")
            if self.type_count is not None:
                yield Static(
                    Text(t("confirm.type_count", count=self.type_count)), id="confirm-prompt"
                )
                yield Input(id="confirm-count", compact=True, restrict=r"\d*", max_length=9)
            yield Static(id="form-error")
            with Horizontal(id="form-buttons"):
                yield Button(t("form.cancel"), id="cancel", compact=True)
                yield Button(
                    self.confirm_label,
                    id="confirm",
                    compact=True,
                    variant="error" if self.danger else "primary",
                )

    def on_mount(self) -> None:
        # Focus starts on Cancel: Enter pressed by habit does nothing harmful.
        self.query_one("#cancel", Button).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        if self.type_count is not None:
            typed = self.query_one("#confirm-count", Input)
            if typed.value.strip() != str(self.type_count):
                self.show_error(self.t("confirm.mismatch", count=self.type_count))
                typed.focus()
                return
        self.dismiss(True)
