"""Add or edit a contact; the number is checked as it is typed."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from console.contacts.numbers import InvalidNumber
from console.contacts.rules import ContactError, split_groups
from console.contacts.service import ContactInput, add_contact, get_contact, update_contact
from console.roles import PermissionDenied
from screens.widgets.modal import TocsinModal

FIELDS = ("number", "name", "zone", "groups", "notes")


class ContactFormScreen(TocsinModal[int | None]):
    CSS_PATH = "contact_form.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "binding.back", id="form.cancel"),
        Binding("ctrl+s", "save", "binding.save", id="form.save"),
    ]

    def __init__(self, contact_id: int | None) -> None:
        super().__init__()
        self.contact_id = contact_id

    def compose(self) -> ComposeResult:
        t = self.t
        values = dict.fromkeys(FIELDS, "")
        if self.contact_id is not None:
            contact = get_contact(self.ctx, self.contact_id)
            values = {
                "number": contact.number or "",
                "name": contact.name,
                "zone": contact.zone,
                "groups": contact.groups.replace(",", ", "),
                "notes": contact.notes,
            }
            title = t("form.edit_title", id=self.contact_id)
        else:
            title = t("form.add_title")
        with Vertical(id="form-box"):
            yield Static(Text(title, style="bold"), id="form-title")
            for field in FIELDS:
                with Horizontal(classes="form-row"):
                    yield Label(t(f"form.{field}"))
                    yield Input(
                        value=values[field],
                        id=f"field-{field}",
                        compact=True,
                        placeholder=t("form.groups_hint") if field == "groups" else "",
                    )
                if field == "number":
                    yield Static(id="number-check")
            yield Static(id="form-error")
            with Horizontal(id="form-buttons"):
                yield Button(t("form.save"), variant="primary", id="save", compact=True)
                yield Button(t("form.cancel"), id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#field-number", Input).focus()
        self._check_number(self.query_one("#field-number", Input).value)

    @on(Input.Changed, "#field-number")
    def _number_changed(self, event: Input.Changed) -> None:
        self._check_number(event.value)

    def _check_number(self, raw: str) -> None:
        check = self.query_one("#number-check", Static)
        if not raw.strip():
            check.update("")
            return
        try:
            number = self.ctx.parser.parse(raw)
        except InvalidNumber as exc:
            check.update(Text(f"✗ {self.t.error(exc)}", style="red"))
            return
        kind = (
            number.kind
            if number.kind in ("mobile", "fixed_line", "fixed_line_or_mobile", "voip")
            else "other"
        )
        key = "form.number_ok" if number.sendable else "form.number_not_sendable"
        style = "green" if number.sendable else "yellow"
        check.update(Text(self.t(key, e164=number.e164, kind=self.t(f"kind.{kind}")), style=style))

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#save")
    def _save_pressed(self) -> None:
        self.action_save()

    def action_save(self) -> None:
        value = {f: self.query_one(f"#field-{f}", Input).value for f in FIELDS}
        data = ContactInput(
            number=value["number"],
            name=value["name"],
            zone=value["zone"],
            groups=split_groups(value["groups"]),
            notes=value["notes"],
            source="console",
        )
        try:
            if self.contact_id is None:
                contact = add_contact(self.ctx, data)
                self.notify(self.t("contacts.added", name=contact.name or contact.number))
            else:
                contact = update_contact(self.ctx, self.contact_id, data)
                self.notify(self.t("contacts.saved", name=contact.name or contact.number))
        except ContactError as exc:
            self.show_error(exc)
            if exc.field:
                self.query_one(f"#field-{exc.field}", Input).focus()
            return
        except PermissionDenied as exc:
            self.show_error(exc)
            return
        self.dismiss(contact.id)
