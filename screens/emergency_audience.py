"""Alert, step 2: every resident of the alert topic, or chosen zones; the number of
recipients follows each change. A ticked line reads `[x]`, an unticked one `[ ]`:
the shape says it, not only the colour."""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer, SelectionList, Static
from textual.widgets.selection_list import Selection

from console.sending.alerts import AlertDraft, AlertIncomplete, preview, zone_counts
from console.sending.campaigns import Preview
from console.sending.figures import count
from console.text import visible
from screens.widgets.alert_step import AlertStep, AlertSteps
from screens.widgets.tick_list import EVERYONE, TickList, everyone_or_quartiers


class AudienceList(TickList[str]):
    # Space ticks a line; Enter goes on (instead of ticking it too).
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "screen.next_step", "binding.next", show=False),
    ]


class AudienceStep(AlertStep):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "next_step", "binding.next", id="alert.next"),
        Binding("space", "tick", "binding.toggle", id="alert.toggle", show=False),
    ]

    def __init__(self, steps: AlertSteps) -> None:
        super().__init__(steps)
        self.preview: Preview | None = None
        draft = self.draft
        self._selected: set[str] = {EVERYONE} if draft.everyone else set(draft.zones)

    def compose(self) -> ComposeResult:
        t = self.t
        yield self.header()
        yield Static(t("alert.audience_intro"), classes="alert-intro")
        topic = self.ctx.config.topics[self.ctx.config.alert.topic].label
        choices: list[Selection[str]] = [
            Selection(
                Text(t("alert.everyone", topic=topic), style="bold"),
                EVERYONE,
                EVERYONE in self._selected,
            )
        ]
        for zone, residents in zone_counts(self.ctx):
            choices.append(
                Selection(
                    Text(t("alert.zone", zone=visible(zone), count=count(t, residents))),
                    zone,
                    zone in self._selected,
                )
            )
        yield AudienceList(*choices, id="audience")
        yield Static(id="recipients")
        yield Static(id="form-error")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(AudienceList).focus()
        self._count(self.holding())

    @on(SelectionList.SelectedChanged)
    def _changed(self, event: SelectionList.SelectedChanged[str]) -> None:
        self._selected = everyone_or_quartiers(event.selection_list, self._selected)
        self.query_one("#form-error", Static).update("")
        self._count(self.holding())

    def holding(self) -> AlertDraft:
        zones = tuple(v for v in self.query_one(AudienceList).selected if v != EVERYONE)
        return replace(self.draft, everyone=EVERYONE in self._selected, zones=zones)

    @work(exclusive=True, thread=True)
    def _count(self, draft: AlertDraft) -> None:
        if not draft.everyone and not draft.zones:
            self.app.call_from_thread(self._show, None)
            return
        self.app.call_from_thread(self._show, preview(self.ctx, draft))

    def _show(self, result: Preview | None) -> None:
        self.preview = result
        t = self.t
        line = self.query_one("#recipients", Static)
        if result is None:
            line.update(Text(t("alert.no_audience"), style="yellow"))
            return
        text = Text()
        text.append(t("alert.recipients", count=count(t, result.recipients)), style="bold")
        skipped = ", ".join(
            f"{count(t, n)} {t(f'skip.{reason}')}" for reason, n in sorted(result.skipped.items())
        )
        if skipped:
            text.append("  " + t("alert.not_reached", skipped=skipped), style="dim")
        line.update(text)

    def action_tick(self) -> None:
        self.query_one(AudienceList).action_select()

    def action_next_step(self) -> None:
        try:
            self.steps.forward(self.holding())
        except AlertIncomplete as exc:
            self.query_one("#form-error", Static).update(Text(self.t.error(exc), style="red"))
