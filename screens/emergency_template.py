"""Alert, step 1: the template (inondation, accident de la route...) or a free text."""

from __future__ import annotations

import contextlib
from dataclasses import replace

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option, OptionDoesNotExist

from console.sending.alerts import templates
from console.text import visible
from screens.widgets.alert_step import AlertStep

FREE_TEXT = "\x00free"


class TemplateStep(AlertStep):
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
        choices = self.query_one(OptionList)
        # Back from a later step: the cursor on the template chosen before.
        chosen = self.draft.template or (FREE_TEXT if self.draft.text else "")
        if chosen:
            # A template removed from the config since: the cursor stays on the first.
            with contextlib.suppress(OptionDoesNotExist):
                choices.highlighted = choices.get_option_index(chosen)
        choices.focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        label = event.option.id or FREE_TEXT
        self.steps.forward(replace(self.draft, template="" if label == FREE_TEXT else label))
