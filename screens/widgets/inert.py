"""Which of the App's keys do nothing while an alert step or a dialog is on top.

While a form, an alert step or a typed-count dialog is open, the App's single-key
actions (modes, `q`, `:`, `!`) are inert: what that screen asks the operator to type
is exactly what works. The App refuses them (TocsinApp.check_action) and the help
leaves them out."""

from __future__ import annotations

from typing import Any

from textual.screen import Screen

from screens.widgets.alert_step import AlertStep

# The App's actions single keys (and the palette) start. ctrl+q stays everywhere: it
# asks first (TocsinApp.action_quit).
INERT_WHILE_TYPING = frozenset({"switch_mode", "leave", "emergency", "command_palette"})


def keys_inert_on(screen: Screen[Any]) -> bool:
    """An alert step or a dialog: its own keys are the only ones that work."""
    return isinstance(screen, AlertStep) or screen.is_modal
