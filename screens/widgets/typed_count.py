"""The field where the operator types a count to confirm a mass or destructive action.

The typed number is the safety, so the field is what the dialog is about: focused
when the dialog opens, framed in a colour that stands out, and digits typed while
the focus is elsewhere in the dialog (on a button) still land in it (DIGIT_KEYS). A reflex
Enter on an empty or wrong count is refused by the dialog, never sent."""

from __future__ import annotations

from typing import Any

from textual.binding import Binding, BindingType
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


# Digits typed while the focus is on a button go into the count field. Priority
# bindings, so the App moves the focus before it hands the next key on: digits and
# an Enter typed fast (or pasted) after them all reach the field, none the button.
# The field itself consumes digits, so these never fire while it has the focus.
DIGIT_KEYS: list[BindingType] = [
    Binding(digit, f"count_digit('{digit}')", show=False, priority=True) for digit in "0123456789"
]


def type_digit(screen: Screen[Any], digit: str) -> None:
    """What a dialog's action_count_digit does: the digit at the end of its field."""
    fields = screen.query(CountField)
    if not fields:
        return
    field = fields.first()
    screen.set_focus(field)
    field.cursor_position = len(field.value)
    field.insert_text_at_cursor(digit)
