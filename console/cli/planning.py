"""Planned sends from scripts: plan add|list|show|preview|cancel|resolve,
event add|list|move|cancel|import, calendar export."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    audience_from_args,
    confirm_typed,
    context,
    parse_when,
    print_json,
)
from console.config import Config

if TYPE_CHECKING:
    from console.context import Context
    from console.i18n import Translator
    from console.planning.schedules import Occurrence


def _audience(parser: argparse.ArgumentParser, *, required: bool) -> None:
    who = parser.add_mutually_exclusive_group(required=required)
    who.add_argument("--all", action="store_true", help="every resident of the topic")
    who.add_argument("--zone", action="append", metavar="ZONE", help="repeatable")
    who.add_argument("--group", action="append", metavar="GROUP", help="repeatable")
    who.add_argument("--to", nargs="+", metavar="NUMBER")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    plan = sub.add_parser("plan", help="planned sends: one-off, recurring, event reminders")
    plan_sub = plan.add_subparsers(dest="action", required=True)
    add = plan_sub.add_parser("add", help="plan a send (shows the next 10 occurrences)")
    add.add_argument("--topic", required=True)
    _audience(add, required=True)
    add.add_argument("--text", required=True)
    add.add_argument("--sender", help="sender ID (default: town.sender_id)")
    when = add.add_mutually_exclusive_group(required=True)
    when.add_argument("--at", help="date and time (ISO, town time zone)")
    when.add_argument("--best-slot", metavar="DATE", help="the first best slot from DATE")
    when.add_argument(
        "--cron", help="cron expression or preset (every-monday 12:15, first-saturday 10:00)"
    )
    when.add_argument("--event", type=int, metavar="ID", help="reminders of an event")
    add.add_argument("--from", dest="from_day", metavar="DATE", help="with --cron: first day")
    add.add_argument("--until", dest="until_day", metavar="DATE", help="with --cron: last day")
    add.add_argument("--offsets", help="with --event: J-7,J-1 (default: planning config)")
    add.add_argument("--valid-until", help="never sent after (ISO, town time zone)")
    add.add_argument("--justification", default="", help="election period (L52-1), audited")
    add.add_argument("--yes", action="store_true", help="do not ask to type the recipient count")
    add.add_argument("--json", action="store_true")
    listing = plan_sub.add_parser("list")
    listing.add_argument("--all", action="store_true", help="done and cancelled too")
    listing.add_argument("--json", action="store_true")
    for name in ("show", "preview", "cancel", "resolve"):
        verb = plan_sub.add_parser(name)
        verb.add_argument("id", type=int)
        verb.add_argument("--json", action="store_true")
        if name == "preview":
            verb.add_argument("--count", type=int, default=10)
        if name == "cancel":
            verb.add_argument(
                "--occurrence", default="", metavar="LOCAL", help="only this one (2026-03-16T12:15)"
            )
        if name == "resolve":
            verb.add_argument("--send", action="store_true", help="send the missed occurrences")
            verb.add_argument("--drop", action="store_true", help="drop them")
    plan.set_defaults(handler=cmd_plan)

    event = sub.add_parser("event", help="the town's events, which reminders follow")
    event_sub = event.add_subparsers(dest="action", required=True)
    event_add = event_sub.add_parser("add")
    event_add.add_argument("--name", required=True)
    event_add.add_argument("--start", required=True, help="ISO date-time, town time zone")
    event_add.add_argument("--topic", default="evenements")
    event_add.add_argument("--place", default="")
    _audience(event_add, required=False)
    event_add.add_argument("--json", action="store_true")
    event_list = event_sub.add_parser("list")
    event_list.add_argument("--all", action="store_true", help="cancelled ones too")
    event_list.add_argument("--json", action="store_true")
    move = event_sub.add_parser("move")
    move.add_argument("id", type=int)
    move.add_argument("--start", required=True)
    move.add_argument("--json", action="store_true")
    cancel = event_sub.add_parser("cancel")
    cancel.add_argument("id", type=int)
    cancel.add_argument("--json", action="store_true")
    ics = event_sub.add_parser("import", help="the town's agenda (.ics), keyed by UID")
    ics.add_argument("file")
    ics.add_argument("--topic", default="evenements")
    ics.add_argument("--json", action="store_true")
    event.set_defaults(handler=cmd_event)

    calendar = sub.add_parser("calendar", help="the planned sends as a calendar")
    calendar_sub = calendar.add_subparsers(dest="action", required=True)
    export = calendar_sub.add_parser("export")
    export.add_argument("--ics", required=True, metavar="FILE")
    export.add_argument("--json", action="store_true")
    calendar.set_defaults(handler=cmd_calendar)


def _translator(config: Config) -> Translator:
    from console.cli.common import translator

    return translator(config)


def _day(text: str | None, flag: str, t: Translator) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise CliError(t("planning.cli.bad_day", flag=flag, text=repr(text)), EXIT_USAGE) from exc


def _occurrence_json(occurrence: Occurrence) -> dict[str, Any]:
    return {
        "key": occurrence.key,
        "nominal": occurrence.nominal.isoformat(),
        "due": occurrence.due.isoformat(),
        "moved_by": [b.reason for b in occurrence.moved_by],
        "held": occurrence.held.reason if occurrence.held else None,
    }


def _print_occurrences(ctx: Context, occurrences: list[Occurrence], out: Any) -> None:
    from console.planning.display import say_rule, say_when
    from console.planning.rules import send_rules

    t = _translator(ctx.config)
    zone = send_rules(ctx.config).zone
    if not occurrences:
        out.write(t("planning.preview.none") + "\n")
        return
    out.write(t("planning.preview.title", count=len(occurrences)) + "\n")
    for occurrence in occurrences:
        out.write(f"- {say_when(t, occurrence.due, zone)}\n")
        if occurrence.moved_by:
            reasons = ", ".join(say_rule(t, b) for b in occurrence.moved_by)
            out.write(t("planning.moved", reasons=reasons) + "\n")
        if occurrence.held:
            out.write(t("planning.held", reason=say_rule(t, occurrence.held)) + "\n")


def cmd_plan(args: argparse.Namespace, config: Config) -> int:
    from console.errors import TocsinError

    ctx = context(config)
    try:
        return _plan(args, ctx)
    except TocsinError as exc:
        raise CliError(_translator(config).error(exc), EXIT_USAGE) from exc
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc


def _plan(args: argparse.Namespace, ctx: Context) -> int:
    from console.planning import scheduler, service

    t = _translator(ctx.config)
    if args.action == "add":
        return _plan_add(args, ctx)
    if args.action == "list":
        views = service.list_plans(ctx, include_done=args.all)
        if args.json:
            print_json([view.to_json() for view in views])
            return EXIT_OK
        from console.planning.display import say_when
        from console.planning.rules import send_rules

        zone = send_rules(ctx.config).zone
        for view in views:
            upcoming = say_when(t, view.next_due_at, zone) if view.next_due_at else "-"
            missed = view.occurrences.get("missed", 0)
            print(
                f"#{view.id} {view.kind:<8} {view.status:<9} {view.topic:<10} {upcoming}"
                + (f"  [{missed} {t('calendar.missed')}]" if missed else "")
            )
        return EXIT_OK
    if args.action == "show":
        view = service.show_plan(ctx, args.id)
        if args.json:
            print_json(view.to_json())
        else:
            print(f"#{view.id} {view.kind} {view.status} {view.topic}: {view.when}")
            print(f"  {view.text}")
            print("  " + " ".join(f"{k}={v}" for k, v in view.occurrences.items() if v))
        return EXIT_OK
    if args.action == "preview":
        schedule = service.get_schedule(ctx, args.id)
        found = service.schedule_occurrences(ctx, schedule, count=max(1, min(args.count, 500)))
        if args.json:
            print_json({"id": args.id, "occurrences": [_occurrence_json(o) for o in found]})
        else:
            _print_occurrences(ctx, found, sys.stdout)
        return EXIT_OK
    if args.action == "cancel":
        count = service.cancel_plan(ctx, args.id, args.occurrence)
        if args.json:
            print_json({"id": args.id, "cancelled": count, "occurrence": args.occurrence or None})
        elif count:
            what = args.occurrence or t("calendar.cancel.series")
            print(t("planning.cancelled", id=args.id, what=what))
        else:
            print(t("planning.nothing_cancelled", id=args.id))
        return EXIT_OK
    # resolve
    if args.send == args.drop:
        raise CliError(t("planning.cli.resolve"), EXIT_USAGE)
    action = "send" if args.send else "drop"
    count = scheduler.resolve_missed(ctx, args.id, action)
    if args.json:
        print_json({"id": args.id, "resolved": count, "action": action})
    else:
        print(
            t("planning.resolved", id=args.id, count=count, action=t(f"planning.resolved.{action}"))
        )
    return EXIT_OK


def _plan_add(args: argparse.Namespace, ctx: Context) -> int:
    from console.planning.service import PlanRequest, add_plan, parse_offsets, preview_plan

    config = ctx.config
    t = _translator(config)
    if (args.from_day or args.until_day) and not args.cron:
        raise CliError(t("planning.cli.from_until"), EXIT_USAGE)
    if args.offsets and args.event is None:
        raise CliError(t("planning.cli.offsets"), EXIT_USAGE)
    if args.at:
        when = "at"
    elif args.best_slot:
        when = "best_slot"
    elif args.cron:
        when = "cron"
    else:
        when = "event"
    request = PlanRequest(
        topic=args.topic,
        text=args.text,
        sender_id=args.sender or config.town.sender_id,
        audience=audience_from_args(args),
        when=when,  # type: ignore[arg-type]
        at=parse_when(args.at, config) if args.at else None,
        best_day=_day(args.best_slot, "--best-slot", t),
        cron=args.cron or "",
        first_day=_day(args.from_day, "--from", t),
        last_day=_day(args.until_day, "--until", t),
        event_id=args.event,
        offsets=parse_offsets(args.offsets) if args.offsets else (),
        valid_until=parse_when(args.valid_until, config) if args.valid_until else None,
        justification=args.justification,
    )
    preview = preview_plan(ctx, request, count=10)
    if not args.json or not args.yes:
        # The preview goes to stderr so that --json stays clean.
        _print_occurrences(ctx, preview.occurrences, sys.stderr)
        skipped = ", ".join(f"{k}={v}" for k, v in preview.skipped.items()) or "0"
        sys.stderr.write(
            t(
                "planning.preview.audience",
                recipients=preview.recipients,
                capped=preview.capped,
                skipped=skipped,
            )
            + "\n"
        )
        if preview.needs_justification:
            sys.stderr.write(t("planning.preview.justification") + "\n")
    if not args.yes:
        confirm_typed(t, preview.recipients, t("planning.what_recipients"), sys.stdin, sys.stderr)
    ids = add_plan(ctx, request, preview=preview)
    if args.json:
        print_json(
            {
                "schedule_ids": ids,
                "recipients": preview.recipients,
                "capped": preview.capped,
                "skipped": preview.skipped,
                "occurrences": [_occurrence_json(o) for o in preview.occurrences],
            }
        )
    else:
        from console.planning.display import say_when
        from console.planning.rules import send_rules

        upcoming = (
            say_when(t, preview.occurrences[0].due, send_rules(config).zone)
            if preview.occurrences
            else "-"
        )
        for schedule_id in ids:
            print(t("planning.added", id=schedule_id, next=upcoming))
    return EXIT_OK


def _event_json(event: Any) -> dict[str, Any]:
    return {
        "id": event.id,
        "uid": event.uid,
        "name": event.name,
        "place": event.place,
        "topic": event.topic,
        "starts_at": event.starts_at.isoformat(),
        "status": event.status,
    }


def cmd_event(args: argparse.Namespace, config: Config) -> int:
    from console.errors import TocsinError

    ctx = context(config)
    try:
        return _event(args, ctx)
    except TocsinError as exc:
        raise CliError(_translator(config).error(exc), EXIT_USAGE) from exc


def _event(args: argparse.Namespace, ctx: Context) -> int:
    from console.planning import service

    t = _translator(ctx.config)
    config = ctx.config
    if args.action == "add":
        event_id = service.add_event(
            ctx,
            service.EventRequest(
                name=args.name,
                starts_at=parse_when(args.start, config),
                topic=args.topic,
                place=args.place,
                audience=audience_from_args(args),
            ),
        )
        if args.json:
            print_json({"id": event_id})
        else:
            print(t("planning.event.added", id=event_id))
        return EXIT_OK
    if args.action == "list":
        events = service.list_events(ctx, include_cancelled=args.all)
        if args.json:
            print_json([_event_json(e) for e in events])
            return EXIT_OK
        from console.planning.display import say_when
        from console.planning.rules import send_rules
        from console.text import visible

        zone = send_rules(config).zone
        for e in events:
            where = f" ({visible(e.place)})" if e.place else ""
            print(f"#{e.id} {say_when(t, e.starts_at, zone)} {visible(e.name)}{where} [{e.status}]")
        return EXIT_OK
    if args.action == "move":
        count = service.move_event(ctx, args.id, parse_when(args.start, config))
        _answer(
            args,
            {"id": args.id, "reminders_moved": count},
            t("planning.event.moved", id=args.id, count=count),
        )
        return EXIT_OK
    if args.action == "cancel":
        count = service.cancel_event(ctx, args.id)
        _answer(
            args,
            {"id": args.id, "reminders_cancelled": count},
            t("planning.event.cancelled", id=args.id, count=count),
        )
        return EXIT_OK
    from console.planning.agenda import import_ics

    result = import_ics(ctx, Path(args.file), topic=args.topic)
    if args.json:
        print_json(result.to_json())
        return EXIT_OK
    print(
        t(
            "planning.event.imported",
            created=len(result.created),
            updated=len(result.updated),
            unchanged=result.unchanged,
        )
    )
    offsets = ",".join(config.planning.reminder_offsets)
    for event_id in result.created:
        print(t("planning.event.propose", id=event_id, offsets=offsets, topic=args.topic))
    return EXIT_OK


def _answer(args: argparse.Namespace, data: dict[str, object], line: str) -> None:
    """The JSON with --json, the operator's line without."""
    if args.json:
        print_json(data)
    else:
        print(line)


def cmd_calendar(args: argparse.Namespace, config: Config) -> int:
    from console.planning.agenda import export_ics

    ctx = context(config)
    count = export_ics(ctx, Path(args.ics))
    _answer(
        args,
        {"exported": count, "file": args.ics},
        _translator(config)("planning.exported", count=count, path=args.ics),
    )
    return EXIT_OK
