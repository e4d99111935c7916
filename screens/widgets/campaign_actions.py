"""Pause, resume, cancel, retry and resolve, shared by the queue and the campaign view:
each asks first, saying what will happen and to how many."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.screen import Screen

from console.context import Context
from console.i18n import Translator
from console.roles import PermissionDenied, Role
from console.sending.campaign_ops import (
    Change,
    Resolution,
    change_campaign,
    get_campaign,
    resolve_uncertain,
    retry_failed,
)
from console.sending.campaigns import CampaignError
from console.sending.figures import count
from console.sending.states import MessageState
from console.text import visible
from screens.confirm_action import ConfirmActionScreen
from storage.faults import database_errors


class CampaignActions:
    """Mixed into a Screen that knows which campaign is selected."""

    ctx: Context
    t: Translator

    def selected_campaign(self) -> int | None:
        raise NotImplementedError

    def after_campaign_action(self) -> None:
        """Called once an action is done, to show its effect at once."""

    def _screen(self) -> Screen[Any]:
        assert isinstance(self, Screen)
        return self

    def _campaign_or_warn(self) -> Any:
        campaign_id = self.selected_campaign()
        screen = self._screen()
        if campaign_id is None:
            screen.notify(self.t("envois.no_selection"), severity="warning")
            return None
        try:
            view = get_campaign(self.ctx, campaign_id)
        except CampaignError as exc:
            screen.notify(self.t.error(exc), severity="error", markup=False)
            return None
        needed = Role.ALERTER if view.kind == "emergency" else Role.OPERATOR
        if self.ctx.role < needed:
            screen.notify(
                self.t("envois.role_needed", role=self.t(f"error.role_{needed.name.lower()}")),
                severity="warning",
            )
            return None
        return view

    def _ask(
        self,
        title: str,
        body: str,
        label: str,
        do: Callable[[], str],
        *,
        type_count: int | None = None,
        danger: bool = True,
    ) -> None:
        screen = self._screen()

        def answered(confirmed: bool | None) -> None:
            if confirmed:
                # A pause or a cancel waits for the workers to give back what they
                # hold (a few tenths of a second, 5 s at most): never on the UI thread.
                screen.run_worker(run, thread=True, group="campaign-action", exit_on_error=False)

        def run() -> None:
            try:
                message = do()
            except (CampaignError, PermissionDenied) as exc:
                screen.app.call_from_thread(
                    screen.notify, self.t.error(exc), severity="error", markup=False
                )
                return
            except database_errors() as exc:
                # A locked or full database: said, and the console stays.
                said = visible(str(exc).splitlines()[0])
                screen.app.call_from_thread(screen.notify, said, severity="error", markup=False)
                return
            screen.app.call_from_thread(self._done, message)

        screen.app.push_screen(
            ConfirmActionScreen(
                title, body, label, type_count=type_count or None, danger=danger, alert_key=True
            ),
            answered,
        )

    def _done(self, message: str) -> None:
        self._screen().notify(message, markup=False, timeout=10)
        self.after_campaign_action()

    def _change(self, change: Change) -> None:
        view = self._campaign_or_warn()
        if view is None:
            return
        t = self.t
        waiting = view.counts[MessageState.QUEUED]
        in_flight = view.counts[MessageState.SENDING]

        def do() -> str:
            changed = change_campaign(self.ctx, view.id, change)
            done = t(f"envois.done_{change}", id=view.id)
            if changed.stop is None:
                return done
            # What left after the stop, in the operator's words.
            figures = {
                name: count(t, value) if isinstance(value, int) else value
                for name, value in changed.stop.to_json().items()
            }
            return f"n°{view.id} · {t(f'cli.campaign_stop_{change}', **figures)}"

        self._ask(
            t(f"envois.{change}_title", id=view.id),
            t(
                f"envois.{change}_body",
                id=view.id,
                waiting=count(t, waiting),
                in_flight=count(t, in_flight),
            ),
            t(f"envois.{change}_confirm"),
            do,
            # Cancelling is for good: the operator types how many will never go.
            type_count=waiting if change == "cancel" else None,
            danger=change == "cancel",
        )

    def action_pause(self) -> None:
        self._change("pause")

    def action_resume(self) -> None:
        self._change("resume")

    def action_cancel_campaign(self) -> None:
        self._change("cancel")

    def action_retry_failed(self) -> None:
        view = self._campaign_or_warn()
        if view is None:
            return
        t = self.t
        failed = view.counts[MessageState.FAILED]
        if not failed:
            self._screen().notify(t("envois.nothing_failed", id=view.id))
            return
        self._ask(
            t("envois.retry_title", id=view.id),
            t("envois.retry_body", id=view.id, count=count(t, failed)),
            t("envois.retry_confirm"),
            lambda: t("envois.retried", count=retry_failed(self.ctx, view.id)),
            type_count=failed,
        )

    def _resolve(self, resolution: Resolution) -> None:
        view = self._campaign_or_warn()
        if view is None:
            return
        t = self.t
        uncertain = view.counts[MessageState.UNCERTAIN]
        if not uncertain:
            self._screen().notify(t("envois.nothing_uncertain", id=view.id))
            return
        key = "resend" if resolution == "resend" else "mark_sent"
        self._ask(
            t(f"envois.{key}_title", id=view.id),
            t(f"envois.{key}_body", id=view.id, count=count(t, uncertain)),
            t(f"envois.{key}_confirm"),
            lambda: t("envois.resolved", count=resolve_uncertain(self.ctx, view.id, resolution)),
            type_count=uncertain,
        )

    def action_resend_uncertain(self) -> None:
        self._resolve("resend")

    def action_mark_sent(self) -> None:
        self._resolve("mark-sent")
