"""Record a consent decision (grant or withdraw) for one resident and topic."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Select, Static

from console.consent.ledger import (
    FORM_SOURCES,
    ConsentError,
    ConsentRequest,
    current_consents,
    record_consent,
)
from console.contacts.numbers import display
from console.contacts.service import get_contact
from console.roles import PermissionDenied
from console.text import visible
from screens.widgets.modal import TocsinModal
from storage.engine import read_session


class ConsentFormScreen(TocsinModal[int | None]):
    CSS_PATH = "contact_form.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "binding.back", id="consent.cancel"),
        Binding("ctrl+s", "save", "binding.save", id="consent.save"),
    ]

    def __init__(self, contact_id: int) -> None:
        super().__init__()
        self.contact_id = contact_id

    def compose(self) -> ComposeResult:
        t = self.t
        contact = get_contact(self.ctx, self.contact_id)
        with read_session(self.ctx.engine) as session:
            states = current_consents(session, self.contact_id)
        who = f"{visible(contact.name) or '—'} · {display(contact.number)}"
        with Vertical(id="form-box"):
            yield Static(Text(t("consent.title", name=who), style="bold"), id="form-title")
            lines = Text()
            for key, topic in self.ctx.config.topics.items():
                state = states.get(key)
                if state is None and topic.legal_basis == "public_safety":
                    label = t("consent.state.mission")
                else:
                    label = t(
                        {
                            True: "consent.state.granted",
                            False: "consent.state.withdrawn",
                            None: "consent.state.none",
                        }[state]
                    )
                lines.append(
                    f"{topic.label:<14} {label}\n",
                    style="green" if state else ("red" if state is False else "dim"),
                )
            yield Static(lines, id="consent-states")
            with Horizontal(classes="form-row"):
                yield Label(t("consent.topic"))
                yield Select[str](
                    [(topic.label, key) for key, topic in self.ctx.config.topics.items()],
                    id="topic",
                    compact=True,
                    allow_blank=False,
                )
            with Horizontal(classes="form-row"):
                yield Label(t("consent.action"))
                yield Select[str](
                    [(t("consent.grant"), "grant"), (t("consent.withdraw"), "withdraw")],
                    id="action",
                    compact=True,
                    allow_blank=False,
                )
            with Horizontal(classes="form-row"):
                yield Label(t("consent.source"))
                yield Select[str](
                    [(t(f"source.{s}"), s) for s in FORM_SOURCES],
                    id="source",
                    compact=True,
                    allow_blank=False,
                )
            with Horizontal(classes="form-row"):
                yield Label(t("consent.proof"))
                yield Input(id="proof", compact=True)
            yield Static(id="form-error")
            with Horizontal(id="form-buttons"):
                yield Button(t("form.save"), variant="primary", id="save", compact=True)
                yield Button(t("form.cancel"), id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#topic", Select).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#save")
    def _save(self) -> None:
        self.action_save()

    def action_save(self) -> None:
        topic = str(self.query_one("#topic", Select).value)
        action = str(self.query_one("#action", Select).value)
        request = ConsentRequest(
            contact_id=self.contact_id,
            topic=topic,
            action="grant" if action == "grant" else "withdraw",
            source=str(self.query_one("#source", Select).value),
            proof_ref=self.query_one("#proof", Input).value,
        )
        try:
            record_consent(self.ctx, request)
        except (ConsentError, PermissionDenied) as exc:
            self.show_error(exc)
            return
        label = self.ctx.config.topics[topic].label
        self.notify(
            self.t("consent.recorded", topic=label, action=self.t(f"consent.{request.action}"))
        )
        self.dismiss(self.contact_id)
