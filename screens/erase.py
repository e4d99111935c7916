"""Erase a contact (RGPD): the operator types the count of contacts to erase, in the
field that has the focus when the dialog opens."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Static

from console.contacts.numbers import display
from console.contacts.rules import ContactError
from console.contacts.service import erase_contact, get_contact
from console.roles import PermissionDenied
from console.text import visible
from screens.widgets.modal import ALERT_KEY, TocsinModal
from screens.widgets.typed_count import DIGIT_KEYS, CountField, type_digit

ERASE_COUNT = 1


class EraseScreen(TocsinModal[bool]):
    CANCEL_RESULT = False

    CSS_PATH = "contact_form.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "binding.back", id="erase.cancel"),
        ALERT_KEY,
        *DIGIT_KEYS,
    ]

    def __init__(self, contact_id: int) -> None:
        super().__init__()
        self.contact_id = contact_id

    def compose(self) -> ComposeResult:
        t = self.t
        contact = get_contact(self.ctx, self.contact_id)
        with Vertical(id="form-box"):
            yield Static(Text(t("erase.title"), style="bold red"), id="form-title")
            yield Static(
                Text(
                    t(
                        "erase.body",
                        name=visible(contact.name) or "—",
                        number=display(contact.number),
                    )
                )
            )
            yield Static(Text(t("erase.prompt", count=ERASE_COUNT)), id="erase-prompt")
            yield CountField(id="erase-count")
            yield Static(id="form-error")
            with Horizontal(id="form-buttons"):
                yield Button(t("form.cancel"), id="cancel", compact=True)
                yield Button(t("erase.confirm"), variant="error", id="confirm", compact=True)

    def on_mount(self) -> None:
        self.query_one(CountField).focus()

    def action_count_digit(self, digit: str) -> None:
        type_digit(self, digit)

    @on(Input.Submitted)
    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        typed = self.query_one(CountField)
        if not typed.matches(ERASE_COUNT):
            self.show_error(self.t("erase.mismatch", count=ERASE_COUNT))
            typed.value = ""
            typed.focus()
            return
        try:
            result = erase_contact(self.ctx, self.contact_id)
        except (ContactError, PermissionDenied) as exc:
            self.show_error(exc)
            return
        key = "contacts.erased_suppressed" if result.suppressed else "contacts.erased"
        self.notify(self.t(key, id=self.contact_id))
        self.dismiss(True)
