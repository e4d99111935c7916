"""Alert, step 4: what goes to whom, confirmed by typing the number of recipients.
Focus starts on Cancel. Once confirmed, the first recipients are committed at once and
the console jumps to the live queue while the rest are enqueued."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Footer, Input, Static

from console.composing.composer import analyse, estimate_cost
from console.sending.alerts import AlertDraft, final_text, preview, send_alert
from console.sending.campaigns import Preview
from console.sending.figures import count
from console.sending.workers import ALIVE_WITHIN_S, alive_workers
from console.text import visible
from screens.confirm_action import ConfirmActionScreen
from screens.widgets.alert_step import AlertStep
from screens.widgets.composer import money
from screens.widgets.shell import shell


class ConfirmStep(AlertStep):
    STEP = 4
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "binding.back", id="alert.confirm_back"),
    ]

    def __init__(self, draft: AlertDraft) -> None:
        super().__init__(draft)
        self.expected: Preview | None = None
        self.sending = False

    def compose(self) -> ComposeResult:
        t = self.t
        yield self.header()
        with Vertical(id="confirm-box"):
            yield Static(id="summary")
            yield Static(Text(visible(final_text(self.ctx, self.draft.text))), id="final-text")
            yield Static(id="confirm-prompt")
            yield Input(id="confirm-count", compact=True, restrict=r"\d*", max_length=9)
            yield Static(id="form-error")
            with Horizontal(id="form-buttons"):
                yield Button(t("form.cancel"), id="cancel", compact=True)
                yield Button(t("alert.send"), id="confirm", compact=True, variant="error")
        yield Footer()

    def on_mount(self) -> None:
        # Nothing is sent by a reflex Enter: the cursor sits on Cancel.
        self.query_one("#cancel", Button).focus()
        self._count()

    @work(exclusive=True, thread=True)
    def _count(self) -> None:
        result = preview(self.ctx, self.draft)
        self.app.call_from_thread(self._show, result)

    def _show(self, result: Preview) -> None:
        self.expected = result
        t = self.t
        analysis = analyse(final_text(self.ctx, self.draft.text))
        where = (
            t("alert.everyone", topic=self.ctx.config.topics[self.ctx.config.alert.topic].label)
            if self.draft.everyone
            else ", ".join(visible(z) for z in self.draft.zones)
        )
        cost = estimate_cost(
            analysis.segments, result.recipients, self.ctx.config.provider.price_per_segment
        )
        summary = Text()
        summary.append(t("alert.summary_to", where=where) + "\n", style="bold")
        summary.append(
            t(
                "alert.summary_figures",
                recipients=count(t, result.recipients),
                segments=analysis.segments,
                encoding=analysis.encoding,
                cost=money(t, cost),
                sender=self.draft.sender_id,
            )
        )
        self.query_one("#summary", Static).update(summary)
        self.query_one("#confirm-prompt", Static).update(
            Text(t("alert.type_count", count=result.recipients), style="bold")
        )

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        """Cancel drops the whole alert, back to where `!` was pressed."""
        from screens.emergency_template import TemplateStep

        while not isinstance(self.app.screen, TemplateStep):
            self.app.pop_screen()
        self.app.pop_screen()

    @on(Input.Submitted)
    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        t = self.t
        if self.sending:
            return
        if self.expected is None:
            return
        typed = self.query_one("#confirm-count", Input)
        if typed.value.strip() != str(self.expected.recipients):
            self.query_one("#form-error", Static).update(
                Text(
                    "✗ " + t("alert.count_mismatch", count=self.expected.recipients),
                    style="bold red",
                )
            )
            typed.value = ""
            typed.focus()
            return
        if self.expected.recipients == 0:
            self.query_one("#form-error", Static).update(
                Text("✗ " + t("alert.nobody"), style="bold red")
            )
            return
        self.sending = True
        self.query_one("#form-error", Static).update(Text(t("alert.sending"), style="bold"))
        self._send()

    @work(exclusive=True, thread=True, group="alert-send")
    def _send(self) -> None:
        app = self.app
        try:
            send_alert(
                self.ctx,
                self.draft,
                on_started=lambda cid: app.call_from_thread(self._started, cid),
            )
        except Exception as exc:  # a refusal or a database error: shown, never a crash
            app.call_from_thread(self._failed, exc)

    def _failed(self, exc: BaseException) -> None:
        self.sending = False
        self.notify(
            self.t("alert.failed", error=self.t.error(exc)),
            severity="error",
            markup=False,
            timeout=15,
        )

    def _started(self, campaign_id: int) -> None:
        app = self.app
        tocsin = shell(self)
        ctx = self.ctx
        t = self.t
        tocsin.show_live(campaign_id)
        app.notify(t("alert.sent", id=campaign_id), markup=False)
        if alive_workers(ctx.engine, ctx.clock.now(), ALIVE_WITHIN_S):
            return

        def answered(start: bool | None) -> None:
            if start:
                tocsin.action_start_worker()

        app.push_screen(
            ConfirmActionScreen(
                t("alert.no_worker_title"),
                t("alert.no_worker_body", id=campaign_id),
                t("alert.start_worker"),
                danger=True,
            ),
            answered,
        )
