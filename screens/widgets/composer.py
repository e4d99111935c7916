"""The composer every send uses: the text, and as it is typed, its characters,
encoding, SMS count, cost, the characters forcing UCS-2 and the GSM-7 version."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static, TextArea
from textual.widgets.text_area import Selection

from console.composing.composer import (
    PLACEHOLDER_PATTERN,
    TextAnalysis,
    analyse,
    code_point,
    estimate_cost,
    unfilled_placeholders,
)
from console.i18n import Translator
from console.sending.figures import count
from console.text import visible


def money(t: Translator, amount: float) -> str:
    return f"{amount:.2f}".replace(".", t("figures.decimal")) + " €"


def describe(
    t: Translator,
    analysis: TextAnalysis,
    recipients: int | None,
    price_per_segment: float,
    stop_added: bool,
) -> Text:
    out = Text()
    encoding_style = "bold yellow" if analysis.encoding == "UCS-2" else "bold green"
    out.append(
        t(
            "composer.counts",
            characters=analysis.characters,
            segments=analysis.segments,
            remaining=analysis.remaining,
        )
    )
    out.append(" · ")
    out.append(analysis.encoding, style=encoding_style)
    if stop_added:
        out.append(" · " + t("composer.stop_added"), style="dim")
    if recipients is not None:
        cost = estimate_cost(analysis.segments, recipients, price_per_segment)
        out.append(
            "\n"
            + t(
                "composer.cost",
                recipients=count(t, recipients),
                segments=analysis.segments,
                cost=money(t, cost),
            )
        )
    if analysis.ucs2_characters:
        shown = ", ".join(
            f"{visible(c) if c.isprintable() and not c.isspace() else '·'} ({code_point(c)})"
            for c in analysis.ucs2_characters
        )
        out.append("\n" + t("composer.ucs2", characters=shown), style="yellow")
    if analysis.gsm7_suggestion is not None:
        out.append(
            "\n"
            + t(
                "composer.suggestion",
                segments=analysis.suggestion_segments,
                units=analysis.suggestion_units,
            ),
            style="bold",
        )
    unfilled = unfilled_placeholders(analysis.text)
    if unfilled:
        out.append(
            "\n" + t("composer.unfilled", names=", ".join(f"{{{n}}}" for n in unfilled)),
            style="bold red",
        )
    return out


def _location(text: str, index: int) -> tuple[int, int]:
    row = text.count("\n", 0, index)
    return row, index - (text.rfind("\n", 0, index) + 1)


class ComposerPanel(Vertical):
    DEFAULT_CSS = """
    ComposerPanel { height: auto; }
    ComposerPanel TextArea { height: 8; }
    ComposerPanel #analysis { height: auto; padding: 0 1; }
    """

    def __init__(
        self,
        text: str,
        t: Translator,
        *,
        price_per_segment: float,
        finalize: Callable[[str], str] = lambda text: text,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.t = t
        self.initial = text
        self.price_per_segment = price_per_segment
        # What residents get (the STOP mention added): that is what is counted.
        self.finalize = finalize
        self.recipients: int | None = None
        self.analysis = analyse(finalize(text))

    def compose(self) -> ComposeResult:
        area = TextArea(
            self.initial,
            id="message",
            soft_wrap=True,
            tab_behavior="focus",
            show_line_numbers=False,
        )
        # No blinking: over a slow SSH link every blink is a redraw.
        area.cursor_blink = False
        yield area
        yield Static(id="analysis")

    def on_mount(self) -> None:
        self._place_cursor()
        self._update()

    def _place_cursor(self) -> None:
        """On the first placeholder left to fill, selected so that typing replaces it;
        otherwise at the end of the text."""
        area = self.query_one(TextArea)
        text = area.text
        match = PLACEHOLDER_PATTERN.search(text)
        if match is None:
            area.move_cursor(area.document.end)
            return
        area.selection = Selection(_location(text, match.start()), _location(text, match.end()))

    @property
    def text(self) -> str:
        return self.query_one(TextArea).text

    def set_recipients(self, recipients: int | None) -> None:
        self.recipients = recipients
        self._update()

    @on(TextArea.Changed)
    def _changed(self) -> None:
        self._update()

    def _update(self) -> None:
        text = self.text
        final = self.finalize(text)
        self.analysis = analyse(final)
        self.query_one("#analysis", Static).update(
            describe(
                self.t,
                self.analysis,
                self.recipients,
                self.price_per_segment,
                stop_added=final != text,
            )
        )

    def replace_text(self, text: str) -> None:
        """Start again from this text (a template filled in anew)."""
        self.query_one(TextArea).load_text(text)
        self._place_cursor()
        self._update()

    def apply_gsm7(self) -> bool:
        """Replace the text by its GSM-7 version; False when there is none."""
        suggestion = analyse(self.text).gsm7_suggestion
        if suggestion is None:
            return False
        area = self.query_one(TextArea)
        area.load_text(suggestion)
        area.move_cursor(area.document.end)
        self._update()
        return True
