"""What the emergency steps share: the red header with the step, who may send, the
flow they belong to, `esc`.

A step never names another step: it hands what it holds to its flow (`forward`,
`back`), and the flow (screens/alert_flow.py, over console.sending.alerts.AlertFlow)
decides which screen comes next."""

from __future__ import annotations

from typing import ClassVar, Protocol

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Static

from console.context import Context
from console.i18n import Translator
from console.sending.alerts import STEPS, AlertDraft, AlertFlow, may_send, who_may_send
from console.text import visible
from screens.widgets.shell import shell
from screens.widgets.translate import translate_bindings


class AlertSteps(Protocol):
    """What a step asks of the open alert it is part of."""

    flow: AlertFlow

    def forward(self, draft: AlertDraft) -> None:
        """Raises AlertIncomplete (or CampaignError) when the step is not done."""

    def back(self, draft: AlertDraft) -> None: ...

    def abandon(self) -> None: ...

    def sent(self, campaign_id: int) -> None: ...


def who_may_send_text(t: Translator, entries: tuple[str, ...]) -> str:
    """Config entries as people read them: a user, a Unix group, everyone."""
    names = []
    for entry in entries:
        if entry == "*":
            names.append(t("alert.anyone"))
        elif entry.startswith("@"):
            names.append(t("alert.group", group=visible(entry[1:])))
        else:
            names.append(visible(entry))
    return ", ".join(names) or t("alert.nobody_may_send")


class AlertStep(Screen[None]):
    # Resolved beside each step module (all in screens/).
    CSS_PATH = "emergency.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "binding.back", id="alert.back"),
    ]

    def __init__(self, steps: AlertSteps) -> None:
        super().__init__()
        self.ctx: Context = shell(self).ctx
        self.t: Translator = shell(self).t
        translate_bindings(self, self.t)
        self.steps = steps

    @property
    def draft(self) -> AlertDraft:
        """The alert as the flow holds it now (what later steps typed included)."""
        return self.steps.flow.draft

    def header(self) -> Vertical:
        t = self.t
        flow = self.steps.flow
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f" {t('alert.title')} ", style="bold white on red")
        line.append(f" {t('alert.step', step=flow.number, steps=len(STEPS))} · ", style="bold")
        line.append(t(f"alert.step{flow.number}") + " ", style="bold")
        line.append(f"  {visible(self.ctx.config.town.name)}", style="dim")
        parts = [Static(line, id="alert-header")]
        if not may_send(self.ctx):
            # Said from the first step: a viewer or operator may prepare the alert,
            # and knows before typing anything who has to send it.
            parts.append(
                Static(
                    Text(
                        t(
                            "alert.prepare_only",
                            operator=visible(self.ctx.operator),
                            role=t(f"error.role_{self.ctx.role.name.lower()}"),
                            who=who_may_send_text(t, who_may_send(self.ctx)),
                        ),
                        style="bold red",
                    ),
                    id="alert-role",
                )
            )
        return Vertical(*parts, id="alert-top")

    def holding(self) -> AlertDraft:
        """What this step holds now, handed to the flow on `esc` and on Next."""
        return self.draft

    def action_back(self) -> None:
        self.steps.back(self.holding())
