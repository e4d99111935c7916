"""Alert, step 4: what goes to whom, confirmed by typing the number of recipients.

The count field has the focus: the typed number is the safety, so a reflex Enter on
an empty or wrong count sends nothing, and digits always go into the field. Before
the operator types, the step says in red when no worker is alive to send, or when
another alert is sending (both go out together, in turns). Once confirmed, the first
recipients are committed at once and the console jumps to the live queue while the
rest are enqueued."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Footer, Input, Static

from console.composing.composer import analyse, estimate_cost
from console.sending.alerts import (
    AlertDraft,
    SendingNow,
    final_text,
    preview,
    send_alert,
    sending_now,
)
from console.sending.campaigns import Preview
from console.sending.figures import count
from console.sending.workers import ALIVE_WITHIN_S, alive_workers
from console.text import visible
from screens.confirm_action import ConfirmActionScreen
from screens.widgets.alert_step import AlertStep, AlertSteps
from screens.widgets.composer import money
from screens.widgets.shell import shell
from screens.widgets.typed_count import DIGIT_KEYS, CountField, type_digit

# How often the red lines above the count (no worker, another alert) are read again.
AHEAD_EVERY_S = 3.0


class ConfirmStep(AlertStep):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "binding.back", id="alert.confirm_back"),
        *DIGIT_KEYS,
    ]

    def __init__(self, steps: AlertSteps) -> None:
        super().__init__(steps)
        self.expected: Preview | None = None
        self.sending_now: SendingNow | None = None
        self.sending = False

    def compose(self) -> ComposeResult:
        t = self.t
        yield self.header()
        with Vertical(id="confirm-box"):
            yield Static(id="summary")
            yield Static(Text(visible(final_text(self.ctx, self.draft.text))), id="final-text")
            yield Static(id="ahead")
            with Horizontal(id="count-row"):
                yield Static(id="confirm-prompt")
                yield CountField(id="confirm-count")
            yield Static(id="form-error")
            with Horizontal(id="form-buttons"):
                yield Button(t("alert.abandon"), id="cancel", compact=True)
                yield Button(t("alert.send"), id="confirm", compact=True, variant="error")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(CountField).focus()
        self._count(self.draft)
        # A worker may die or start, another alert finish, while the operator reads.
        self.set_interval(AHEAD_EVERY_S, self._poll_ahead)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Once confirmed, the alert is on its way: no step back from under it.
        return not (self.sending and action in ("back", "count_digit"))

    def action_count_digit(self, digit: str) -> None:
        type_digit(self, digit)

    @work(exclusive=True, thread=True)
    def _count(self, draft: AlertDraft) -> None:
        try:
            result = preview(self.ctx, draft)
            now = sending_now(self.ctx)
        except Exception as exc:  # the database unreachable: said, nothing sent
            self.app.call_from_thread(self._count_failed, exc)
            return
        self.app.call_from_thread(self._show, result, now)

    @work(exclusive=True, thread=True, group="ahead")
    def _poll_ahead(self) -> None:
        try:
            now = sending_now(self.ctx)
        except Exception:  # said by the next poll that works; the count stays
            return
        self.app.call_from_thread(self._show_ahead, now)

    def _show_ahead(self, now: SendingNow) -> None:
        self.sending_now = now
        ahead = self._ahead(now)
        self.query_one("#ahead", Static).update(ahead)
        self.query_one("#ahead", Static).set_class(bool(ahead.plain), "-shown")

    def _count_failed(self, exc: BaseException) -> None:
        t = self.t
        self.query_one("#form-error", Static).update(
            Text("✗ " + t("alert.count_failed", error=visible(t.error(exc))), style="bold red")
        )

    def _show(self, result: Preview, now: SendingNow) -> None:
        self.expected = result
        t = self.t
        draft = self.draft
        analysis = analyse(final_text(self.ctx, draft.text))
        where = (
            t("alert.everyone", topic=self.ctx.config.topics[self.ctx.config.alert.topic].label)
            if draft.everyone
            else ", ".join(visible(z) for z in draft.zones)
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
                sender=draft.sender_id,
            )
        )
        self.query_one("#summary", Static).update(summary)
        self._show_ahead(now)
        self.query_one("#confirm-prompt", Static).update(
            Text(t("alert.type_count", count=result.recipients), style="bold")
        )

    def _ahead(self, now: SendingNow) -> Text:
        """What stands between this alert and the residents, in red, said before the
        operator confirms."""
        t = self.t
        out = Text(style="bold red")
        lines = []
        if not now.workers_alive:
            lines.append(t("alert.ahead_no_worker"))
        for other in now.alerts:
            lines.append(t("alert.ahead_alert", id=other.id, waiting=count(t, other.waiting)))
        out.append("\n".join(f"⚠ {line}" for line in lines))
        return out

    @on(Button.Pressed, "#cancel")
    def _abandon(self) -> None:
        """Drops the whole alert, back to where `!` was pressed."""
        if not self.sending:
            self.steps.abandon()

    @on(Input.Submitted)
    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        t = self.t
        if self.sending or self.expected is None:
            return
        typed = self.query_one(CountField)
        if not typed.matches(self.expected.recipients):
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
        self._sending(True)
        self.query_one("#form-error", Static).update(Text(t("alert.sending"), style="bold"))
        self._send(self.draft)

    def _sending(self, sending: bool) -> None:
        self.sending = sending
        for widget in (self.query_one(CountField), self.query_one("#cancel", Button)):
            widget.disabled = sending
        self.refresh_bindings()

    @work(exclusive=True, thread=True, group="alert-send")
    def _send(self, draft: AlertDraft) -> None:
        app = self.app
        try:
            send_alert(
                self.ctx,
                draft,
                on_started=lambda cid: app.call_from_thread(self._started, cid),
            )
        except Exception as exc:  # a refusal or a database error: shown, never a crash
            app.call_from_thread(self._failed, exc)

    def _failed(self, exc: BaseException) -> None:
        self._sending(False)
        self.query_one(CountField).focus()
        self.query_one("#form-error", Static).update("")
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
        self.steps.sent(campaign_id)
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
