"""Envois (mode 1): the live send queue. Polls the database twice a second and updates
the cells in place; two consoles watching the same campaign read the same rows."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Sparkline, Static

from console.context import Context
from console.i18n import Translator
from console.sending.figures import bar, duration, percent, rate
from console.sending.send_queue import CampaignProgress, QueueSnapshot, queue_snapshot
from console.text import visible
from screens.widgets.campaign_actions import CampaignActions
from screens.widgets.campaign_summary import STATUS_STYLE, campaign_summary
from screens.widgets.live_poll import LivePoll
from screens.widgets.mode_bar import ModeBar
from screens.widgets.shell import shell
from screens.widgets.translate import translate_bindings

COLUMNS = ("id", "kind", "topic", "status", "progress", "rate", "eta")


class EnvoisScreen(LivePoll[QueueSnapshot], CampaignActions, Screen[None]):
    ERROR_TARGET = "#worker-line"
    CSS_PATH = "envois.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "binding.open", id="envois.open"),
        Binding("p", "pause", "binding.pause", id="envois.pause"),
        Binding("r", "resume", "binding.resume", id="envois.resume", show=False),
        Binding("x", "cancel_campaign", "binding.cancel_campaign", id="envois.cancel"),
        Binding("w", "start_worker", "binding.start_worker", id="envois.start_worker", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.ctx: Context = shell(self).ctx
        self.t: Translator = shell(self).t
        translate_bindings(self, self.t)
        self.snapshot: QueueSnapshot | None = None
        self._order: list[int] = []
        # What each row shows, so a poll only touches the cells that changed.
        self._shown: dict[int, list[Text]] = {}
        self._wanted: int | None = None
        self._bar_width = 8

    def compose(self) -> ComposeResult:
        yield ModeBar("envois")
        with Horizontal(id="health"):
            yield Static(id="worker-line")
            with Vertical(id="spark-box"):
                yield Static(self.t("envois.spark_label"), id="spark-label")
                yield Sparkline([], id="spark")
        yield DataTable(id="campaigns", cursor_type="row", zebra_stripes=True)
        yield Static(id="detail")
        yield Footer()

    def on_mount(self) -> None:
        t = self.t
        table = self.query_one(DataTable)
        extra = max(self.app.size.width, 80) - 80
        for key, base, share in (
            ("id", 3, 0.0),
            ("kind", 9, 0.0),
            ("topic", 9, 0.3),
            ("status", 9, 0.1),
            ("progress", 14, 0.4),
            ("rate", 9, 0.1),
            ("eta", 8, 0.1),
        ):
            width = base + int(extra * share)
            table.add_column(t(f"envois.col.{key}"), key=key, width=width)
            if key == "progress":
                # Room for " 100 %" after the bar.
                self._bar_width = max(width - 6, 4)
        self.start_polling()
        table.focus()

    def on_screen_suspend(self) -> None:
        self.pause_polling()

    def on_screen_resume(self) -> None:
        self.resume_polling()

    def show_campaign(self, campaign_id: int) -> None:
        """Put the cursor on this campaign as soon as it shows (after an alert)."""
        self._wanted = campaign_id
        self.poll_soon()

    def read_figures(self) -> QueueSnapshot:
        return queue_snapshot(self.ctx)

    # Display ------------------------------------------------------------------

    def show_figures(self, snapshot: QueueSnapshot) -> None:
        self.snapshot = snapshot
        self._show_health(snapshot)
        table = self.query_one(DataTable)
        order = [c.id for c in snapshot.campaigns]
        if order != self._order:
            keep = self._wanted or self.selected_campaign()
            table.clear()
            self._shown = {}
            for c in snapshot.campaigns:
                self._shown[c.id] = self._cells(c)
                table.add_row(*self._shown[c.id], key=str(c.id))
            self._order = order
            if keep in order:
                table.move_cursor(row=order.index(keep))
                if keep == self._wanted:
                    self._wanted = None
        else:
            for c in snapshot.campaigns:
                cells, before = self._cells(c), self._shown[c.id]
                for key, cell, old in zip(COLUMNS, cells, before, strict=True):
                    # Rich compares text and spans only: the base style counts too.
                    if (cell, cell.style) != (old, old.style):
                        table.update_cell(str(c.id), key, cell)
                self._shown[c.id] = cells
        self._show_detail()

    def _cells(self, c: CampaignProgress) -> list[Text]:
        t = self.t
        topic = self.ctx.config.topics.get(c.topic)
        scheduled = self.snapshot is not None and c.is_scheduled(self.snapshot.now)
        status = "scheduled" if scheduled else c.status
        return [
            Text(str(c.id)),
            Text(t(f"kind.{c.kind}"), style="bold red" if c.kind == "emergency" else ""),
            Text(visible(topic.label if topic else c.topic)),
            Text(t(f"status.{status}"), style=STATUS_STYLE.get(status, "")),
            Text(
                f"{bar(c.fraction, self._bar_width)} {percent(c.fraction):>5}",
                style="green" if c.fraction >= 1 else "",
            ),
            Text(rate(t, c.rate)),
            Text(duration(t, c.eta_seconds)),
        ]

    def _show_health(self, snapshot: QueueSnapshot) -> None:
        t = self.t
        line = Text()
        if snapshot.worker_alive:
            worker = snapshot.workers[0]
            line.append("● ", style="green")
            line.append(
                t(
                    "envois.worker_alive",
                    count=len(snapshot.workers),
                    host=visible(worker.host),
                    age=duration(t, snapshot.heartbeat_age_s or 0),
                )
            )
        elif snapshot.database_fault is None:
            line.append(t("envois.no_worker"), style="bold red")
        if snapshot.database_fault is not None:
            if snapshot.worker_alive:
                line.append("\n")
            line.append(t(f"fault.{snapshot.database_fault}"), style="bold red")
        health = snapshot.health
        line.append("\n")
        line.append(t("envois.provider", name=self.ctx.config.provider.name))
        line.append(
            t(f"health.{health.status}"),
            style={"ok": "green", "degraded": "yellow", "failing": "bold red"}.get(
                health.status, "dim"
            ),
        )
        line.append(" · " + t("envois.total_rate", rate=rate(t, snapshot.rate)))
        if health.last_problem and health.status != "ok":
            line.append("\n" + visible(health.last_problem)[:200], style="red")
        self.query_one("#worker-line", Static).update(line)
        self.query_one("#spark", Sparkline).data = [float(v) for v in snapshot.sparkline]

    def _show_detail(self) -> None:
        detail = self.query_one("#detail", Static)
        t = self.t
        campaign = self._selected_progress()
        if campaign is None:
            detail.update(Text(t("envois.empty")))
            return
        text = campaign_summary(t, self.ctx, campaign, self.size.width)
        detail.update(text)

    @on(DataTable.RowHighlighted)
    def _highlighted(self) -> None:
        self._show_detail()

    @on(DataTable.RowSelected)
    def _selected(self) -> None:
        self.action_open()

    def _selected_progress(self) -> CampaignProgress | None:
        campaign_id = self.selected_campaign()
        if self.snapshot is None or campaign_id is None:
            return None
        return next((c for c in self.snapshot.campaigns if c.id == campaign_id), None)

    def selected_campaign(self) -> int | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return int(row_key.value) if row_key.value is not None else None

    def after_campaign_action(self) -> None:
        self.poll_soon()

    # Actions -----------------------------------------------------------------

    def action_open(self) -> None:
        from screens.campaign import CampaignScreen

        campaign_id = self.selected_campaign()
        if campaign_id is None:
            self.notify(self.t("envois.no_selection"), severity="warning")
            return
        self.app.push_screen(CampaignScreen(campaign_id))

    def action_start_worker(self) -> None:
        shell(self).action_start_worker()
