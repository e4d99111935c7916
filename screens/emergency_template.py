"""Alert, step 1: the template (inondation, accident de la route...) or a free text."""

from __future__ import annotations

from dataclasses import replace

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from console.sending.alerts import AlertDraft, templates
from console.text import visible
from screens.widgets.alert_step import AlertStep

FREE_TEXT = "\x00free"


class TemplateStep(AlertStep):
    STEP = 1

    def __init__(self, draft: AlertDraft | None = None) -> None:
        super().__init__(draft or AlertDraft())

    def compose(self) -> ComposeResult:
        t = self.t
        yield self.header()
        yield Static(t("alert.template_intro"), classes="alert-intro")
        options = []
        for label, text in templates(self.ctx).items():
            # One line each: the label, then the start of the text.
            prompt = Text()
            prompt.append(visible(label), style="bold")
            room = max(self.app.size.width - len(label) - 12, 10)
            preview = visible(text).replace("\n", " ")
            if len(preview) > room:
                preview = preview[: room - 1] + "…"
            prompt.append("  " + preview, style="dim")
            options.append(Option(prompt, id=label))
        options.append(Option(Text(t("alert.free_text"), style="italic"), id=FREE_TEXT))
        yield OptionList(*options, id="templates")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        from screens.emergency_audience import AudienceStep

        label = event.option.id or FREE_TEXT
        draft = replace(self.draft, template="" if label == FREE_TEXT else label)
        self.app.push_screen(AudienceStep(draft))
