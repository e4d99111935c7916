"""The modes not built yet say so plainly instead of showing an empty screen."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Center, Middle
from textual.screen import Screen
from textual.widgets import Footer, Static

from screens.widgets.mode_bar import ModeBar
from screens.widgets.shell import shell


class PlaceholderScreen(Screen[None]):
    MODE = ""
    DEFAULT_CSS = """
    PlaceholderScreen #placeholder {
        width: 60;
        border: round $primary;
        padding: 1 2;
    }
    """

    def compose(self) -> ComposeResult:
        t = shell(self).t
        yield ModeBar(self.MODE)
        with Middle(), Center():
            yield Static(
                f"[b]{t('placeholder.title', mode=t(f'mode.{self.MODE}'))}[/b]\n\n"
                + t("placeholder.body"),
                id="placeholder",
                markup=True,
            )
        yield Footer()


class EnvoisScreen(PlaceholderScreen):
    MODE = "envois"


class ConsentementsScreen(PlaceholderScreen):
    MODE = "consentements"


class CalendrierScreen(PlaceholderScreen):
    MODE = "calendrier"
