"""Alert, step 3: the text, with the composer's live counters, and the sender ID.
Only alerters go past this step; the others see why."""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Footer, Input, Label, Static

from console.composing.composer import unfilled_placeholders
from console.roles import Role
from console.sending.alerts import AlertDraft, final_text, prefill, preview
from console.sending.campaigns import CampaignError, check_sender_id
from screens.widgets.alert_step import AlertStep
from screens.widgets.composer import ComposerPanel


class ComposeStep(AlertStep):
    STEP = 3
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+n", "next_step", "binding.next", id="alert.compose_next", priority=True),
        Binding("ctrl+t", "gsm7", "binding.gsm7", id="alert.gsm7", priority=True),
    ]

    def __init__(self, draft: AlertDraft) -> None:
        super().__init__(draft)
        self.recipients: int | None = None

    def compose(self) -> ComposeResult:
        t = self.t
        yield self.header()
        yield ComposerPanel(
            self.draft.text or prefill(self.ctx, self.draft),
            t,
            price_per_segment=self.ctx.config.provider.price_per_segment,
            finalize=lambda text: final_text(self.ctx, text),
            id="composer",
        )
        with Horizontal(id="sender-row"):
            yield Label(t("alert.sender"))
            yield Input(
                self.draft.sender_id or self.ctx.config.town.sender_id,
                id="sender",
                compact=True,
                max_length=11,
                restrict=r"[A-Za-z0-9]*",
            )
        yield Static(id="form-error")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#message").focus()
        self._count()

    @work(exclusive=True, thread=True)
    def _count(self) -> None:
        recipients = preview(self.ctx, self.draft).recipients
        self.app.call_from_thread(self._show_recipients, recipients)

    def _show_recipients(self, recipients: int) -> None:
        self.recipients = recipients
        self.query_one(ComposerPanel).set_recipients(recipients)

    def _error(self, message: str) -> None:
        self.query_one("#form-error", Static).update(Text(f"✗ {message}", style="bold red"))

    def action_gsm7(self) -> None:
        if not self.query_one(ComposerPanel).apply_gsm7():
            self.notify(self.t("composer.already_gsm7"))

    def action_next_step(self) -> None:
        from screens.emergency_confirm import ConfirmStep

        t = self.t
        text = self.query_one(ComposerPanel).text
        sender = self.query_one("#sender", Input).value.strip()
        if not text.strip():
            self._error(t("error.campaign_empty"))
            return
        unfilled = unfilled_placeholders(text)
        if unfilled:
            self._error(t("alert.fill_placeholders", names=", ".join(f"{{{n}}}" for n in unfilled)))
            return
        try:
            check_sender_id(sender)
        except CampaignError as exc:
            self._error(t.error(exc))
            self.query_one("#sender", Input).focus()
            return
        if self.ctx.role < Role.ALERTER:
            self._error(
                t(
                    "alert.not_alerter",
                    operator=self.ctx.operator,
                    role=t(f"error.role_{self.ctx.role.name.lower()}"),
                )
            )
            return
        self.app.push_screen(ConfirmStep(replace(self.draft, text=text, sender_id=sender)))
