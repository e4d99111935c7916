"""Planning a send from the Calendrier: topic, audience, the composer, when (a date,
the best slot, a recurrence or an event's reminders), and before saving the preview
of the next occurrences with every rule that moves or holds one."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, Select, SelectionList, Static
from textual.widgets.selection_list import Selection

from console.errors import TocsinError
from console.planning.calendar_view import PlannedItem
from console.planning.display import say_rule, say_when
from console.planning.rules import send_rules
from console.planning.service import (
    PlanPreview,
    PlanRequest,
    add_plan,
    cancel_plan,
    get_schedule,
    parse_when_text,
    preview_plan,
)
from console.roles import PermissionDenied
from console.sending.alerts import zone_counts
from console.sending.campaigns import Audience, message_text
from console.sending.figures import count
from console.text import visible
from screens.widgets.composer import ComposerPanel
from screens.widgets.modal import TocsinModal
from screens.widgets.tick_list import EVERYONE, TickList, everyone_or_quartiers


class NoAudience(TocsinError):
    """Nothing ticked and no group typed: the plan would reach nobody."""


def parse_groups(text: str) -> tuple[str, ...]:
    """Group names separated by commas; "groupe:"/"group:" prefixes are tolerated."""
    groups: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        head, _, name = part.partition(":")
        if name and head.strip().lower() in ("groupe", "group"):
            part = name.strip()
        if part and part not in groups:
            groups.append(part)
    return tuple(groups)


def audience_from(ticked: set[str], groups_text: str, numbers: tuple[str, ...] = ()) -> Audience:
    """The alert's picker ("Tous les habitants" or quartiers) plus optional groups.
    Typed groups narrow the audience to those groups (and any ticked quartiers), so
    "Tous" with groups means the groups, as the picker shows once a group is typed."""
    groups = parse_groups(groups_text)
    zones = tuple(sorted(v for v in ticked if v != EVERYONE))
    if EVERYONE in ticked and not groups and not numbers:
        return Audience(everyone=True)
    if not zones and not groups and not numbers:
        raise NoAudience("no audience", "plan_no_audience")
    return Audience(zones=zones, groups=groups, numbers=numbers)


class PlanAudienceList(TickList[str]):
    # Space ticks a line; Enter shows the preview (as Enter does in the fields).
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "screen.show_preview", "calendar.form.preview", show=False),
    ]


class PlanFormScreen(TocsinModal[int | None]):
    CSS_PATH = "plan_form.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "binding.back", id="plan.cancel"),
        Binding("ctrl+s", "save", "binding.save", id="plan.save"),
        Binding("ctrl+t", "gsm7", "binding.gsm7", id="plan.gsm7", priority=True),
        Binding("f5", "show_preview", "calendar.form.preview", id="plan.preview"),
    ]

    def __init__(self, *, day: date, replaces: int | None = None) -> None:
        super().__init__()
        self.day = day
        self.replaces = replaces
        self.preview: PlanPreview | None = None
        self._scroll_to_preview = False
        self._saving = False
        # What the picker starts with; numbers (from `plan add --to`) have no widget
        # here and are kept as they are when the plan is edited.
        self._ticked: set[str] = {EVERYONE}
        self._numbers: tuple[str, ...] = ()

    def compose(self) -> ComposeResult:
        t = self.t
        topics = [(v.label, k) for k, v in self.ctx.config.topics.items()]
        topic, groups, text, when = "evenements", "", "", f"meilleur {self.day.isoformat()}"
        if self.replaces is not None:
            schedule = get_schedule(self.ctx, self.replaces)
            topic, text = schedule.topic, schedule.text
            loaded = Audience.from_json(schedule.audience)
            self._ticked = {EVERYONE} if loaded.everyone else set(loaded.zones)
            self._numbers = loaded.numbers
            groups = ", ".join(loaded.groups)
            if schedule.kind == "cron":
                when = f"cron {schedule.cron}"
            elif schedule.kind == "reminder":
                when = f"événement {schedule.event_id} J-{schedule.offset_days}"
            else:
                when = schedule.at_local
        if topic not in self.ctx.config.topics:
            topic = next(iter(self.ctx.config.topics))
        with VerticalScroll(id="form-box"):
            title = t("calendar.form.title")
            if self.replaces is not None:
                title += f" (#{self.replaces})"
            yield Static(Text(title, style="bold"), id="form-title")
            with Horizontal(classes="form-row"):
                yield Label(t("calendar.form.topic"))
                yield Select(topics, value=topic, allow_blank=False, id="field-topic", compact=True)
            yield Label(t("calendar.form.audience"), classes="field-label")
            # Filled from the database off the UI thread (see _load_zones).
            yield PlanAudienceList(id="field-audience")
            yield Label(t("calendar.form.groups"), classes="field-label")
            yield Input(value=groups, id="field-groups", compact=True)
            yield Label(t("calendar.form.text"), classes="field-label")
            yield ComposerPanel(
                text,
                t,
                price_per_segment=self.ctx.config.provider.price_per_segment,
                finalize=self._final_text,
                id="composer",
            )
            yield Label(t("calendar.form.when"), classes="field-label")
            yield Input(value=when, id="field-when", compact=True)
            yield Label(t("calendar.form.justification"), classes="field-label")
            yield Input(id="field-justification", compact=True)
            yield Static(id="plan-preview")
            yield Static(id="form-error")
            with Horizontal(id="form-buttons"):
                yield Button(t("calendar.form.preview"), id="preview", compact=True)
                yield Button(t("calendar.form.save"), variant="primary", id="save", compact=True)
                yield Button(t("calendar.form.cancel"), id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#field-audience", PlanAudienceList).focus()
        self._scroll_to_preview = False
        self._load_zones()

    @work(exclusive=True, thread=True, group="plan-zones")
    def _load_zones(self) -> None:
        found = zone_counts(self.ctx)
        self.app.call_from_thread(self._zones_loaded, found)

    def _zones_loaded(self, found: list[tuple[str, int]]) -> None:
        t = self.t
        known = dict(found)
        # A quartier the plan names but where nobody lives now stays tickable.
        for zone in sorted(self._ticked - {EVERYONE} - set(known)):
            known[zone] = 0
        choices: list[Selection[str]] = [
            Selection(
                Text(t("calendar.form.everyone"), style="bold"),
                EVERYONE,
                EVERYONE in self._ticked,
            )
        ]
        for zone in sorted(known):
            choices.append(
                Selection(
                    Text(t("alert.zone", zone=visible(zone), count=count(t, known[zone]))),
                    zone,
                    zone in self._ticked,
                )
            )
        picker = self.query_one("#field-audience", PlanAudienceList)
        with picker.prevent(SelectionList.SelectedChanged):
            picker.clear_options()
            picker.add_options(choices)
        # Space ticks the highlighted line: start on the first one.
        picker.highlighted = 0
        self.action_preview()

    @on(SelectionList.SelectedChanged, "#field-audience")
    def _ticks_changed(self, event: SelectionList.SelectedChanged[str]) -> None:
        self._ticked = everyone_or_quartiers(event.selection_list, self._ticked)
        self.action_preview()

    @on(Input.Changed, "#field-groups")
    def _groups_changed(self, event: Input.Changed) -> None:
        # Typed groups narrow the audience: "Tous" unticks so the picker says so.
        if parse_groups(event.value) and EVERYONE in self._ticked:
            picker = self.query_one("#field-audience", PlanAudienceList)
            with picker.prevent(SelectionList.SelectedChanged):
                picker.deselect(EVERYONE)
            self._ticked.discard(EVERYONE)

    def action_gsm7(self) -> None:
        self.query_one(ComposerPanel).apply_gsm7()

    def _final_text(self, text: str) -> str:
        try:
            topic = str(self.query_one("#field-topic", Select).value)
        except Exception:  # not composed yet
            return text
        if topic not in self.ctx.config.topics:
            return text
        return message_text(
            self.ctx,
            _request_stub(topic, text),
        )

    def _request(self) -> PlanRequest:
        fields: dict[str, Any] = parse_when_text(
            self.query_one("#field-when", Input).value, self.ctx.config.town.timezone
        )
        return PlanRequest(
            topic=str(self.query_one("#field-topic", Select).value),
            text=self.query_one(ComposerPanel).text,
            sender_id=self.ctx.config.town.sender_id,
            audience=audience_from(
                self._ticked, self.query_one("#field-groups", Input).value, self._numbers
            ),
            justification=self.query_one("#field-justification", Input).value,
            **fields,
        )

    @on(Button.Pressed, "#preview")
    def action_show_preview(self) -> None:
        self._scroll_to_preview = True
        self.action_preview()

    def action_preview(self) -> None:
        try:
            request = self._request()
        except TocsinError as exc:
            self.show_error(exc)
            return
        self.query_one("#form-error", Static).update("")
        if not request.text.strip():
            # Nothing to preview yet: the composer says what to type.
            request = dataclasses.replace(request, text=".")
        self._run_preview(request)

    @work(exclusive=True, thread=True, group="plan-preview")
    def _run_preview(self, request: PlanRequest) -> None:
        try:
            found: PlanPreview | Exception = preview_plan(self.ctx, request)
        except (TocsinError, ValueError) as exc:
            found = exc
        self.app.call_from_thread(self._show_preview, found)

    def _show_preview(self, found: PlanPreview | Exception) -> None:
        if isinstance(found, Exception):
            self.preview = None
            self.query_one("#plan-preview", Static).update("")
            self.show_error(found)
            return
        self.preview = found
        t = self.t
        zone = send_rules(self.ctx.config).zone
        out = Text()
        out.append(t("planning.preview.title", count=len(found.occurrences)), style="bold")
        for occurrence in found.occurrences:
            out.append("\n• " + say_when(t, occurrence.due, zone))
            if occurrence.moved_by:
                reasons = ", ".join(say_rule(t, b) for b in occurrence.moved_by)
                out.append("\n" + t("planning.moved", reasons=reasons), style="yellow")
            if occurrence.held:
                out.append(
                    "\n" + t("planning.held", reason=say_rule(t, occurrence.held)), style="red"
                )
        skipped = ", ".join(f"{k}={v}" for k, v in found.skipped.items()) or "0"
        out.append(
            "\n"
            + t(
                "planning.preview.audience",
                recipients=found.recipients,
                capped=found.capped,
                skipped=skipped,
            )
        )
        if found.needs_justification:
            out.append("\n" + t("planning.preview.justification"), style="bold yellow")
        shown = self.query_one("#plan-preview", Static)
        shown.update(out)
        self.query_one(ComposerPanel).set_recipients(found.recipients)
        if self._scroll_to_preview:
            # On a small terminal the preview is below the fold: bring it up.
            self.call_after_refresh(shown.scroll_visible, animate=False)

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_show_preview()

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        if self._saving:
            return
        try:
            request = self._request()
        except TocsinError as exc:
            self.show_error(exc)
            return
        self._saving = True
        self._save(request)

    @work(exclusive=True, thread=True, group="plan-save")
    def _save(self, request: PlanRequest) -> None:
        """Off the UI thread: saving resolves the audience again (seconds for a town)."""
        try:
            ids = add_plan(self.ctx, request)
            if self.replaces is not None:
                cancel_plan(self.ctx, self.replaces)
        except (TocsinError, ValueError, PermissionDenied) as exc:
            self.app.call_from_thread(self._save_failed, exc)
            return
        self.app.call_from_thread(self._saved, ids)

    def _save_failed(self, exc: Exception) -> None:
        self._saving = False
        self.show_error(exc)

    def _saved(self, ids: list[int]) -> None:
        self.notify(self.t("calendar.form.saved", id=ids[0] if ids else "?"))
        self.dismiss(ids[0] if ids else None)


def _request_stub(topic: str, text: str) -> Any:
    from console.sending.campaigns import CampaignRequest

    return CampaignRequest(topic=topic, text=text, sender_id="X", audience=Audience())


class CancelPlanScreen(TocsinModal[int | None]):
    """Cancel one occurrence or the whole series (asked)."""

    CSS_PATH = "plan_form.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "binding.back", id="plan.cancel_back"),
    ]

    def __init__(self, item: PlannedItem) -> None:
        super().__init__()
        self.item = item

    def compose(self) -> ComposeResult:
        t = self.t
        zone = send_rules(self.ctx.config).zone
        with Vertical(id="form-box"):
            yield Static(
                Text(t("calendar.cancel.title", id=self.item.schedule_id), style="bold"),
                id="form-title",
            )
            yield Static(Text(visible(self.item.text)))
            yield Static(id="form-error")
            with Vertical(id="cancel-buttons"):
                if self.item.state == "planned":
                    yield Button(
                        t("calendar.cancel.one", when=say_when(t, self.item.due, zone)),
                        id="one",
                        compact=True,
                    )
                yield Button(
                    t("calendar.cancel.series"), variant="error", id="series", compact=True
                )
                yield Button(t("calendar.form.cancel"), id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed, "#one")
    def _one(self) -> None:
        self._cancel(self.item.key)

    @on(Button.Pressed, "#series")
    def _series(self) -> None:
        self._cancel("")

    @work(exclusive=True, thread=True, group="plan-cancel")
    def _cancel(self, key: str) -> None:
        try:
            count = cancel_plan(self.ctx, self.item.schedule_id, key)
        except (TocsinError, PermissionDenied) as exc:
            self.app.call_from_thread(self.show_error, exc)
            return
        self.app.call_from_thread(self._cancelled, key, count)

    def _cancelled(self, key: str, count: int) -> None:
        what = key or self.t("calendar.cancel.series")
        self.notify(
            self.t("planning.cancelled", id=self.item.schedule_id, what=what)
            if count
            else self.t("planning.nothing_cancelled", id=self.item.schedule_id)
        )
        self.dismiss(count)
