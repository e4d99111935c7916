"""What the emergency steps share: the red header with the step, the draft, `esc`."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Static

from console.context import Context
from console.i18n import Translator
from console.sending.alerts import AlertDraft
from console.text import visible
from screens.widgets.shell import shell
from screens.widgets.translate import translate_bindings

STEPS = 4


class AlertStep(Screen[None]):
    # Resolved beside each step module (all in screens/).
    CSS_PATH = "emergency.tcss"
    STEP = 0
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "binding.back", id="alert.back"),
    ]

    def __init__(self, draft: AlertDraft) -> None:
        super().__init__()
        self.ctx: Context = shell(self).ctx
        self.t: Translator = shell(self).t
        translate_bindings(self, self.t)
        self.draft = draft

    def header(self) -> Static:
        t = self.t
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f" {t('alert.title')} ", style="bold white on red")
        line.append(f" {t('alert.step', step=self.STEP, steps=STEPS)} · ", style="bold")
        line.append(t(f"alert.step{self.STEP}") + " ", style="bold")
        line.append(f"  {visible(self.ctx.config.town.name)}", style="dim")
        return Static(line, id="alert-header")

    def action_back(self) -> None:
        self.dismiss()
