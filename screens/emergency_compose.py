"""Alert, step 3: the text, with the composer's live counters, and the sender ID."""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Footer, Input, Label, Static

from console.sending.alerts import AlertDraft, AlertIncomplete, final_text, may_send, preview
from console.sending.campaigns import CampaignError
from console.text import visible
from screens.widgets.alert_step import AlertStep, AlertSteps
from screens.widgets.composer import ComposerPanel


class ComposeStep(AlertStep):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+n", "next_step", "binding.next", id="alert.compose_next", priority=True),
        Binding("ctrl+t", "gsm7", "binding.gsm7", id="alert.gsm7", priority=True),
        Binding(
            "ctrl+r",
            "from_template",
            "binding.from_template",
            id="alert.from_template",
            priority=True,
        ),
    ]

    def __init__(self, steps: AlertSteps) -> None:
        super().__init__(steps)
        self.recipients: int | None = None
        self.opened_on = steps.flow.composing()
        self._offer_template = steps.flow.text_kept

    def compose(self) -> ComposeResult:
        t = self.t
        yield self.header()
        yield ComposerPanel(
            self.opened_on.text,
            t,
            price_per_segment=self.ctx.config.provider.price_per_segment,
            finalize=lambda text: final_text(self.ctx, text),
            id="composer",
        )
        with Horizontal(id="sender-row"):
            yield Label(t("alert.sender"))
            yield Input(
                self.opened_on.sender_id or self.ctx.config.town.sender_id,
                id="sender",
                compact=True,
                max_length=11,
                restrict=r"[A-Za-z0-9]*",
            )
        yield Static(self._kept_note(), id="kept-note")
        yield Static(id="form-error")
        yield Footer()

    def _kept_note(self) -> Text:
        """Back at step 1 with a text of their own, another template chosen: the
        operator's text was kept, and ctrl+r gives the new template instead."""
        if not self._offer_template:
            return Text()
        return Text(self.t("alert.text_kept", template=visible(self.draft.template)), style="dim")

    def on_mount(self) -> None:
        self.query_one("#message").focus()
        self._count(self.draft)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "from_template":
            # Offered when the operator's text was kept over another choice.
            return self._offer_template
        if action == "next_step" and not may_send(self.ctx):
            # Shown dimmed: the header says from step 1 who sends the alert.
            return None
        return True

    @work(exclusive=True, thread=True)
    def _count(self, draft: AlertDraft) -> None:
        recipients = preview(self.ctx, draft).recipients
        self.app.call_from_thread(self._show_recipients, recipients)

    def _show_recipients(self, recipients: int) -> None:
        self.recipients = recipients
        self.query_one(ComposerPanel).set_recipients(recipients)

    def _error(self, message: str) -> None:
        self.query_one("#form-error", Static).update(Text(f"✗ {message}", style="bold red"))

    def holding(self) -> AlertDraft:
        return replace(
            self.draft,
            text=self.query_one(ComposerPanel).text,
            sender_id=self.query_one("#sender", Input).value.strip(),
        )

    def action_gsm7(self) -> None:
        if not self.query_one(ComposerPanel).apply_gsm7():
            self.notify(self.t("composer.already_gsm7"))

    def action_from_template(self) -> None:
        self.query_one(ComposerPanel).replace_text(self.steps.flow.restart_from_template())
        self.query_one("#kept-note", Static).update("")
        self._offer_template = False
        self.refresh_bindings()

    def action_next_step(self) -> None:
        try:
            self.steps.forward(self.holding())
        except (AlertIncomplete, CampaignError) as exc:
            self._error(self.t.error(exc))
            if exc.code == "campaign_sender_id":
                self.query_one("#sender", Input).focus()
