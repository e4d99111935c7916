"""The alert open in this console: the domain's AlertFlow (the order of the steps, what
each needs) walked on the screen stack. The only module that knows every step's
screen; the steps know only this object, through screens.widgets.alert_step.AlertSteps.

One alert at most per console: `!` while one is open brings it back (from another
mode too) instead of starting a second, half-made one. The steps sit on top of the
screen `!` was pressed on (a dialog included): leaving the alert, sent or abandoned,
uncovers that screen as it was."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.app import App

from console.sending.alerts import AlertDraft, AlertFlow, Step
from screens.emergency_audience import AudienceStep
from screens.emergency_compose import ComposeStep
from screens.emergency_confirm import ConfirmStep
from screens.emergency_template import TemplateStep
from screens.widgets.alert_step import AlertStep
from screens.widgets.shell import shell

SCREENS: dict[Step, Callable[[OpenAlert], AlertStep]] = {
    Step.TEMPLATE: TemplateStep,
    Step.AUDIENCE: AudienceStep,
    Step.COMPOSE: ComposeStep,
    Step.CONFIRM: ConfirmStep,
}


class OpenAlert:
    def __init__(self, app: App[Any], on_close: Callable[[], None]) -> None:
        self.app = app
        self.flow = AlertFlow(shell(app).ctx)
        # The mode whose screen stack holds the steps.
        self.mode = app.current_mode
        self.on_close = on_close
        self.screens: list[AlertStep] = []

    def start(self) -> None:
        self._push()

    def _push(self) -> None:
        screen = SCREENS[self.flow.step](self)
        self.screens.append(screen)
        self.app.push_screen(screen)

    def _pop(self) -> None:
        # A step acts only when it is on top: the current screen is that step.
        self.screens.pop()
        self.app.pop_screen()

    # What the steps call -----------------------------------------------------------

    def forward(self, draft: AlertDraft) -> None:
        self.flow.forward(draft)
        self._push()

    def back(self, draft: AlertDraft) -> None:
        if self.flow.back(draft) is None:
            self.abandon()
            return
        self._pop()

    def abandon(self) -> None:
        """Drop the alert: every step goes, the screen under `!` comes back."""
        self._close()

    def sent(self, campaign_id: int) -> None:
        self._close()
        shell(self.app).show_live(campaign_id)

    def _close(self) -> None:
        self._bring_mode()
        if self.screens:
            first = self.screens[0]
            # The steps, and whatever was opened over them (help), down to the screen
            # `!` was pressed on.
            while first in self.app.screen_stack:
                self.app.pop_screen()
        self.screens.clear()
        self.on_close()

    # What the App calls ----------------------------------------------------------------

    def bring_back(self) -> None:
        """`!` with this alert open: show it where it was left."""
        self._bring_mode()
        last = self.screens[-1]
        while self.app.screen is not last and last in self.app.screen_stack:
            self.app.pop_screen()

    def _bring_mode(self) -> None:
        if self.app.current_mode != self.mode:
            self.app.switch_mode(self.mode)

    @property
    def where(self) -> str:
        """The step, as the header says it ("2/4")."""
        return f"{self.flow.number}/{len(Step)}"
