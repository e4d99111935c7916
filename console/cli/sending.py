"""Sends from scripts: send, campaign list|show|pause|resume|cancel|resolve|retry,
status, worker."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from console.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    audience_from_args,
    confirm_typed,
    context,
    parse_when,
    print_json,
    reading_database,
    translator,
)
from console.config import Config
from console.i18n import Translator
from console.sending.states import MessageState
from console.text import visible

if TYPE_CHECKING:
    from storage.faults import Fault


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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

    send.set_defaults(handler=cmd_send)
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

    campaign.set_defaults(handler=cmd_campaign)
    status = sub.add_parser("status", help="the queue, in flight, rate and workers")
    status.add_argument("--json", action="store_true")

    status.set_defaults(handler=cmd_status)
    worker = sub.add_parser("worker", help="run the sender (long-lived; see contrib/)")

    worker.set_defaults(handler=cmd_worker)


def cmd_send(args: argparse.Namespace, config: Config) -> int:
    from console.errors import TocsinError
    from console.sending.campaigns import (
        CampaignRequest,
        create_campaign,
        preview_campaign,
    )

    ctx = context(config)
    t = translator(config)
    request = CampaignRequest(
        topic=args.topic,
        text=args.text,
        sender_id=args.sender or config.town.sender_id,
        audience=audience_from_args(args),
        kind="emergency" if args.emergency else "planned",
        start_at=parse_when(args.at, config) if args.at else None,
    )
    try:
        if not args.yes:
            from console.composing.composer import analyse, estimate_cost

            preview = preview_campaign(ctx, request)
            details = preview.skipped or ""
            skipped = sum(preview.skipped.values())
            sys.stderr.write(
                t(
                    "cli.preview_recipients",
                    recipients=preview.recipients,
                    skipped=skipped,
                    details=details,
                )
                + "\n"
            )
            sms = analyse(preview.text)
            cost = estimate_cost(
                sms.segments, preview.recipients, config.provider.price_per_segment
            )
            sys.stderr.write(
                t(
                    "cli.preview_sms",
                    segments=sms.segments,
                    encoding=sms.encoding,
                    cost=money(t, cost),
                )
                + "\n"
            )
            confirm_typed(t, preview.recipients, t("cli.what_recipients"), sys.stdin, sys.stderr)
        result = create_campaign(ctx, request, on_wait=_say_waiting(config))
    except TocsinError as exc:
        raise CliError(t.error(exc), EXIT_USAGE) from exc
    if args.json:
        print_json(
            {"campaign_id": result.campaign_id, "counts": result.counts, "skipped": result.skipped}
        )
    else:
        print(
            t(
                "cli.campaign_created",
                id=result.campaign_id,
                queued=result.counts[MessageState.QUEUED],
                skipped=result.counts[MessageState.SKIPPED],
            )
        )
    from console.sending.workers import ALIVE_WITHIN_S, alive_workers

    if result.counts[MessageState.QUEUED] and not alive_workers(
        ctx.engine, ctx.clock.now(), ALIVE_WITHIN_S
    ):
        # Queued is not sent: say so at once (stderr, so --json stays clean).
        sys.stderr.write(f"tocsin: {t('cli.no_worker_warning')}\n")
    return EXIT_OK


def cmd_campaign(args: argparse.Namespace, config: Config) -> int:
    from console.errors import TocsinError
    from console.sending.campaign_ops import (
        change_campaign,
        get_campaign,
        list_campaigns,
        resolve_uncertain,
        retry_failed,
    )

    ctx = context(config)
    t = translator(config)
    try:
        if args.action == "list":
            views = list_campaigns(ctx, args.limit)
            if args.json:
                print_json([v.to_json() for v in views])
                return EXIT_OK
            for view in views:
                print(
                    f"#{view.id} {view.kind:<9} {view.status:<9} {view.topic:<10} "
                    f"{counts_line(view.counts)}"
                )
            return EXIT_OK
        if args.action == "resolve":
            if args.resend == args.mark_sent:
                raise CliError(t("cli.resolve_needs"), EXIT_USAGE)
            count = resolve_uncertain(ctx, args.id, "resend" if args.resend else "mark-sent")
            view = get_campaign(ctx, args.id)
            if args.json:
                print_json({"resolved": count, **view.to_json()})
            else:
                key = "cli.resolved_resend" if args.resend else "cli.resolved_marked"
                print(t(key, id=args.id, count=count))
            return EXIT_OK
        if args.action == "retry":
            count = retry_failed(ctx, args.id)
            view = get_campaign(ctx, args.id)
            if args.json:
                print_json({"retried": count, **view.to_json()})
            else:
                print(t("cli.retried", id=args.id, count=count))
            return EXIT_OK
        view = (
            get_campaign(ctx, args.id)
            if args.action == "show"
            else change_campaign(ctx, args.id, args.action)
        )
    except TocsinError as exc:
        raise CliError(t.error(exc)) from exc
    if args.json:
        print_json(view.to_json())
    else:
        # The reason is the provider's words: shown escaped, never played.
        print(
            f"#{view.id} {view.kind} {view.status}"
            + (f" ({visible(view.status_reason)})" if view.status_reason else "")
        )
        print(
            t("cli.campaign_details", topic=view.topic, sender=view.sender_id, by=view.created_by)
        )
        print(f"  {counts_line(view.counts)}")
        if view.stop is not None:
            print(t(f"cli.campaign_stop_{view.stop.change}", **view.stop.to_json()))
    return EXIT_OK


def _say_waiting(config: Config) -> Callable[[Fault], None]:
    """Tell the operator, once per kind of trouble, that the alert is waiting."""
    t = translator(config)
    said: set[Fault] = set()

    def say(fault: Fault) -> None:
        if fault not in said:
            said.add(fault)
            sys.stderr.write(f"tocsin: {t('fault.alert_waits.' + fault)}\n")
            sys.stderr.flush()

    return say


def decimal(t: Translator, value: float, text: str = "") -> str:
    """A figure with the language's decimal mark (`text`: already formatted)."""
    text = text or str(value)
    return text.replace(".", ",") if t.language == "fr" else text


