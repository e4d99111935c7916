"""Calendrier (mode 4): the planned sends by month, week or agenda, with Sundays,
holidays, quiet hours, election periods and each day's load. Operators plan (`n`),
edit (`e`) and cancel (`x`); viewers look. The database is read in a thread."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from console.context import Context
from console.i18n import Translator
from console.planning.calendar_view import PeriodView, PlannedItem, month_bounds, read_period
from console.planning.display import say_date, say_period
from console.roles import Role
from console.sending.figures import count
from console.text import visible
from screens.widgets.mode_bar import ModeBar
from screens.widgets.shell import shell
from screens.widgets.translate import translate_bindings

VIEWS = ("month", "week", "agenda")
AGENDA_DAYS = 31
STATE_STYLE = {
    "planned": "",
    "sent": "green",
    "missed": "bold red",
    "dropped": "dim strike",
    "blocked": "yellow",
    "cancelled": "dim strike",
}
STATE_MARK = {
    "planned": "•",
    "sent": "✓",
    "missed": "!",
    "dropped": "×",
    "blocked": "⊘",
    "cancelled": "×",
}


class CalendarGrid(Static, can_focus=True):
    """The month, week or agenda drawing; the screen moves the selected day."""


class CalendrierScreen(Screen[None]):
    CSS_PATH = "calendar.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "move(-1)", "binding.prev_day", id="calendar.prev_day", show=False),
        Binding("right", "move(1)", "binding.next_day", id="calendar.next_day", show=False),
        Binding("up", "move(-7)", "binding.prev_day", id="calendar.prev_week", show=False),
        Binding("down", "move(7)", "binding.next_day", id="calendar.next_week", show=False),
        Binding("pageup", "month(-1)", "binding.prev_month", id="calendar.prev_month"),
        Binding("pagedown", "month(1)", "binding.next_month", id="calendar.next_month"),
        Binding("t", "today", "binding.today", id="calendar.today"),
        Binding("v", "view", "binding.view", id="calendar.view"),
        Binding("enter", "open", "binding.open", id="calendar.open"),
        Binding("n", "plan", "binding.plan", id="calendar.plan"),
        Binding("e", "edit", "binding.edit", id="calendar.edit"),
        Binding("x", "cancel_plan", "binding.cancel_plan", id="calendar.cancel"),
        Binding("escape", "back", "binding.back", id="calendar.back", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.ctx: Context = shell(self).ctx
        self.t: Translator = shell(self).t
        translate_bindings(self, self.t)
        from console.planning.rules import send_rules

        self.rules = send_rules(self.ctx.config)
        self.selected: date = self.ctx.clock.now().astimezone(self.rules.zone).date()
        self.view = "month"
        self.data: PeriodView | None = None
        self.loads = 0
        self._loading = False
        self._again = False

    def compose(self) -> ComposeResult:
        yield ModeBar("calendrier")
        yield Static(id="cal-header")
        with Horizontal(id="cal-body"):
            yield CalendarGrid(id="cal-grid")
            with Vertical(id="cal-side"):
                yield Static(id="cal-day")
                yield OptionList(id="cal-sends")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(CalendarGrid).focus()
        self.reload()

    def on_screen_resume(self) -> None:
        self.reload()

    # Reading ------------------------------------------------------------------------

    def _period(self) -> tuple[date, date]:
        if self.view == "month":
            first, last = month_bounds(self.selected.year, self.selected.month)
            # Whole weeks, Monday to Sunday, as drawn.
            return first - timedelta(days=first.weekday()), last + timedelta(
                days=6 - last.weekday()
            )
        if self.view == "week":
            monday = self.selected - timedelta(days=self.selected.weekday())
            return monday, monday + timedelta(days=6)
        return self.selected, self.selected + timedelta(days=AGENDA_DAYS - 1)

    def reload(self) -> None:
        self.run_worker(self._load(), exclusive=False, group="calendar-load")

    async def _load(self) -> None:
        if self._loading:
            self._again = True
            return
        self._loading = True
        try:
            while True:
                self._again = False
                first, last = self._period()
                try:
                    data = await asyncio.to_thread(read_period, self.ctx, first, last)
                except Exception as exc:  # the database went away: say so in place
                    self.query_one("#cal-header", Static).update(
                        Text(self.t("envois.db_error", error=visible(str(exc))[:200]), style="red")
                    )
                    return
                if not self._again:
                    break
        finally:
            self._loading = False
        self.data = data
        self.loads += 1
        self._draw()

    # Drawing ------------------------------------------------------------------------

    def _in_view(self) -> bool:
        return self.data is not None and self.data.first <= self.selected <= self.data.last

    def _draw(self) -> None:
        if self.data is None:
            return
        t = self.t
        header = Text(no_wrap=True, overflow="ellipsis")
        header.append(
            t("calendar.title", period=say_period(t, self.selected.year, self.selected.month)),
            style="bold",
        )
        for view in VIEWS:
            header.append("  ")
            header.append(
                t(f"calendar.view.{view}"), style="reverse" if view == self.view else "dim"
            )
        if self.ctx.role < Role.OPERATOR:
            header.append("  " + t("calendar.readonly"), style="yellow")
        self.query_one("#cal-header", Static).update(header)
        grid = self.query_one(CalendarGrid)
        width = max(grid.size.width, 35)
        if self.view == "month":
            grid.update(self._month(width))
        elif self.view == "week":
            grid.update(self._week(width))
        else:
            grid.update(self._agenda(width))
        self._draw_day()

    def _day_style(self, day: date) -> str:
        assert self.data is not None
        info = self.data.days.get(day)
        style = ""
        if info is not None and info.l49:
            style = "on dark_red"
        elif info is not None and info.l52:
            style = "on grey23"
        if day.month != self.selected.month and self.view == "month":
            style += " dim"
        if day == self.data.today:
            style += " bold underline"
        if day == self.selected:
            style += " reverse"
        return style.strip()

    def _month(self, width: int) -> Text:
        assert self.data is not None
        cell = max(min(width // 7, 12), 5)
        out = Text(no_wrap=True, overflow="crop")
        for name in self.t("planning.dayshort").split():
            out.append(name.ljust(cell), style="bold")
        out.append("\n")
        day = self.data.first
        while day <= self.data.last:
            week = [day + timedelta(days=i) for i in range(7)]
            for current in week:
                info = self.data.days[current]
                mark = "*" if info.holiday else "D" if info.sunday else " "
                out.append(f"{current.day:>2}{mark}".ljust(cell), style=self._day_style(current))
            out.append("\n")
            for current in week:
                info = self.data.days[current]
                missed = sum(1 for item in info.items if item.state == "missed")
                sends = len(info.items)
                label = f"!{missed}" if missed else f"●{sends}" if sends else ""
                # Held by the cap: counted for what was sent, forecast for what is to come.
                held = info.capped + info.forecast_capped
                if held and cell >= 8:
                    label += f"-{held}"
                style = "bold red" if missed else "cyan" if sends else ""
                out.append(label[: cell - 1].ljust(cell), style=style)
            out.append("\n")
            day += timedelta(days=7)
        out.append(self.t("calendar.legend"), style="dim")
        return out

    def _item_line(self, item: PlannedItem, width: int, *, with_day: bool = False) -> Text:
        local = item.due.astimezone(self.rules.zone)
        line = Text(no_wrap=True, overflow="ellipsis")
        if with_day:
            line.append(f"{local:%d/%m} ")
        line.append(f"{local:%H:%M} ")
        line.append(STATE_MARK.get(item.state, "?") + " ", style=STATE_STYLE.get(item.state, ""))
        topic = self.ctx.config.topics.get(item.topic)
        line.append(visible(topic.label if topic else item.topic)[:10] + " ", style="cyan")
        line.append(visible(item.text.replace("\n", " ")))
        line.truncate(max(width - 1, 10), overflow="ellipsis")
        return line

    def _week(self, width: int) -> Text:
        assert self.data is not None
        out = Text()
        for day in sorted(self.data.days):
            info = self.data.days[day]
            head = Text(say_date(self.t, day), style=self._day_style(day))
            flags = self._flags(day, short=True)
            if flags:
                head.append(" " + flags, style="yellow")
            out.append_text(head)
            out.append("\n")
            for item in info.items:
                out.append("  ")
                out.append_text(self._item_line(item, width - 2))
                out.append("\n")
        return out

    def _agenda(self, width: int) -> Text:
        assert self.data is not None
        out = Text()
        items = self.data.items()
        if not items:
            out.append(self.t("planning.preview.none"), style="dim")
        for item in items:
            out.append_text(self._item_line(item, width, with_day=True))
            out.append("\n")
        return out

    def _flags(self, day: date, *, short: bool = False) -> str:
        assert self.data is not None
        info = self.data.days.get(day)
        if info is None:
            return ""
        t = self.t
        flags = []
        if info.holiday:
            flags.append(t("calendar.holiday", name=info.holiday))
        if info.sunday and not short:
            flags.append(t("calendar.sunday"))
        if info.l49:
            flags.append(t("calendar.l49", name=info.l49))
        elif info.l52 and not short:
            flags.append(t("calendar.l52", name=info.l52))
        return " · ".join(flags)

    def _draw_day(self) -> None:
        assert self.data is not None
        t = self.t
        out = Text()
        out.append(say_date(t, self.selected), style="bold")
        info = self.data.days.get(self.selected)
        flags = self._flags(self.selected)
        if flags:
            out.append("\n" + flags, style="yellow")
        quiet_start, quiet_end = self.data.quiet
        out.append("\n" + t("calendar.quiet", start=quiet_start, end=quiet_end), style="dim")
        if info is not None:
            for name in info.events:
                out.append("\n◆ ")
                out.append(visible(name))
            out.append(
                "\n"
                + t(
                    "calendar.load",
                    messages=count(t, info.messages),
                    capped=count(t, info.capped),
                )
            )
            if info.forecast or info.forecast_capped:
                out.append(
                    "\n"
                    + t(
                        "calendar.forecast",
                        messages=count(t, info.forecast),
                        capped=count(t, info.forecast_capped),
                    ),
                    style="dim",
                )
        self.query_one("#cal-day", Static).update(out)
        sends = self.query_one("#cal-sends", OptionList)
        sends.clear_options()
        items = info.items if info is not None else []
        width = max(sends.size.width, 30)
        for index, item in enumerate(items):
            sends.add_option(Option(self._item_line(item, width), id=str(index)))
        if not items:
            sends.add_option(Option(Text(t("calendar.day.empty"), style="dim"), disabled=True))

    # Actions ------------------------------------------------------------------------

    def _select(self, day: date) -> None:
        self.selected = day
        if self._in_view() and self.view != "agenda":
            self._draw()
        else:
            self.reload()

    def action_move(self, days: int) -> None:
        self._select(self.selected + timedelta(days=days))

    def action_month(self, months: int) -> None:
        month = self.selected.month - 1 + months
        year = self.selected.year + month // 12
        month = month % 12 + 1
        last = month_bounds(year, month)[1].day
        self._select(date(year, month, min(self.selected.day, last)))

    def action_today(self) -> None:
        self._select(self.ctx.clock.now().astimezone(self.rules.zone).date())

    def action_view(self) -> None:
        self.view = VIEWS[(VIEWS.index(self.view) + 1) % len(VIEWS)]
        self.reload()

    def action_open(self) -> None:
        sends = self.query_one("#cal-sends", OptionList)
        if self.focused is sends:
            return
        sends.focus()
        if sends.option_count and sends.highlighted is None:
            sends.highlighted = 0

    def action_back(self) -> None:
        self.query_one(CalendarGrid).focus()

    def _current_item(self) -> PlannedItem | None:
        if self.data is None:
            return None
        info = self.data.days.get(self.selected)
        if info is None or not info.items:
            return None
        sends = self.query_one("#cal-sends", OptionList)
        index = sends.highlighted if sends.highlighted is not None else 0
        return info.items[min(index, len(info.items) - 1)]

    def _may_plan(self) -> bool:
        if self.ctx.role < Role.OPERATOR:
            self.notify(self.t("calendar.readonly"), severity="warning")
            return False
        return True

    def action_plan(self) -> None:
        if not self._may_plan():
            return
        from screens.plan_form import PlanFormScreen

        self.app.push_screen(PlanFormScreen(day=self.selected), self._after_form)

    def action_edit(self) -> None:
        item = self._current_item()
        if item is None or not self._may_plan():
            return
        from screens.plan_form import PlanFormScreen

        self.app.push_screen(
            PlanFormScreen(day=self.selected, replaces=item.schedule_id), self._after_form
        )

    def action_cancel_plan(self) -> None:
        item = self._current_item()
        if item is None or not self._may_plan():
            return
        from screens.plan_form import CancelPlanScreen

        self.app.push_screen(CancelPlanScreen(item), self._after_form)

    def _after_form(self, result: int | None) -> None:
        self.query_one(CalendarGrid).focus()
        self.reload()

    @on(OptionList.OptionSelected, "#cal-sends")
    def _send_selected(self) -> None:
        self.action_edit()
