"""One campaign: its figures live, its messages paged from the database and filtered
by state, with the provider's reason for each failure; and what the operator may do."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import ClassVar
from zoneinfo import ZoneInfo

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from console.contacts.numbers import display
from console.context import Context
from console.i18n import Translator
from console.sending.campaign_messages import MessageRow, page_messages
from console.sending.send_queue import CampaignProgress, campaign_progress
from console.sending.states import STATES, MessageState
from console.text import visible
from screens.widgets.campaign_actions import CampaignActions
from screens.widgets.campaign_summary import campaign_summary
from screens.widgets.live_poll import LivePoll
from screens.widgets.mode_bar import ModeBar
from screens.widgets.shell import shell
from screens.widgets.translate import translate_bindings

PAGE = 100
PREFETCH_MARGIN = 10
# The messages on screen are re-read this often (the figures above, every poll).
ROWS_EVERY_POLLS = 2
COLUMNS = ("number", "name", "state", "attempts", "reason", "updated")


@dataclass(frozen=True)
class Figures:
    progress: CampaignProgress | None
    # Where `window` starts in the rows loaded; None: the rows were not re-read.
    start: int
    window: list[MessageRow] | None


STATE_STYLE: dict[str, str] = {
    MessageState.DELIVERED: "green",
    MessageState.SUBMITTED: "cyan",
    MessageState.FAILED: "red",
    MessageState.REJECTED: "red",
    MessageState.UNDELIVERED: "red",
    MessageState.UNCERTAIN: "yellow",
    MessageState.SKIPPED: "dim",
    MessageState.SENDING: "bold",
}


class CampaignScreen(LivePoll[Figures], CampaignActions, Screen[None]):
    ERROR_TARGET = "#campaign-head"
    CSS_PATH = "campaign.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "binding.back", id="campaign.back"),
        Binding("f", "next_filter", "binding.filter_state", id="campaign.filter"),
        Binding("p", "pause", "binding.pause", id="campaign.pause"),
        Binding("r", "resume", "binding.resume", id="campaign.resume", show=False),
        Binding("x", "cancel_campaign", "binding.cancel_campaign", id="campaign.cancel"),
        Binding("R", "retry_failed", "binding.retry_failed", id="campaign.retry"),
        Binding("u", "resend_uncertain", "binding.resend_uncertain", id="campaign.resend"),
        Binding("m", "mark_sent", "binding.mark_sent", id="campaign.mark_sent", show=False),
    ]

    def __init__(self, campaign_id: int) -> None:
        super().__init__()
        self.ctx: Context = shell(self).ctx
        self.t: Translator = shell(self).t
        translate_bindings(self, self.t)
        self.campaign_id = campaign_id
        self.state_filter: str | None = None
        self.progress: CampaignProgress | None = None
        self.rows: list[MessageRow] = []
        self._exhausted = False
        self._cursor_row = 0
        self._fetching = False

    def compose(self) -> ComposeResult:
        yield ModeBar("envois")
        yield Static(id="campaign-head")
        yield Static(id="filter-line")
        yield DataTable(id="messages", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        t = self.t
        table = self.query_one(DataTable)
        extra = max(self.app.size.width, 80) - 80
        for key, base, share in (
            ("number", 16, 0.05),
            ("name", 14, 0.25),
            ("state", 11, 0.05),
            ("attempts", 5, 0.0),
            ("reason", 14, 0.55),
            ("updated", 6, 0.1),
        ):
            table.add_column(t(f"campaign.col.{key}"), key=key, width=base + int(extra * share))
        self._show_filter()
        self.start_polling()
        table.focus()

    def read_figures(self) -> Figures:
        """The campaign's figures every poll; its messages every other poll, and only a
        page around the cursor, however far the operator has scrolled."""
        progress = campaign_progress(self.ctx, self.campaign_id)
        if self.polls % ROWS_EVERY_POLLS:
            return Figures(progress, 0, None)
        rows = self.rows
        start = min(max(self._cursor_row - PAGE // 2, 0), len(rows))
        window = page_messages(
            self.ctx,
            self.campaign_id,
            state=self.state_filter,
            after_id=rows[start - 1].id if start else 0,
            limit=PAGE,
        )
        return Figures(progress, start, window)

    def show_figures(self, figures: Figures) -> None:
        self.progress = figures.progress
        self._show_head()
        if figures.window is not None:
            self._show_window(figures.start, figures.window)

    # Display ------------------------------------------------------------------

    def _show_head(self) -> None:
        head = self.query_one("#campaign-head", Static)
        t = self.t
        c = self.progress
        if c is None:
            head.update(Text(t("error.no_campaign", id=self.campaign_id), style="red"))
            return
        text = campaign_summary(t, self.ctx, c, self.size.width)
        head.update(text)

    def _show_filter(self) -> None:
        t = self.t
        shown = t(f"state.{self.state_filter}") if self.state_filter else t("campaign.all")
        self.query_one("#filter-line", Static).update(
            Text(t("campaign.filter", state=shown), style="dim")
        )

    def _cells(self, row: MessageRow) -> list[Text]:
        t = self.t
        local = row.updated_at.astimezone(ZoneInfo(self.ctx.config.town.timezone))
        reason = row.reason
        if reason and row.state == MessageState.SKIPPED:
            reason = t(f"skip.{reason}") if f"skip.{reason}" in t else reason
        return [
            Text(display(row.number) if row.number else "—"),
            Text(visible(row.name) or "—"),
            Text(t(f"state.{row.state}"), style=STATE_STYLE.get(row.state, "")),
            Text(str(row.attempts)),
            Text(visible(reason)),
            Text(local.strftime("%Hh%M")),
        ]

    def _show_window(self, start: int, window: list[MessageRow]) -> None:
        table = self.query_one(DataTable)
        before = self.rows[start : start + len(window)]
        if [r.id for r in window] == [r.id for r in before] and (
            len(window) == PAGE or start + len(window) == len(self.rows)
        ):
            for old, new in zip(before, window, strict=True):
                if old != new:
                    for key, cell in zip(COLUMNS, self._cells(new), strict=True):
                        table.update_cell(str(new.id), key, cell)
            self.rows[start : start + len(window)] = window
            return
        # Messages came into or left the window (a state filter): splice it in.
        tail = [] if len(window) < PAGE else [r for r in self.rows[start:] if r.id > window[-1].id]
        rows = self.rows[:start] + window + tail
        keep = self._selected_message()
        table.clear()
        for row in rows:
            table.add_row(*self._cells(row), key=str(row.id))
        ids = [r.id for r in rows]
        if keep in ids:
            table.move_cursor(row=ids.index(keep))
        self.rows = rows
        self._exhausted = len(window) < PAGE

    def _selected_message(self) -> int | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return int(row_key.value) if row_key.value is not None else None

    @on(DataTable.RowHighlighted)
    def _prefetch(self, event: DataTable.RowHighlighted) -> None:
        self._cursor_row = event.cursor_row
        if self._fetching or self._exhausted or event.cursor_row < len(self.rows) - PREFETCH_MARGIN:
            return
        self._fetching = True
        after = self.rows[-1].id if self.rows else 0
        self.run_worker(self._fetch_more(after, self.state_filter), group="prefetch")

    async def _fetch_more(self, after: int, state: str | None) -> None:
        """The next page, read in a thread (never on the UI thread), appended unless
        the rows changed meanwhile (a filter, a poll's splice)."""
        try:
            more = await asyncio.to_thread(
                page_messages, self.ctx, self.campaign_id, state=state, after_id=after, limit=PAGE
            )
        except Exception:  # the poll says when the database is gone
            return
        finally:
            self._fetching = False
        if state != self.state_filter or (self.rows[-1].id if self.rows else 0) != after:
            return
        table = self.query_one(DataTable)
        for row in more:
            table.add_row(*self._cells(row), key=str(row.id))
        self.rows = self.rows + more
        self._exhausted = len(more) < PAGE

    # Actions -----------------------------------------------------------------

    def selected_campaign(self) -> int | None:
        return self.campaign_id

    def after_campaign_action(self) -> None:
        self.polls = 0  # re-read the rows too
        self.poll_soon()

    def action_back(self) -> None:
        self.dismiss()

    def action_next_filter(self) -> None:
        """Cycle: all, then each state that has messages, in ledger order."""
        counts = self.progress.counts if self.progress else {}
        present = [s for s in STATES if counts.get(s)]
        cycle: list[str | None] = [None, *present]
        position = cycle.index(self.state_filter) if self.state_filter in cycle else 0
        self.state_filter = cycle[(position + 1) % len(cycle)]
        self._show_filter()
        self.rows = []
        self._cursor_row = 0
        self.query_one(DataTable).clear()
        self.after_campaign_action()