def money(t: Translator, amount: float) -> str:
    return decimal(t, amount, f"{amount:.2f}")


def counts_line(counts: dict[str, int]) -> str:
    # Ledger state names, as `--json` keys them.
    return " ".join(f"{state}={count}" for state, count in counts.items() if count)


def cmd_status(args: argparse.Namespace, config: Config) -> int:
    from console.clock import SystemClock
    from console.sending.status import read_queue_status

    # A read-only verb, asked every few seconds by scripts: it reads without the
    # ORM when the start-up has nothing to do (console.bootstrap.reading_database).
    database = reading_database(config)
    status = read_queue_status(database, SystemClock().now(), config.worker.report_timeout_minutes)
    if args.json:
        print_json(status)
        return EXIT_OK
    t = translator(config)
    print(t("cli.queue", counts=counts_line(status["messages"]) or t("cli.queue_empty")))
    print(
        t(
            "cli.status",
            in_flight=status["in_flight"],
            rate=decimal(t, status["rate_per_second"]),
            active=status["active_campaigns"],
            minutes=config.worker.report_timeout_minutes,
            no_report=status["no_report"],
        )
    )
    if status["database_fault"]:
        print(t(f"fault.{status['database_fault']}"))
    if status["worker_alive"]:
        for worker in status["workers"]:
            print(
                t(
                    "cli.worker",
                    owner=worker["owner"],
                    provider=worker["provider"],
                    last_seen=worker["last_seen"],
                )
            )
    else:
        print(t("cli.no_worker"))
    return EXIT_OK


def cmd_worker(args: argparse.Namespace, config: Config) -> int:
    from console.sending.worker import DatabaseGone, WorkerBusy
    from console.sending.worker_main import run_worker

    ctx = context(config)
    try:
        run_worker(ctx)
    except (WorkerBusy, DatabaseGone) as exc:
        raise CliError(str(exc)) from exc
    except RuntimeError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    return EXIT_OK
