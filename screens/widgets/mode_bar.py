"""The top line: the four modes with their keys, the town, the operator and role."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from screens.widgets.shell import shell

MODES = ("envois", "contacts", "consentements", "calendrier")


class ModeBar(Static):
    DEFAULT_CSS = """
    ModeBar {
        height: 1;
        background: $panel;
        color: $text;
    }
    """

    def __init__(self, current: str) -> None:
        super().__init__(id="mode-bar")
        self.current = current

    def on_mount(self) -> None:
        t = shell(self).t
        ctx = shell(self).ctx
        line = Text(no_wrap=True, overflow="ellipsis")
        for number, mode in enumerate(MODES, start=1):
            label = f" {number} {t(f'mode.{mode}')} "
            line.append(label, style="reverse bold" if mode == self.current else "")
        right = f"  {ctx.config.town.name} · {ctx.operator} ({ctx.role.name.lower()})"
        line.append(right, style="dim")
        self.update(line)
