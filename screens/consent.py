"""Consentements (mode 3): the consent audit.

Five views on one table, each on its key: the coverage matrix (`c`; `enter` on a
topic shows it per quartier, on a figure the residents behind it), the journal
(`j`; `/` filters it, `enter` opens the resident's history), the replies to review
(`r`; `enter` classifies, operators only), the rented lists (`l`) and the checks
(`v`). `t` shows the state on a past date, `p` writes the report of what is shown.
Every read runs in a thread; residents' text is shown as text, never markup.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Checkbox, DataTable, Footer, Input, Static

from console.consent import checks, lists, retention, review
from console.consent.coverage import STATES, Coverage, Resident, coverage, coverage_at, residents
from console.consent.journal import (
    FilterError,
    History,
    JournalFilter,
    JournalLine,
    journal,
    parse_day,
    parse_filter,
    resident_history,
)
from console.contacts.numbers import display
from console.context import Context
from console.roles import PermissionDenied, Role
from console.text import visible
from screens.widgets.modal import TocsinModal
from screens.widgets.mode_bar import ModeBar
from screens.widgets.shell import shell
from screens.widgets.translate import translate_bindings

VIEWS = ("coverage", "journal", "review", "lists", "health")
PAGE = 100
PREFETCH_MARGIN = 10


def _local(ctx: Context, when: datetime, fmt: str = "%d/%m/%Y %H:%M") -> str:
    return when.astimezone(ZoneInfo(ctx.config.town.timezone)).strftime(fmt)


def _cell(text: str, style: str = "") -> Text:
    """A resident's or operator's text: shown as typed, never as markup or escapes."""
    return Text(visible(text), style=style, no_wrap=True, overflow="ellipsis")


def _num(value: int, style: str = "") -> Text:
    return Text(f"{value:,}".replace(",", " "), style=style, justify="right")


class ConsentementsScreen(Screen[None]):
    CSS_PATH = "consent.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "view('coverage')", "binding.cons_coverage", id="consent.coverage"),
        Binding("j", "view('journal')", "binding.cons_journal", id="consent.journal"),
        Binding("r", "view('review')", "binding.cons_review", id="consent.review"),
        Binding("l", "view('lists')", "binding.cons_lists", id="consent.lists"),
        Binding("v", "view('health')", "binding.cons_health", id="consent.health"),
        Binding("t", "point_in_time", "binding.cons_at", id="consent.at"),
        Binding("slash", "filter", "binding.filters", id="consent.filter"),
        Binding("p", "report", "binding.cons_report", id="consent.report"),
        Binding("escape", "back", "binding.back", id="consent.back"),
        Binding("ctrl+r", "reload", "binding.reload", id="consent.reload", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.ctx: Context = shell(self).ctx
        self.t = shell(self).t
        translate_bindings(self, self.t)
        self.view = "coverage"
        self.at: datetime | None = None
        self.zone_topic: str | None = None  # coverage per quartier of this topic
        self.journal_filter = JournalFilter()
        self._journal_last: int | None = None
        self._journal_done = False
        self._coverage_data: list[Coverage] = []
        self._rows: list[Any] = []

    def compose(self) -> ComposeResult:
        yield ModeBar("consentements")
        yield Static(id="cons-tabs")
        yield Static(id="cons-head")
        yield DataTable(id="cons-table", cursor_type="cell", zebra_stripes=True)
        yield Static(id="cons-status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self.load()

    # Views -------------------------------------------------------------------

    def action_view(self, view: str) -> None:
        self.view = view
        self.zone_topic = None
        self.load()

    def action_back(self) -> None:
        if self.zone_topic is not None:
            self.zone_topic = None
            self.load()
        elif self.view == "journal" and self.journal_filter != JournalFilter():
            self.journal_filter = JournalFilter()
            self.load()
        elif self.at is not None:
            self.at = None
            self.load()

    def action_reload(self) -> None:
        self.load()

    def _tabs(self, pending: int) -> None:
        t = self.t
        line = Text(no_wrap=True, overflow="ellipsis")
        keys = {"coverage": "c", "journal": "j", "review": "r", "lists": "l", "health": "v"}
        for view in VIEWS:
            label = t(f"cons.tab.{view}", count=pending)
            style = "reverse bold" if view == self.view else ""
            line.append(f" {keys[view]} {label} ", style=style)
        self.query_one("#cons-tabs", Static).update(line)

    def _head(self, extra: str = "") -> None:
        t = self.t
        when = (
            t("cons.at", date=_local(self.ctx, self.at, "%d/%m/%Y"))
            if self.at is not None
            else t("cons.now")
        )
        text = Text(when, style="bold" if self.at is None else "bold yellow")
        if extra:
            text.append("  ·  ")
            text.append(extra)
        self.query_one("#cons-head", Static).update(text)

    def _status(self, text: str | Text) -> None:
        self.query_one("#cons-status", Static).update(
            text if isinstance(text, Text) else Text(text)
        )

    @work(exclusive=True, group="consent-load")
    async def load(self) -> None:
        """Read the current view in a thread, then draw it."""
        view, at, zone_topic = self.view, self.at, self.zone_topic
        self._status(self.t("cons.loading"))
        try:
            pending, data = await asyncio.to_thread(self._read, view, at, zone_topic)
        except Exception as exc:  # shown in place; the console never crashes on a read
            self._status(Text(self.t.error(exc), style="red"))
            return
        if (view, at, zone_topic) != (self.view, self.at, self.zone_topic):
            return
        self._tabs(pending)
        table = self.query_one(DataTable)
        table.clear(columns=True)
        self._rows = []
        getattr(self, f"_draw_{view}")(table, data)

    def _read(self, view: str, at: datetime | None, zone_topic: str | None) -> tuple[int, Any]:
        pending = review.pending_count(self.ctx)
        if view == "coverage":
            if at is not None:
                return pending, [coverage_at(self.ctx, at)]
            return pending, coverage(self.ctx, by_zone=zone_topic is not None)
        if view == "journal":
            return pending, self._journal_page(None)
        if view == "review":
            return pending, review.replies(self.ctx, limit=500)
        if view == "lists":
            return pending, lists.list_summaries(self.ctx)
        return pending, self._read_health(pending)

    # Coverage ----------------------------------------------------------------

    def _draw_coverage(self, table: DataTable[Any], data: list[Coverage]) -> None:
        t = self.t
        self._coverage_data = data
        table.cursor_type = "cell"
        # 80 columns: 11 + 6 x 9 of text, 14 of cell padding.
        width = max(self.app.size.width, 80)
        first = 11 + (width - 80) // 4
        num = 9 + (width - 80) // 12
        by_zone = self.zone_topic is not None
        label = t("cov.zone") if by_zone else t("cov.topic")
        table.add_column(label, key="label", width=first)
        for state in STATES:
            table.add_column(t(f"cov.short.{state}"), key=state, width=num)
        table.add_column(t("cov.reachable"), key="reach", width=num)
        if by_zone:
            assert self.zone_topic is not None
            for cov in data:
                (row,) = [c for c in cov.topics if c.topic == self.zone_topic]
                self._rows.append((cov.zone, row))
                name = visible(cov.zone) or t("cov.no_zone")
                table.add_row(_cell(name), *self._figures(row), key=f"z:{cov.zone}")
            topic_label = self.ctx.config.topics[self.zone_topic].label
            self._head(topic_label)
        else:
            for row in data[0].topics:
                self._rows.append((None, row))
                name = self.ctx.config.topics[row.topic].label
                table.add_row(_cell(name, "bold"), *self._figures(row), key=f"t:{row.topic}")
            self._head(t("cov.town"))
        total = data[0].topics[0].total if data and data[0].topics else 0
        if by_zone:
            total = sum(c.topics[0].total for c in data if c.topics)
        self._status(f"{t('cov.total')} : {total}")

    def _figures(self, row: Any) -> list[Text]:
        cells = [
            _num(row.counts[s], "red" if s in ("withdrawn", "stop") and row.counts[s] else "")
            for s in STATES
        ]
        share = Text(f"{row.share:.0%}", justify="right", style="bold green")
        return [*cells, share]

    def _coverage_enter(self) -> None:
        table = self.query_one(DataTable)
        if not self._rows:
            return
        row_index, column = table.cursor_coordinate.row, table.cursor_coordinate.column
        zone, cover = self._rows[row_index]
        if column == 0 or column > len(STATES):
            if self.zone_topic is None and self.at is None:
                self.zone_topic = cover.topic
                self.load()
            return
        if self.at is not None:
            return  # figures of a past date are replayed counts, not today's residents
        state = STATES[column - 1]
        self.app.push_screen(ResidentsScreen(cover.topic, state, zone, self._after_history_change))

    def _after_history_change(self) -> None:
        self.load()

    # Journal -----------------------------------------------------------------

    def _journal_page(self, before: int | None) -> list[JournalLine]:
        return journal(self.ctx, self.journal_filter, before_seq=before, limit=PAGE)

    def _describe_filter(self) -> str:
        t = self.t
        f = self.journal_filter
        parts = []
        if f.topic:
            parts.append(self.ctx.config.topics[f.topic].label)
        if f.source:
            parts.append(t(f"source.{f.source}"))
        if f.since:
            parts.append("≥ " + _local(self.ctx, f.since, "%d/%m/%Y"))
        if f.until:
            parts.append("< " + _local(self.ctx, f.until, "%d/%m/%Y"))
        return t("cons.filter", what=", ".join(parts) or t("cons.filter.none"))

    def _draw_journal(self, table: DataTable[Any], data: list[JournalLine]) -> None:
        t = self.t
        table.cursor_type = "row"
        extra = max(self.app.size.width, 80) - 80
        for label, key, base, share in (
            # 80 columns: 64 of text, 14 of cell padding, 2 of scrollbar.
            (t("cons.col.date"), "date", 14, 0.0),
            (t("cons.col.resident"), "who", 11, 0.25),
            (t("cons.col.topic"), "topic", 8, 0.05),
            (t("cons.col.action"), "action", 8, 0.0),
            (t("cons.col.source"), "source", 9, 0.2),
            (t("cons.col.proof"), "proof", 7, 0.25),
            (t("cons.col.operator"), "op", 7, 0.25),
        ):
            table.add_column(label, key=key, width=base + int(extra * share))
        self._journal_done = len(data) < PAGE
        self._append_journal(table, data)
        self._head(self._describe_filter())
        self._journal_status()

    def _append_journal(self, table: DataTable[Any], data: list[JournalLine]) -> None:
        t = self.t
        for line in data:
            self._rows.append(line)
            name = "—" if line.erased else (line.name or f"#{line.contact_id}")
            cells = [
                Text(_local(self.ctx, line.occurred_at, "%d/%m/%y %H:%M")),
                _cell(name),
                _cell(self.ctx.config.topics[line.topic].label)
                if line.topic in self.ctx.config.topics
                else _cell(line.topic),
                Text(
                    t(f"consent.{line.action}"),
                    style="green" if line.action == "grant" else "red",
                ),
                _cell(t(f"source.{line.source}")),
                _cell(line.proof_ref),
                _cell(line.operator),
            ]
            table.add_row(*cells, key=f"s:{line.seq}")
        if data:
            self._journal_last = data[-1].seq

    @work(exclusive=True, group="consent-more")
    async def _more_journal(self) -> None:
        if self._journal_done or self._journal_last is None:
            return
        last = self._journal_last
        data = await asyncio.to_thread(self._journal_page, last)
        if self.view != "journal" or self._journal_last != last:
            return
        self._journal_done = len(data) < PAGE
        self._append_journal(self.query_one(DataTable), data)
        self._journal_status()

    def _journal_status(self) -> None:
        more = "cons.journal_rows" if self._journal_done else "cons.journal_rows_more"
        self._status(self.t(more, count=len(self._rows)))

    @on(DataTable.RowHighlighted)
    def _prefetch(self, event: DataTable.RowHighlighted) -> None:
        if self.view == "journal" and event.cursor_row >= len(self._rows) - PREFETCH_MARGIN:
            self._more_journal()

    def action_filter(self) -> None:
        if self.view != "journal":
            self.action_view("journal")
        self.app.push_screen(
            AskScreen(self.t("cons.filter_prompt"), self._filter_text()), self._filter_given
        )

    def _filter_text(self) -> str:
        f = self.journal_filter
        parts = []
        if f.topic:
            parts.append(f"thème={f.topic}")
        if f.source:
            parts.append(f"origine={f.source}")
        if f.since:
            parts.append("du=" + _local(self.ctx, f.since, "%d/%m/%Y"))
        return " ".join(parts)

    def _filter_given(self, text: str | None) -> None:
        if text is None:
            return
        try:
            self.journal_filter = parse_filter(self.ctx, text)
        except FilterError as exc:
            self.notify(self.t("cons.filter_bad", text=str(exc)), severity="error", markup=False)
            return
        self.view = "journal"
        self.load()

    # Review ------------------------------------------------------------------

    def _draw_review(self, table: DataTable[Any], data: list[review.Reply]) -> None:
        t = self.t
        table.cursor_type = "row"
        extra = max(self.app.size.width, 80) - 80
        table.add_column(t("cons.col.received"), key="at", width=16)
        table.add_column(t("cons.col.resident"), key="who", width=18 + extra // 4)
        table.add_column(t("cons.col.text"), key="text", width=36 + extra * 3 // 4)
        for reply in data:
            self._rows.append(reply)
            who = reply.name or (
                f"#{reply.contact_id}" if reply.contact_id else display(reply.number)
            )
            table.add_row(
                Text(_local(self.ctx, reply.received_at)),
                _cell(who),
                _cell(reply.text),
                key=f"r:{reply.id}",
            )
        self._head()
        self._status(
            t("cons.review.empty") if not data else t("cons.review.count", count=len(data))
        )

    def _review_enter(self) -> None:
        if not self._rows:
            return
        reply = self._rows[self.query_one(DataTable).cursor_coordinate.row]
        if self.ctx.role < Role.OPERATOR:
            self.notify(self.t("cons.review.viewer"), severity="warning")
            return
        self.app.push_screen(ClassifyScreen(reply), self._after_classify)

    def _after_classify(self, _done: bool | None) -> None:
        self.load()

    # Lists -------------------------------------------------------------------

    def _draw_lists(self, table: DataTable[Any], data: list[lists.ListSummary]) -> None:
        t = self.t
        table.cursor_type = "row"
        extra = max(self.app.size.width, 80) - 80
        for label, key, width in (
            (t("cons.col.list"), "name", 12 + extra // 4),
            (t("cons.col.provider"), "provider", 12 + extra // 4),
            (t("cons.col.topic"), "topics", 12 + extra // 4),
            (t("cons.col.count"), "count", 9),
            (t("cons.col.in_force"), "in_force", 9),
            (t("cons.col.expires"), "expires", 10 + extra // 4),
        ):
            table.add_column(label, key=key, width=width)
        for summary in data:
            self._rows.append(summary)
            row = summary.row
            table.add_row(
                _cell(row.name),
                _cell(row.provider),
                _cell(row.topics.replace(",", ", ")),
                _num(summary.residents),
                _num(summary.in_force),
                Text(
                    _local(self.ctx, summary.expires_at, "%d/%m/%Y"),
                    style="red" if summary.expired else "",
                ),
                key=f"l:{row.name}",
            )
        self._head()
        self._status(t("cons.lists.count", count=len(data)))

    # Checks ------------------------------------------------------------------

    def _read_health(self, pending: int) -> list[Text]:
        t = self.t
        lines = []
        for state in checks.chain_states(self.ctx):
            if state.broken_at is None:
                lines.append(
                    Text(
                        "✓ " + t("cons.health.chain_ok", chain=state.chain, count=state.verified),
                        style="green",
                    )
                )
            else:
                lines.append(
                    Text(
                        "✗ "
                        + t(
                            "cons.health.chain_broken",
                            chain=state.chain,
                            seq=state.broken_at,
                            what=visible(state.what),
                        ),
                        style="bold red",
                    )
                )
        due = retention.summary(self.ctx)
        expired = sum(1 for s in lists.list_summaries(self.ctx) if s.expired and s.in_force)
        for key, values, bad in (
            ("cons.health.no_proof", {"count": checks.without_proof(self.ctx)}, None),
            ("cons.health.old", {"count": checks.older_than_retention(self.ctx)}, None),
            ("cons.health.retention", {"now": due.due_now, "month": due.due_this_month}, None),
            ("cons.health.review", {"count": pending}, None),
            ("cons.health.lists_expired", {"count": expired}, None),
        ):
            del bad
            figure = next(iter(values.values()))
            lines.append(
                Text(
                    ("• " if figure else "✓ ") + t(key, **values), style="yellow" if figure else ""
                )
            )
        return lines

    def _draw_health(self, table: DataTable[Any], data: list[Text]) -> None:
        table.cursor_type = "row"
        table.add_column(
            self.t("cons.tab.health"), key="line", width=max(self.app.size.width, 80) - 4
        )
        for index, line in enumerate(data):
            table.add_row(line, key=f"h:{index}")
        self._head()
        self._status("")

    # Enter, point in time, reports --------------------------------------------

    @on(DataTable.CellSelected)
    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.CellSelected | DataTable.RowSelected) -> None:
        event.stop()
        if self.view == "coverage":
            self._coverage_enter()
        elif self.view == "journal" and self._rows:
            line = self._rows[self.query_one(DataTable).cursor_coordinate.row]
            if not line.erased:
                self.app.push_screen(HistoryScreen(line.contact_id))
        elif self.view == "review":
            self._review_enter()

    def action_point_in_time(self) -> None:
        current = _local(self.ctx, self.at, "%d/%m/%Y") if self.at else ""
        self.app.push_screen(AskScreen(self.t("cons.at_prompt"), current), self._at_given)

    def _at_given(self, text: str | None) -> None:
        if text is None:
            return
        if not text.strip():
            self.at = None
        else:
            try:
                # The state "on" a day: everything recorded by its end.
                from datetime import timedelta

                day = parse_day(text, self.ctx.config.town.timezone)
            except FilterError:
                self.notify(self.t("cons.at_bad", text=text), severity="error", markup=False)
                return
            self.at = min(day + timedelta(days=1, microseconds=-1), self.ctx.clock.now())
        self.view, self.zone_topic = "coverage", None
        self.load()

    def action_report(self) -> None:
        from console.consent.reports import write_register_pdf, write_withdrawals_csv

        now = self.ctx.clock.now()
        stamp = _local(self.ctx, now, "%Y%m%d-%H%M")
        if self.view == "coverage" and self._rows:
            _zone, cover = self._rows[self.query_one(DataTable).cursor_coordinate.row]
            topic, at = cover.topic, self.at
            path = Path.cwd() / f"registre-{topic}-{stamp}.pdf"
            self._write_report(lambda: write_register_pdf(self.ctx, path, topic, at), path)
        elif self.view == "journal":
            since = self.journal_filter.since or datetime.min.replace(tzinfo=now.tzinfo)
            path = Path.cwd() / f"retraits-{stamp}.csv"

            def withdrawals() -> int:
                with path.open("w", encoding="utf-8-sig", newline="") as out:
                    return write_withdrawals_csv(self.ctx, out, since)

            self._write_report(withdrawals, path)

    @work(group="consent-report")
    async def _write_report(self, write: Callable[[], object], path: Path) -> None:
        try:
            await asyncio.to_thread(write)
        except Exception as exc:  # a full disk, a broken chain head: said, never a crash
            self.notify(
                self.t("cons.report_failed", error=self.t.error(exc)),
                severity="error",
                markup=False,
            )
            return
        self.notify(self.t("cons.report_written", path=str(path)), markup=False)


class ResidentsScreen(Screen[None]):
    """The residents behind one figure of the matrix, a page at a time."""

    CSS_PATH = "consent.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "binding.back", id="consent_residents.back"),
        Binding("h", "history", "binding.cons_history", id="consent_residents.history"),
    ]

    def __init__(
        self, topic: str, state: str, zone: str | None, on_change: Callable[[], None]
    ) -> None:
        super().__init__()
        self.ctx: Context = shell(self).ctx
        self.t = shell(self).t
        translate_bindings(self, self.t)
        self.topic, self.state, self.zone = topic, state, zone
        self.on_change = on_change
        self._rows: list[Resident] = []
        self._done = False

    def compose(self) -> ComposeResult:
        yield ModeBar("consentements")
        yield Static(id="cons-head")
        yield DataTable(id="cons-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="cons-status")
        yield Footer()

    def on_mount(self) -> None:
        t = self.t
        table = self.query_one(DataTable)
        extra = max(self.app.size.width, 80) - 80
        table.add_column(t("cons.col.resident"), key="name", width=30 + extra // 2)
        table.add_column(t("cons.col.number"), key="number", width=16)
        table.add_column(t("cons.col.zone"), key="zone", width=22 + extra // 2)
        table.focus()
        self.more()

    def _title(self) -> None:
        t = self.t
        zone = t("cov.town") if self.zone is None else (visible(self.zone) or t("cov.no_zone"))
        text = t(
            "cons.residents",
            state=t(f"cov.state.{self.state}"),
            topic=self.ctx.config.topics[self.topic].label,
            zone=zone,
            count=len(self._rows),
        )
        self.query_one("#cons-head", Static).update(Text(text, style="bold"))

    @work(exclusive=True, group="residents")
    async def more(self) -> None:
        if self._done:
            return
        after = self._rows[-1].id if self._rows else 0
        page = await asyncio.to_thread(
            residents, self.ctx, self.topic, self.state, zone=self.zone, after_id=after, limit=PAGE
        )
        self._done = len(page) < PAGE
        table = self.query_one(DataTable)
        for resident in page:
            self._rows.append(resident)
            table.add_row(
                _cell(resident.name or f"#{resident.id}"),
                Text(display(resident.number)),
                _cell(resident.zone),
                key=str(resident.id),
            )
        self._title()
        self.query_one("#cons-status", Static).update(
            Text("" if self._done else self.t("cons.more"), style="dim")
        )

    @on(DataTable.RowHighlighted)
    def _prefetch(self, event: DataTable.RowHighlighted) -> None:
        if not self._done and event.cursor_row >= len(self._rows) - PREFETCH_MARGIN:
            self.more()

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_history()

    def action_history(self) -> None:
        if self._rows:
            row = self.query_one(DataTable).cursor_coordinate.row
            self.app.push_screen(HistoryScreen(self._rows[row].id))

    def action_back(self) -> None:
        self.app.pop_screen()


class HistoryScreen(Screen[None]):
    """One resident: every decision per topic with its proof, the messages sent to
    them with their states, the SMS they sent. `p` writes their access file."""

    CSS_PATH = "consent.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "binding.back", id="consent_history.back"),
        Binding("p", "report", "binding.cons_access", id="consent_history.report"),
    ]

    def __init__(self, contact_id: int) -> None:
        super().__init__()
        self.ctx: Context = shell(self).ctx
        self.t = shell(self).t
        translate_bindings(self, self.t)
        self.contact_id = contact_id

    def compose(self) -> ComposeResult:
        yield ModeBar("consentements")
        yield Static(id="cons-head")
        yield DataTable(id="cons-table", cursor_type="row", zebra_stripes=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self.load()

    @work(exclusive=True)
    async def load(self) -> None:
        try:
            history = await asyncio.to_thread(resident_history, self.ctx, self.contact_id)
        except Exception as exc:  # an erased or missing contact: said in place
            self.query_one("#cons-head", Static).update(Text(self.t.error(exc), style="red"))
            return
        self._draw(history)

    def _draw(self, history: History) -> None:
        t = self.t
        contact = history.contact
        head = Text(t("cons.history", name=visible(contact.name) or "—", id=self.contact_id))
        head.stylize("bold")
        head.append(f"  {display(contact.number)}  {visible(contact.zone)}")
        self.query_one("#cons-head", Static).update(head)
        table = self.query_one(DataTable)
        table.clear(columns=True)
        extra = max(self.app.size.width, 80) - 80
        table.add_column(t("cons.col.date"), key="date", width=16)
        table.add_column(t("cons.col.topic"), key="topic", width=10 + extra // 6)
        table.add_column(t("cons.col.state"), key="state", width=12 + extra // 6)
        table.add_column(t("cons.col.proof"), key="what", width=30 + extra * 2 // 3)

        def section(title: str, count: int) -> None:
            table.add_row(Text(title, style="bold underline"), Text(""), Text(""), Text(""))
            if not count:
                table.add_row(
                    Text(t("cons.history.none"), style="dim"), Text(""), Text(""), Text("")
                )

        topics = self.ctx.config.topics
        section(t("cons.history.decisions"), len(history.decisions))
        for line in sorted(history.decisions, key=lambda d: (d.topic, d.seq)):
            table.add_row(
                Text(_local(self.ctx, line.occurred_at)),
                _cell(topics[line.topic].label if line.topic in topics else line.topic),
                Text(
                    t(f"consent.{line.action}"), style="green" if line.action == "grant" else "red"
                ),
                _cell(f"{t(f'source.{line.source}')} · {line.proof_ref or '—'} · {line.operator}"),
            )
        section(t("cons.history.messages"), len(history.messages))
        for message in history.messages:
            table.add_row(
                Text(_local(self.ctx, message.created_at)),
                _cell(topics[message.topic].label if message.topic in topics else message.topic),
                Text(t(f"state.{message.state}")),
                _cell(message.text),
            )
        section(t("cons.history.inbound"), len(history.inbound))
        for inbound in history.inbound:
            table.add_row(
                Text(_local(self.ctx, inbound.received_at)),
                Text(""),
                Text(t(f"cons.kind.{inbound.kind}")),
                _cell(inbound.text),
            )

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_report(self) -> None:
        from console.consent.reports import write_access_pdf

        stamp = _local(self.ctx, self.ctx.clock.now(), "%Y%m%d-%H%M")
        path = Path.cwd() / f"acces-{self.contact_id}-{stamp}.pdf"
        self._write(path, write_access_pdf)

    @work(group="consent-report")
    async def _write(self, path: Path, write: Callable[[Context, Path, int], None]) -> None:
        try:
            await asyncio.to_thread(write, self.ctx, path, self.contact_id)
        except Exception as exc:  # said, never a crash
            self.notify(
                self.t("cons.report_failed", error=self.t.error(exc)),
                severity="error",
                markup=False,
            )
            return
        self.notify(self.t("cons.report_written", path=str(path)), markup=False)


class AskScreen(TocsinModal[str | None]):
    """One line to type (a date, a filter); enter gives it, esc cancels."""

    CSS_PATH = "consent.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "binding.back", id="consent_ask.cancel"),
    ]

    def __init__(self, prompt: str, value: str = "") -> None:
        super().__init__()
        self.prompt, self.value = prompt, value

    def compose(self) -> ComposeResult:
        with Vertical(id="ask-box"):
            yield Static(Text(self.prompt, style="bold"))
            yield Input(value=self.value, id="ask-input", compact=True, max_length=200)
            yield Static(id="form-error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)


class ClassifyScreen(TocsinModal[bool]):
    """An operator decides what an unclear reply withdraws: some topics, every topic
    (a STOP: the number goes on the suppression list), or nothing."""

    CANCEL_RESULT = False
    CSS_PATH = "consent.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "binding.back", id="consent_classify.cancel"),
    ]

    def __init__(self, reply: review.Reply) -> None:
        super().__init__()
        self.reply = reply

    def compose(self) -> ComposeResult:
        t = self.t
        with Vertical(id="ask-box"):
            yield Static(
                Text(t("cons.review.prompt", text=visible(self.reply.text)), style="bold"),
                id="classify-title",
            )
            for key, topic in self.ctx.config.topics.items():
                yield Checkbox(topic.label, id=f"topic-{key}", compact=True)
            yield Static(id="form-error")
            with Horizontal(id="form-buttons"):
                yield Button(t("form.cancel"), id="cancel", compact=True)
                yield Button(t("cons.review.nothing"), id="nothing", compact=True)
                yield Button(t("cons.review.all"), id="all", variant="error", compact=True)
                yield Button(t("consent.withdraw"), id="withdraw", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one(Checkbox).focus()

    @on(Button.Pressed, "#nothing")
    def _nothing(self) -> None:
        self._classify([])

    @on(Button.Pressed, "#all")
    def _all(self) -> None:
        self._classify(list(self.ctx.config.topics))

    @on(Button.Pressed, "#withdraw")
    def _withdraw(self) -> None:
        chosen = [
            key for key in self.ctx.config.topics if self.query_one(f"#topic-{key}", Checkbox).value
        ]
        if not chosen:
            self.show_error(self.t("cons.review.prompt", text=visible(self.reply.text)))
            return
        self._classify(chosen)

    @work(exclusive=True, group="classify")
    async def _classify(self, topics: list[str]) -> None:
        """The write runs in a thread; the dialog stays until it is done or refused."""
        try:
            await asyncio.to_thread(review.classify, self.ctx, self.reply.id, topics)
        except (review.ReviewError, PermissionDenied) as exc:
            self.show_error(exc)
            return
        labels = ", ".join(self.ctx.config.topics[k].label for k in topics)
        self.notify(
            self.t(
                "cons.review.done", id=self.reply.id, what=labels or self.t("cons.review.nothing")
            ),
            markup=False,
        )
        self.dismiss(True)
