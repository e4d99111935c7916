"""A confirmation that says what will happen and to how many; for mass actions the
operator types that number, so a slip of a key never sends or cancels anything.

With a count to type, the count field has the focus and digits typed anywhere in the
dialog go into it; without one, the focus starts on Cancel."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Static

from screens.widgets.modal import ALERT_KEY, TocsinModal
from screens.widgets.typed_count import DIGIT_KEYS, CountField, type_digit


class ConfirmActionScreen(TocsinModal[bool]):
    CANCEL_RESULT = False
    CSS_PATH = "contact_form.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "binding.back", id="confirm.cancel"),
        ALERT_KEY,
        *DIGIT_KEYS,
    ]

    def __init__(
        self,
        title: str,
        body: str,
        confirm_label: str,
        *,
        type_count: int | None = None,
        danger: bool = True,
        alert_key: bool = False,
    ) -> None:
        super().__init__()
        # Whether `!` opens the alert over this dialog (campaign actions) or is inert
        # (the questions the alert and quitting ask themselves).
        self.alert_key = alert_key
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
                yield CountField(id="confirm-count")
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
        # A count to type: the field. Otherwise Cancel: Enter pressed by habit does
        # nothing harmful.
        if self.type_count is not None:
            self.query_one(CountField).focus()
        else:
            self.query_one("#cancel", Button).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "alert":
            return self.alert_key
        return True

    def action_count_digit(self, digit: str) -> None:
        type_digit(self, digit)

    @on(Input.Submitted)
    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        if self.type_count is not None:
            typed = self.query_one(CountField)
            if not typed.matches(self.type_count):
                self.show_error(self.t("confirm.mismatch", count=self.type_count))
                typed.value = ""
                typed.focus()
                return
        self.dismiss(True)
