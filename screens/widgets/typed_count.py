"""The field where the operator types a count to confirm a mass or destructive action.

The typed number is the safety, so the field is what the dialog is about: focused
when the dialog opens, drawn in a colour that stands out, and digits typed while
the focus is elsewhere in the dialog (on a button) still land in it. A reflex
Enter on an empty or wrong count is refused by the dialog, never sent."""

from __future__ import annotations

from typing import Any

from textual import events
from textual.screen import Screen
from textual.widgets import Input


class CountField(Input):
    DEFAULT_CSS = """
    CountField {
        width: 16;
        height: 3;
        padding: 0 1;
        border: tall $warning;
        background: $warning 20%;
        color: $text;
        text-style: bold;
    }
    CountField:focus {
        border: tall $warning;
        background: $warning 40%;
    }
    """

    def __init__(self, *, id: str, placeholder: str = "") -> None:
        # No select-on-focus: a digit routed here from a button is followed by the
        # next digit, which must add to it, not replace it.
        super().__init__(
            id=id,
            restrict=r"\d*",
            max_length=9,
            placeholder=placeholder,
            select_on_focus=False,
        )

    def check_consume_key(self, key: str, character: str | None) -> bool:
        # Only digits are the field's: `!` stays the dialog's key for the alert.
        return character is not None and character.isdigit()

    def matches(self, expected: int) -> bool:
        return self.value.strip() == str(expected)


def route_digit(screen: Screen[Any], event: events.Key) -> None:
    """Call from a dialog's on_key: a digit typed on a button goes into the count
    field (and never reaches the app, where digits switch modes)."""
    character = event.character
    if character is None or not character.isdigit() or len(character) != 1:
        return
    fields = screen.query(CountField)
    if not fields:
        return
    field = fields.first()
    if screen.focused is field:
        return
    event.stop()
    event.prevent_default()
    # At once, not on the next tick: an Enter typed right after the digits must reach
    # the field, not the button that had the focus.
    screen.set_focus(field)
    field.cursor_position = len(field.value)
    field.insert_text_at_cursor(character)
