"""The `tocsin` command: the console by default, and the scripting verbs.

Exit status: 0 done, 1 the operation failed, 2 bad usage or bad configuration.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeAlias
from zoneinfo import ZoneInfo

from console.config import Config, ConfigError, load_config
from console.roles import PermissionDenied

if TYPE_CHECKING:
    from console.context import Context
    from console.sending.worker_launch import Launched

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    def __init__(self, message: str, status: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.status = status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tocsin", description="SMS operations console for town halls."
    )
    parser.add_argument(
        "--config",
        help="config file (default: TOCSIN_CONFIG, "
        "/etc/tocsin/config.toml, then the user config dir)",
    )
    sub = parser.add_subparsers(dest="command")

    demo = sub.add_parser("demo", help="open a demo town (temporary SQLite, no config)")
    demo.add_argument("--dir", help="keep the demo town in this folder instead of a temp dir")
    demo.add_argument("--residents", type=int, default=5000)
    demo.add_argument("--seed", type=int, default=1789)
    demo.add_argument("--no-tui", action="store_true", help="build the town, print its path")

    imp = sub.add_parser("import", help="import residents")
    imp_sub = imp.add_subparsers(dest="what", required=True)
    contacts = imp_sub.add_parser("contacts", help="import a CSV of residents")
    contacts.add_argument("file")
    contacts.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="FIELD=COLUMN",
        help="override the detected column of a field "
        "(number, name, first_name, zone, groups, notes)",
    )
    contacts.add_argument("--consent", metavar="TOPIC", help="record consent to TOPIC")
    contacts.add_argument("--source", help="where that consent comes from")
    contacts.add_argument("--proof", default="", help="proof reference of that consent")
    contacts.add_argument("--text-version", default="", help="consent text version")
    contacts.add_argument("--rejects", metavar="FILE", help="write rejected rows to FILE")
    contacts.add_argument("--dry-run", action="store_true", help="check only, write nothing")
    contacts.add_argument("--json", action="store_true", help="print the report as JSON")

    exp = sub.add_parser("export", help="export residents")
    exp_sub = exp.add_subparsers(dest="what", required=True)
    exp_contacts = exp_sub.add_parser("contacts", help="export contacts as CSV")
    exp_contacts.add_argument("-o", "--output", help="file (default: standard output)")

    contact = sub.add_parser("contact", help="add, edit or erase one contact")
    contact_sub = contact.add_subparsers(dest="action", required=True)
    add = contact_sub.add_parser("add")
    add.add_argument("number")
    edit = contact_sub.add_parser("edit")
    edit.add_argument("id", type=int)
    edit.add_argument("--number")
    for p in (add, edit):
        p.add_argument("--name")
        p.add_argument("--zone")
        p.add_argument("--groups", help="comma separated")
        p.add_argument("--notes")
        p.add_argument("--json", action="store_true")
    erase = contact_sub.add_parser("erase", help="erase a contact (RGPD)")
    erase.add_argument("id", type=int)
    erase.add_argument("--yes", action="store_true", help="do not ask")
    erase.add_argument("--json", action="store_true")

    consent = sub.add_parser("consent", help="record a consent decision")
    consent.add_argument("action", choices=["grant", "withdraw"])
    consent.add_argument("contact", help="contact id or phone number")
    consent.add_argument("--topic", required=True)
    consent.add_argument("--source", required=True)
    consent.add_argument("--proof", default="")
    consent.add_argument("--text-version", default="")
    consent.add_argument("--at", help="when it happened (ISO date/time, town time zone)")
    consent.add_argument("--json", action="store_true")

    send = sub.add_parser("send", help="create a campaign and queue it for the worker")
    send.add_argument("--topic", required=True)
    who = send.add_mutually_exclusive_group(required=True)
    who.add_argument("--all", action="store_true", help="every resident of the topic")
    who.add_argument("--zone", action="append", metavar="ZONE", help="repeatable")
    who.add_argument("--group", action="append", metavar="GROUP", help="repeatable")
    who.add_argument("--to", nargs="+", metavar="NUMBER")
    send.add_argument("--text", required=True)
    send.add_argument("--sender", help="sender ID (default: town.sender_id)")
    send.add_argument(
        "--emergency", action="store_true", help="top priority, outside quiet hours (alerter role)"
    )
    send.add_argument("--at", help="start time (ISO, town time zone)")
    send.add_argument("--yes", action="store_true", help="do not ask to type the recipient count")
    send.add_argument("--json", action="store_true")

    message = sub.add_parser("message", help="what a message costs (no database needed)")
    message_sub = message.add_subparsers(dest="action", required=True)
    check = message_sub.add_parser(
        "check",
        help="characters, encoding, SMS parts, characters forcing UCS-2 and the GSM-7 suggestion",
    )
    check.add_argument("text", help='the message; "-" reads it from standard input')
    check.add_argument("--topic", help="append that topic's STOP mention first, as a send does")
    check.add_argument("--json", action="store_true")

    campaign = sub.add_parser("campaign", help="list, show or act on campaigns")
    campaign_sub = campaign.add_subparsers(dest="action", required=True)
    listing = campaign_sub.add_parser("list")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true")
    for name in ("show", "pause", "resume", "cancel"):
        verb = campaign_sub.add_parser(name)
        verb.add_argument("id", type=int)
        verb.add_argument("--json", action="store_true")
    resolve = campaign_sub.add_parser("resolve", help="decide what uncertain messages become")
    resolve.add_argument("id", type=int)
    resolve.add_argument("--resend", action="store_true", help="send them again")
    resolve.add_argument("--mark-sent", action="store_true", help="count them as sent")
    resolve.add_argument("--json", action="store_true")
    retry = campaign_sub.add_parser("retry", help="send the failed messages again")
    retry.add_argument("id", type=int)
    retry.add_argument("--json", action="store_true")

    status = sub.add_parser("status", help="the queue, in flight, rate and workers")
    status.add_argument("--json", action="store_true")

    sub.add_parser("worker", help="run the sender (long-lived; see contrib/)")

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="action", required=True)
    db_sub.add_parser("upgrade", help="apply migrations (PostgreSQL; SQLite does it itself)")

    audit = sub.add_parser("audit", help="audit trail")
    audit_sub = audit.add_subparsers(dest="action", required=True)
    verify = audit_sub.add_parser("verify", help="check both hash chains")
    verify.add_argument("--json", action="store_true")
    return parser


# Opens the Textual console on a context: given by the entry point that owns the UI
# (screens.entry), so nothing under console/ imports Textual.
ConsoleRunner: TypeAlias = "Callable[[Context, Callable[[], Launched] | None], None]"
_run_console: ConsoleRunner | None = None


def main(argv: Sequence[str] | None = None, *, run_console: ConsoleRunner | None = None) -> int:
    global _run_console
    _run_console = run_console
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            return _demo(args)
        config = load_config(args.config)
        handler = _HANDLERS.get(args.command or "tui")
        assert handler is not None
        return handler(args, config)
    except ConfigError as exc:
        print(f"tocsin: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CliError as exc:
        print(f"tocsin: {exc}", file=sys.stderr)
        return exc.status
    except PermissionDenied as exc:
        print(f"tocsin: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


def _context(config: Config) -> Any:
    from console.bootstrap import StartupError, build_context
    from console.consent.suppression import HashKeyError

    try:
        return build_context(config)
    except (StartupError, HashKeyError) as exc:
        raise CliError(str(exc)) from exc


def _console_runner() -> ConsoleRunner:
    if _run_console is None:
        raise CliError(
            "the console is not available from this entry point: run `tocsin`", EXIT_USAGE
        )
    return _run_console


def _tui(args: argparse.Namespace, config: Config) -> int:
    from console.config import data_dir
    from console.sending.worker_launch import start_detached, worker_command

    def launch_worker() -> Launched:
        return start_detached(worker_command(args.config), data_dir() / "worker.log")

    _console_runner()(_context(config), launch_worker)
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from console.demo import build_demo_town

    town = build_demo_town(
        Path(args.dir) if args.dir else None, residents=args.residents, seed=args.seed
    )
    if args.no_tui:
        print(town.database_url)
        return EXIT_OK
    run_console = _console_runner()
    from console.sending.demo_worker import DemoWorker
    from console.sending.worker_launch import Launched
    from console.sending.worker_main import quiet_http_logs

    # The console owns the terminal: the worker's log goes to a file of the town.
    handler = logging.FileHandler(town.folder / "worker.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    tocsin_log = logging.getLogger("tocsin")
    tocsin_log.addHandler(handler)
    tocsin_log.setLevel(logging.INFO)
    tocsin_log.propagate = False
    quiet_http_logs()
    worker = DemoWorker(town.context).start()

    def restart_worker() -> Launched:
        # The demo's worker lives in this process: it stops with the console anyway.
        nonlocal worker
        worker.stop()
        worker = DemoWorker(town.context).start()
        return Launched(os.getpid(), town.folder / "worker.log")

    try:
        run_console(town.context, restart_worker)
    finally:
        worker.stop()
    if worker.error:
        print(f"The demo's worker did not run: {worker.error}", file=sys.stderr)
    print(f"Demo town kept in {town.folder}", file=sys.stderr)
    return EXIT_OK


def _import(args: argparse.Namespace, config: Config) -> int:
    from console.contacts.importer import ImportFailed, ImportOptions, import_contacts

    mapping: dict[str, str] = {}
    for item in args.map:
        field, sep, column = item.partition("=")
        if not sep or not field or not column:
            raise CliError(f"--map {item!r}: expected FIELD=COLUMN", EXIT_USAGE)
        mapping[field.strip()] = column.strip()
    if args.consent and not args.source:
        raise CliError("--consent needs --source (where the consent comes from)", EXIT_USAGE)
    ctx = _context(config)
    options = ImportOptions(
        mapping=mapping,
        consent_topic=args.consent,
        consent_source=args.source or "",
        consent_proof=args.proof,
        consent_text_version=args.text_version,
        dry_run=args.dry_run,
    )
    try:
        report = import_contacts(ctx, Path(args.file), options)
    except ImportFailed as exc:
        raise CliError(str(exc)) from exc
    except ValueError as exc:  # bad mapping or consent options
        raise CliError(str(exc), EXIT_USAGE) from exc
    if args.rejects:
        report.write_rejects(Path(args.rejects))
    if args.json:
        _print_json(report.to_json())
    else:
        from console.text import visible

        for line in report.summary_lines(config.console.language):
            print(visible(line))
    return EXIT_OK


def _export(args: argparse.Namespace, config: Config) -> int:
    from console.contacts.exporter import export_contacts, export_file

    ctx = _context(config)
    if args.output:
        count = export_file(ctx, Path(args.output))
        print(f"{count} contacts -> {args.output}", file=sys.stderr)
    else:
        export_contacts(ctx, sys.stdout)
    return EXIT_OK


def _contact(args: argparse.Namespace, config: Config) -> int:
    from console.contacts.service import (
        ContactError,
        ContactInput,
        add_contact,
        erase_contact,
        get_contact,
        split_groups,
        update_contact,
    )

    ctx = _context(config)
    try:
        if args.action == "add":
            contact = add_contact(
                ctx,
                ContactInput(
                    number=args.number,
                    name=args.name or "",
                    zone=args.zone or "",
                    groups=split_groups(args.groups or ""),
                    notes=args.notes or "",
                    source="cli",
                ),
            )
        elif args.action == "edit":
            old = get_contact(ctx, args.id)
            contact = update_contact(
                ctx,
                args.id,
                ContactInput(
                    number=args.number or old.number or "",
                    name=old.name if args.name is None else args.name,
                    zone=old.zone if args.zone is None else args.zone,
                    groups=split_groups(old.groups if args.groups is None else args.groups),
                    notes=old.notes if args.notes is None else args.notes,
                ),
            )
        else:
            if not args.yes:
                _confirm_count(1, sys.stdin, sys.stderr)
            result = erase_contact(ctx, args.id)
            out = {"id": result.contact_id, "erased": True, "suppressed": result.suppressed}
            _print_json(out) if args.json else print(f"contact #{result.contact_id} erased")
            return EXIT_OK
    except ContactError as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        _print_json(
            {
                "id": contact.id,
                "number": contact.number,
                "name": contact.name,
                "zone": contact.zone,
                "groups": contact.groups.split(",") if contact.groups else [],
                "sendable": contact.sendable,
                "number_kind": contact.number_kind,
            }
        )
    else:
        print(f"contact #{contact.id} {contact.number} saved")
    return EXIT_OK


def _confirm_count(count: int, stdin: TextIO, stderr: TextIO) -> None:
    _confirm_typed(count, "contacts to erase", stdin, stderr)


def _confirm_typed(count: int, what: str, stdin: TextIO, stderr: TextIO) -> None:
    """Mass and destructive actions: the operator types the count they will affect."""
    stderr.write(f"Type the number of {what} ({count}) to confirm: ")
    stderr.flush()
    if stdin.readline().strip() != str(count):
        raise CliError("not confirmed; nothing done")


def _consent(args: argparse.Namespace, config: Config) -> int:
    from console.consent.ledger import ConsentError, ConsentRequest, record_consent
    from console.contacts.service import find_by_number

    ctx = _context(config)
    contact_id: int | None = (
        int(args.contact) if args.contact.isdigit() and len(args.contact) < 9 else None
    )
    if contact_id is None:
        found = find_by_number(ctx, args.contact)
        if found is None:
            raise CliError(f"no contact with number {args.contact}")
        contact_id = found.id
    occurred = _parse_when(args.at, config) if args.at else None
    assert contact_id is not None
    try:
        event = record_consent(
            ctx,
            ConsentRequest(
                contact_id=contact_id,
                topic=args.topic,
                action=args.action,
                source=args.source,
                proof_ref=args.proof,
                text_version=args.text_version,
                occurred_at=occurred,
            ),
        )
    except ConsentError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    if args.json:
        _print_json(
            {
                "contact_id": contact_id,
                "topic": event.topic,
                "action": event.action,
                "seq": event.seq,
            }
        )
    else:
        print(f"contact #{contact_id}: {event.topic} {event.action} recorded (#{event.seq})")
    return EXIT_OK


def _parse_when(text: str, config: Config) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CliError(
            f"--at {text!r}: expected an ISO date such as 2026-03-14 or 2026-03-14T09:30",
            EXIT_USAGE,
        ) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo(config.town.timezone))
    return when


def _send(args: argparse.Namespace, config: Config) -> int:
    from console.errors import TocsinError
    from console.sending.campaigns import (
        Audience,
        CampaignRequest,
        create_campaign,
        preview_campaign,
    )

    ctx = _context(config)
    request = CampaignRequest(
        topic=args.topic,
        text=args.text,
        sender_id=args.sender or config.town.sender_id,
        audience=Audience(
            everyone=args.all,
            zones=tuple(args.zone or ()),
            groups=tuple(args.group or ()),
            numbers=tuple(args.to or ()),
        ),
        kind="emergency" if args.emergency else "planned",
        start_at=_parse_when(args.at, config) if args.at else None,
    )
    try:
        if not args.yes:
            from console.composing.composer import analyse, estimate_cost

            preview = preview_campaign(ctx, request)
            sys.stderr.write(
                f"{preview.recipients} recipient(s), {sum(preview.skipped.values())}"
                f" skipped {preview.skipped or ''}\n"
            )
            sms = analyse(preview.text)
            cost = estimate_cost(
                sms.segments, preview.recipients, config.provider.price_per_segment
            )
            sys.stderr.write(
                f"{sms.segments} SMS ({sms.encoding}) each, estimated cost {cost:.2f}\n"
            )
            _confirm_typed(preview.recipients, "recipients to send to", sys.stdin, sys.stderr)
        result = create_campaign(ctx, request)
    except TocsinError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    if args.json:
        _print_json(
            {"campaign_id": result.campaign_id, "counts": result.counts, "skipped": result.skipped}
        )
    else:
        print(
            f"campaign #{result.campaign_id}: {result.counts['queued']} queued, "
            f"{result.counts['skipped']} skipped"
        )
    from console.sending.workers import ALIVE_WITHIN_S, alive_workers

    if result.counts["queued"] and not alive_workers(ctx.engine, ctx.clock.now(), ALIVE_WITHIN_S):
        # Queued is not sent: say so at once (stderr, so --json stays clean).
        sys.stderr.write(
            "tocsin: warning: no worker is alive, nothing will go out until "
            "one runs (systemctl start tocsin-worker, or tocsin worker)\n"
        )
    return EXIT_OK


def _message(args: argparse.Namespace, config: Config) -> int:
    from console.composing.composer import (
        analyse,
        describe_character,
        estimate_cost,
        unfilled_placeholders,
        with_stop_mention,
    )
    from console.i18n import Translator
    from console.text import visible

    # From stdin, the newline that ends the last line is the shell's, not the message's.
    text = sys.stdin.read().rstrip("\r\n") if args.text == "-" else args.text
    mention = ""
    if args.topic is not None:
        topic = config.topics.get(args.topic)
        if topic is None:
            raise CliError(
                f"unknown topic {args.topic!r} (topics: {', '.join(config.topics)})", EXIT_USAGE
            )
        mention = topic.stop_mention
        text = with_stop_mention(text, mention)
    analysis = analyse(text)
    if args.json:
        data = analysis.to_json()
        if args.topic is not None:
            data["topic"] = args.topic
        _print_json(data)
        return EXIT_OK
    t = Translator(config.console.language)
    lines = []
    if args.topic is not None and mention and text.endswith(mention.strip()):
        lines.append(
            t("message.topic", topic=config.topics[args.topic].label, mention=mention.strip())
        )
    lines += [
        t("message.characters", count=analysis.characters),
        t("message.encoding", encoding=analysis.encoding),
        t("message.units", units=analysis.units, per_segment=analysis.per_segment),
        t("message.segments", segments=analysis.segments, remaining=analysis.remaining),
    ]
    if analysis.ucs2_characters:
        lines.append(
            t(
                "message.ucs2",
                characters=", ".join(describe_character(c) for c in analysis.ucs2_characters),
            )
        )
    if analysis.gsm7_suggestion is not None:
        lines.append(
            t(
                "message.suggestion",
                segments=analysis.suggestion_segments,
                units=analysis.suggestion_units,
            )
        )
        lines += [f"  {line}" for line in analysis.gsm7_suggestion.split("\n")]
    unfilled = unfilled_placeholders(text)
    if unfilled:
        lines.append(
            t("message.unfilled", placeholders=", ".join(f"{{{name}}}" for name in unfilled))
        )
    cost = f"{estimate_cost(analysis.segments, 1, config.provider.price_per_segment):.2f}"
    lines.append(t("message.cost", cost=cost.replace(".", ",") if t.language == "fr" else cost))
    for line in lines:
        print(visible(line))
    return EXIT_OK


def _campaign(args: argparse.Namespace, config: Config) -> int:
    from console.errors import TocsinError
    from console.sending.campaign_ops import (
        change_campaign,
        get_campaign,
        list_campaigns,
        resolve_uncertain,
        retry_failed,
    )

    ctx = _context(config)
    try:
        if args.action == "list":
            views = list_campaigns(ctx, args.limit)
            if args.json:
                _print_json([v.to_json() for v in views])
            for view in views if not args.json else ():
                print(
                    f"#{view.id} {view.kind:<9} {view.status:<9} {view.topic:<10} "
                    f"{_counts_line(view.counts)}"
                )
            return EXIT_OK
        if args.action == "resolve":
            if args.resend == args.mark_sent:
                raise CliError("resolve needs --resend or --mark-sent", EXIT_USAGE)
            count = resolve_uncertain(ctx, args.id, "resend" if args.resend else "mark-sent")
            view = get_campaign(ctx, args.id)
            _print_json({"resolved": count, **view.to_json()}) if args.json else print(
                f"campaign #{args.id}: {count} uncertain message(s) "
                f"{'re-queued' if args.resend else 'marked sent'}"
            )
            return EXIT_OK
        if args.action == "retry":
            count = retry_failed(ctx, args.id)
            view = get_campaign(ctx, args.id)
            _print_json({"retried": count, **view.to_json()}) if args.json else print(
                f"campaign #{args.id}: {count} failed message(s) re-queued"
            )
            return EXIT_OK
        view = (
            get_campaign(ctx, args.id)
            if args.action == "show"
            else change_campaign(ctx, args.id, args.action)
        )
    except TocsinError as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        _print_json(view.to_json())
    else:
        print(
            f"#{view.id} {view.kind} {view.status}"
            + (f" ({view.status_reason})" if view.status_reason else "")
        )
        print(f"  topic {view.topic}, sender {view.sender_id}, by {view.created_by}")
        print(f"  {_counts_line(view.counts)}")
    return EXIT_OK


def _counts_line(counts: dict[str, int]) -> str:
    return " ".join(f"{state}={count}" for state, count in counts.items() if count)


def _status(args: argparse.Namespace, config: Config) -> int:
    from console.sending.campaign_ops import queue_status

    status = queue_status(_context(config))
    if args.json:
        _print_json(status)
    else:
        print(f"queue: {_counts_line(status['messages']) or 'empty'}")
        print(
            f"in flight: {status['in_flight']}, rate: {status['rate_per_second']}/s, "
            f"active campaigns: {status['active_campaigns']}, "
            f"no report after {config.worker.report_timeout_minutes} min: "
            f"{status['no_report']}"
        )
        if status["worker_alive"]:
            for worker in status["workers"]:
                print(
                    f"worker {worker['owner']} ({worker['provider']}), "
                    f"last seen {worker['last_seen']}"
                )
        else:
            print("NO WORKER ALIVE: nothing is being sent (start `tocsin worker`)")
    return EXIT_OK


def _worker(args: argparse.Namespace, config: Config) -> int:
    from console.sending.worker import WorkerBusy
    from console.sending.worker_main import run_worker

    ctx = _context(config)
    try:
        run_worker(ctx)
    except WorkerBusy as exc:
        raise CliError(str(exc)) from exc
    except RuntimeError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    return EXIT_OK


def _db(args: argparse.Namespace, config: Config) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from console.bootstrap import engine_label
    from console.config import database_url
    from storage.engine import make_engine
    from storage.migrate import current_revision, head_revision, upgrade

    url = database_url(config)
    engine = make_engine(url)
    try:
        upgrade(engine)
    except SQLAlchemyError as exc:
        raise CliError(f"database {engine_label(url)}: {exc}") from exc
    print(f"database at schema {current_revision(engine)} (head {head_revision()})")
    return EXIT_OK


def _audit(args: argparse.Namespace, config: Config) -> int:
    from console.audit import verify_chains

    ctx = _context(config)
    results = verify_chains(ctx.engine)
    ok = all(not problems for _, problems in results.values())
    if args.json:
        _print_json(
            {
                "ok": ok,
                "chains": {
                    name: {
                        "entries": count,
                        "problems": [{"seq": p.seq, "reason": p.reason} for p in problems],
                    }
                    for name, (count, problems) in results.items()
                },
            }
        )
    else:
        for name, (count, problems) in results.items():
            state = "ok" if not problems else f"{len(problems)} problem(s)"
            print(f"{name}: {count} entries, {state}")
            for problem in problems:
                print(f"  #{problem.seq}: {problem.reason}")
    return EXIT_OK if ok else EXIT_FAILED


def _print_json(data: object) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True))


_HANDLERS: dict[str, Callable[[argparse.Namespace, Config], int]] = {
    "tui": _tui,
    "import": _import,
    "export": _export,
    "contact": _contact,
    "consent": _consent,
    "db": _db,
    "send": _send,
    "message": _message,
    "campaign": _campaign,
    "status": _status,
    "worker": _worker,
    "audit": _audit,
}
