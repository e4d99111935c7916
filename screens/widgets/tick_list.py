"""A SelectionList whose ticked lines read `[x]` and unticked ones `[ ]`: the shape says
it, not only the colour (Textual's own box is the same block in two colours)."""

from __future__ import annotations

from typing import TypeVar

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widgets import OptionList, SelectionList
from textual.widgets.option_list import OptionDoesNotExist

TICKED = "[x]"
UNTICKED = "[ ]"

ValueT = TypeVar("ValueT")


class TickList(SelectionList[ValueT]):
    def render_line(self, y: int) -> Strip:
        # The option's own line, then the box; the option's index stays on the box for
        # the mouse, as SelectionList does.
        line = OptionList.render_line(self, y)
        index = self.scroll_offset.y + y
        try:
            selection = self.get_option_at_index(index)
        except OptionDoesNotExist:
            return line
        ticked = selection.value in self._selected
        base = next(iter(line)).style if line.cell_length else None
        mark = Style(bold=True, color="green") if ticked else Style(dim=True)
        style = (base or Style()) + mark + Style(meta={"option": index})
        return Strip([Segment(TICKED if ticked else UNTICKED, style), Segment(" ", base), *line])


# The "everyone" line of an audience picker; quartiers are the other values.
EVERYONE = "\x00all"


def everyone_or_quartiers(picker: SelectionList[str], before: set[str]) -> set[str]:
    """ "Tous les habitants" and quartiers exclude each other: the last ticked wins.
    Unticks what lost and returns what is ticked now."""
    now = set(picker.selected)
    added = now - before
    if EVERYONE in added and len(now) > 1:
        with picker.prevent(SelectionList.SelectedChanged):
            for value in now - {EVERYONE}:
                picker.deselect(value)
        return {EVERYONE}
    if added and EVERYONE in now:
        with picker.prevent(SelectionList.SelectedChanged):
            picker.deselect(EVERYONE)
        now.discard(EVERYONE)
    return now
