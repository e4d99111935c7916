"""What screens and widgets may ask of the Tocsin App, typed, without importing it
(screens.app imports every screen)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from textual.dom import DOMNode

from console.context import Context
from console.i18n import Translator


@runtime_checkable
class TocsinShell(Protocol):
    ctx: Context
    t: Translator

    def show_live(self, campaign_id: int) -> None: ...

    def action_start_worker(self) -> None: ...

    def open_alert(self) -> None: ...


def shell(node: DOMNode) -> TocsinShell:
    """The running Tocsin App of a screen or widget."""
    app = node.app
    if not isinstance(app, TocsinShell):
        raise TypeError(f"{type(app).__name__} is not the Tocsin App")
    return app
