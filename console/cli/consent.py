"""Consent from scripts: tocsin consent grant|withdraw|coverage|report|access|
withdrawals|retention|review|classify, and the rented lists: tocsin list add|show|list."""

from __future__ import annotations

import argparse
import sys
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import IO, TYPE_CHECKING

from console.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    confirm_typed,
    context,
    parse_when,
    print_json,
    translator,
)
from console.config import Config

if TYPE_CHECKING:
    from console.context import Context


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    consent = sub.add_parser("consent", help="consent decisions, audit and reports")
    verbs = consent.add_subparsers(dest="action", required=True)
    for action in ("grant", "withdraw"):
        one = verbs.add_parser(action, help=f"record a {action}")
        one.add_argument("contact", help="contact id or phone number")
        one.add_argument("--topic", required=True)
        one.add_argument("--source", required=True)
        one.add_argument("--proof", default="")
        one.add_argument("--text-version", default="")
        one.add_argument("--at", help="when it happened (ISO date/time, town time zone)")
        one.add_argument("--json", action="store_true")
        one.set_defaults(handler=cmd_consent)

    cov = verbs.add_parser("coverage", help="residents per topic and consent state")
    cov.add_argument("--by-zone", action="store_true", help="one matrix per quartier")
    cov.add_argument("--at", help="the state on a past date, replayed from the ledger")
    cov.add_argument("--json", action="store_true")
    cov.set_defaults(handler=cmd_coverage)

    rep = verbs.add_parser("report", help="the consent register of a topic (for the DPO)")
    rep.add_argument("--topic", required=True)
    rep.add_argument("--at", help="the register on a past date (ISO date, town time zone)")
    rep.add_argument("--format", choices=["csv", "pdf"], default="csv")
    rep.add_argument("-o", "--output", help="file (default: standard output, CSV only)")
    rep.set_defaults(handler=cmd_report)

    acc = verbs.add_parser("access", help="everything held on one resident (RGPD art. 15)")
    acc.add_argument("contact", help="contact id or phone number")
    acc.add_argument("--format", choices=["pdf", "json"], default="json")
    acc.add_argument("-o", "--output", help="file (default: standard output, JSON only)")
    acc.set_defaults(handler=cmd_access)

    wd = verbs.add_parser("withdrawals", help="the opt-out log")
    wd.add_argument("--since", required=True, help="ISO date (town time zone)")
    wd.add_argument("--format", choices=["csv"], default="csv")
    wd.add_argument("-o", "--output", help="file (default: standard output)")
    wd.set_defaults(handler=cmd_withdrawals)

    ret = verbs.add_parser("retention", help="residents due for erasure (retention policy)")
    ret.add_argument("--apply", action="store_true", help="erase them (RGPD erasure path)")
    ret.add_argument("--yes", action="store_true", help="with --apply: do not ask")
    ret.add_argument("--json", action="store_true")
    ret.set_defaults(handler=cmd_retention)

    rev = verbs.add_parser("review", help="inbound replies waiting for an operator")
    rev.add_argument("--json", action="store_true")
    rev.set_defaults(handler=cmd_review)

    cls = verbs.add_parser("classify", help="classify a reply: withdraw topics, or nothing")
    cls.add_argument("id", type=int, help="the reply's id (tocsin consent review)")
    which = cls.add_mutually_exclusive_group(required=True)
    which.add_argument("--withdraw", metavar="TOPICS", help="comma separated topics")
    which.add_argument("--all", action="store_true", help="every topic, as a STOP")
    which.add_argument("--nothing", action="store_true", help="no withdrawal")
    cls.add_argument("--json", action="store_true")
    cls.set_defaults(handler=cmd_classify)

    lists = sub.add_parser("list", help="rented and third-party lists' provenance")
    list_verbs = lists.add_subparsers(dest="action", required=True)
    add = list_verbs.add_parser("add", help="record a list's provenance before importing it")
    add.add_argument("name")
    add.add_argument("--provider", required=True)
    add.add_argument("--contract", required=True, help="contract reference")
    add.add_argument(
        "--consented-on", required=True, help="date the residents consented (ISO date)"
    )
    wording = add.add_mutually_exclusive_group(required=True)
    wording.add_argument("--wording", help="the consent wording residents agreed to")
    wording.add_argument("--wording-file", help="a file holding that wording")
    add.add_argument("--topics", required=True, help="comma separated topics it covers")
    add.add_argument("--proof", required=True, help="the provider's proof file (hashed)")
    add.add_argument("--expiry-months", type=int, help="default: consent.list_expiry_months")
    add.add_argument("--json", action="store_true")
    show = list_verbs.add_parser("show", help="one list with its counts and expiry")
    show.add_argument("name")
    show.add_argument("--json", action="store_true")
    every = list_verbs.add_parser("list", help="every list with its counts and expiry")
    every.add_argument("--json", action="store_true")
    lists.set_defaults(handler=cmd_list)


def resolve_contact(ctx: Context, text: str) -> int:
    from console.contacts.service import find_by_number

    if text.isdigit() and len(text) < 9:
        return int(text)
    found = find_by_number(ctx, text)
    if found is None or found.id is None:
        raise CliError(translator(ctx.config)("cli.no_contact_number", number=text))
    return found.id


def cmd_consent(args: argparse.Namespace, config: Config) -> int:
    from console.consent.ledger import ConsentError, ConsentRequest, record_consent

    ctx = context(config)
    t = translator(config)
    contact_id = resolve_contact(ctx, args.contact)
    occurred = parse_when(args.at, config) if args.at else None
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
        raise CliError(t.error(exc), EXIT_USAGE) from exc
    if args.json:
        print_json(
            {
                "contact_id": contact_id,
                "topic": event.topic,
                "action": event.action,
                "seq": event.seq,
            }
        )
    else:
        print(t(f"cli.consent_{event.action}", id=contact_id, topic=event.topic, seq=event.seq))
    return EXIT_OK


def _day_end(text: str, config: Config, flag: str = "--at") -> object:
    """A date alone means the end of that day (the state "on" it)."""
    from datetime import timedelta

    when = parse_when(text, config)
    if len(text.strip()) == 10:
        when += timedelta(days=1) - timedelta(microseconds=1)
    return when


def cmd_coverage(args: argparse.Namespace, config: Config) -> int:
    from datetime import datetime

    from console.consent.coverage import STATES, coverage, coverage_at

    ctx = context(config)
    t = translator(config)
    if args.at:
        at = _day_end(args.at, config)
        assert isinstance(at, datetime)
        if args.by_zone:
            raise CliError(t("cli.at_not_by_zone"), EXIT_USAGE)
        result = [coverage_at(ctx, at)]
    else:
        result = coverage(ctx, by_zone=args.by_zone)
    if args.json:
        print_json(
            [{"zone": c.zone, "topics": [row.to_json() for row in c.topics]} for c in result]
            if args.by_zone
            else [row.to_json() for row in result[0].topics]
        )
        return EXIT_OK
    from console.text import visible

    for cov in result:
        if args.by_zone:
            print(f"[{visible(cov.zone) or '-'}]")
        print(f"{'topic':<14}" + "".join(f"{s:>12}" for s in STATES) + f"{'reachable':>12}")
        for topic in cov.topics:
            print(
                f"{topic.topic:<14}"
                + "".join(f"{topic.counts[s]:>12}" for s in STATES)
                + f"{topic.share:>11.1%}"
            )
    return EXIT_OK


def _text_out(path: str | None) -> AbstractContextManager[IO[str]]:
    if path:
        return open(path, "w", encoding="utf-8-sig", newline="")
    return nullcontext(sys.stdout)


def cmd_report(args: argparse.Namespace, config: Config) -> int:
    from datetime import datetime

    from console.audit import ChainHeadInvalid
    from console.consent.ledger import ConsentError
    from console.consent.reports import write_register_csv, write_register_pdf

    ctx = context(config)
    t = translator(config)
    at = _day_end(args.at, config) if args.at else None
    assert at is None or isinstance(at, datetime)
    try:
        if args.format == "pdf":
            if not args.output:
                raise CliError(t("cli.pdf_needs_output"), EXIT_USAGE)
            count = write_register_pdf(ctx, Path(args.output), args.topic, at)
            print(t("cli.register_written", count=count, file=args.output), file=sys.stderr)
        else:
            with _text_out(args.output) as out:
                count = write_register_csv(ctx, out, args.topic, at)
            if args.output:
                print(t("cli.register_written", count=count, file=args.output), file=sys.stderr)
    except ConsentError as exc:
        raise CliError(t.error(exc), EXIT_USAGE) from exc
    except ChainHeadInvalid as exc:
        raise CliError(t.error(exc)) from exc
    return EXIT_OK


def cmd_access(args: argparse.Namespace, config: Config) -> int:
    from console.audit import ChainHeadInvalid
    from console.consent.journal import NoSuchContact
    from console.consent.reports import access_data, write_access_pdf

    ctx = context(config)
    t = translator(config)
    contact_id = resolve_contact(ctx, args.contact)
    try:
        if args.format == "pdf":
            if not args.output:
                raise CliError(t("cli.pdf_needs_output"), EXIT_USAGE)
            write_access_pdf(ctx, Path(args.output), contact_id)
            print(t("cli.access_written", id=contact_id, file=args.output), file=sys.stderr)
        elif args.output:
            from console.cli.terminal import json_text

            Path(args.output).write_text(json_text(access_data(ctx, contact_id)) + "\n")
        else:
            print_json(access_data(ctx, contact_id))
    except NoSuchContact as exc:
        raise CliError(t("error.no_contact", id=contact_id)) from exc
    except ChainHeadInvalid as exc:
        raise CliError(t.error(exc)) from exc
    return EXIT_OK


def cmd_withdrawals(args: argparse.Namespace, config: Config) -> int:
    from console.consent.reports import write_withdrawals_csv

    ctx = context(config)
    t = translator(config)
    since = parse_when(args.since, config)
    with _text_out(args.output) as out:
        count = write_withdrawals_csv(ctx, out, since)
    if args.output:
        print(t("cli.withdrawals_written", count=count, file=args.output), file=sys.stderr)
    return EXIT_OK


def cmd_retention(args: argparse.Namespace, config: Config) -> int:
    from console.consent.lists import expire_lists
    from console.consent.retention import apply_retention, schedule
    from console.text import visible

    ctx = context(config)
    t = translator(config)
    due = schedule(ctx)
    lapsed = expire_lists(ctx, apply=False)
    if args.apply:
        if not args.yes and due:
            confirm_typed(t, len(due), t("cli.what_retention"), sys.stdin, sys.stderr)
        lapsed = expire_lists(ctx, apply=True)
        due = apply_retention(ctx)
    if args.json:
        print_json(
            {
                "applied": bool(args.apply),
                "due": [d.to_json() for d in due],
                "count": len(due),
                "expired_lists": lapsed,
            }
        )
        return EXIT_OK
    for d in due:
        print(
            t(
                "cli.retention_line",
                id=d.contact_id,
                name=visible(d.name),
                last=d.last_interaction.date().isoformat(),
                due=d.due_at.date().isoformat(),
            )
        )
    key = "cli.retention_erased" if args.apply else "cli.retention_due"
    print(t(key, count=len(due)), file=sys.stderr)
    for name, count in lapsed.items():
        print(t("cli.list_expired", name=name, count=count), file=sys.stderr)
    return EXIT_OK


def cmd_review(args: argparse.Namespace, config: Config) -> int:
    from console.consent.review import replies
    from console.text import visible

    ctx = context(config)
    pending = replies(ctx, limit=10_000)
    if args.json:
        print_json(
            [
                {
                    "id": r.id,
                    "received_at": r.received_at.isoformat(),
                    "contact_id": r.contact_id,
                    "text": r.text,
                }
                for r in pending
            ]
        )
    else:
        for r in pending:
            who = f"#{r.contact_id}" if r.contact_id else "?"
            print(f"{r.id}\t{r.received_at.isoformat()}\t{who}\t{visible(r.text)}")
    return EXIT_OK


def cmd_classify(args: argparse.Namespace, config: Config) -> int:
    from console.consent.review import ReviewError, classify

    ctx = context(config)
    t = translator(config)
    if args.all:
        topics = list(config.topics)
    elif args.nothing:
        topics = []
    else:
        topics = [t.strip() for t in args.withdraw.split(",") if t.strip()]
    try:
        reply = classify(ctx, args.id, topics)
    except ReviewError as exc:
        raise CliError(t.error(exc), EXIT_USAGE) from exc
    if args.json:
        print_json({"id": reply.id, "withdraw": topics, "status": reply.status})
    else:
        print(t("cli.classified", id=reply.id, topics=", ".join(topics) or "-"))
    return EXIT_OK


def cmd_list(args: argparse.Namespace, config: Config) -> int:
    from console.consent.lists import ListError, ListInput, add_list, list_summaries

    ctx = context(config)
    t = translator(config)
    try:
        if args.action == "add":
            if args.wording_file:
                try:
                    wording = Path(args.wording_file).read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    raise CliError(
                        t("cli.wording_unreadable", file=args.wording_file, error=str(exc)),
                        EXIT_USAGE,
                    ) from exc
            else:
                wording = args.wording
            row = add_list(
                ctx,
                ListInput(
                    name=args.name,
                    provider=args.provider,
                    contract_ref=args.contract,
                    consented_at=parse_when(args.consented_on, config),
                    wording=wording,
                    topics=tuple(t.strip() for t in args.topics.split(",") if t.strip()),
                    proof_file=Path(args.proof),
                    expiry_months=args.expiry_months,
                ),
            )
            if args.json:
                print_json({"name": row.name, "proof_sha256": row.proof_sha256})
            else:
                print(t("cli.list_recorded", name=row.name, sha=row.proof_sha256))
            return EXIT_OK
    except ListError as exc:
        raise CliError(t.error(exc), EXIT_USAGE) from exc
    summaries = list_summaries(ctx)
    if args.action == "show":
        found = [s for s in summaries if s.row.name == args.name]
        if not found:
            raise CliError(t("error.list_unknown", name=args.name), EXIT_USAGE)
        summaries = found
    if args.json:
        data = [s.to_json() for s in summaries]
        print_json(data[0] if args.action == "show" else data)
        return EXIT_OK
    from console.text import visible

    for s in summaries:
        print(
            t(
                "cli.list_line",
                name=s.row.name,
                provider=visible(s.row.provider),
                topics=s.row.topics,
                residents=s.residents,
                in_force=s.in_force,
                expires=s.expires_at.date().isoformat(),
                state=t("cli.list_expired_state" if s.expired else "cli.list_valid_state"),
            )
        )
        if args.action == "show":
            print(t("cli.list_contract", contract=visible(s.row.contract_ref)))
            print(t("cli.list_consented", date=s.row.consented_at.date().isoformat()))
            print(t("cli.list_wording", wording=visible(s.row.wording)))
            print(t("cli.list_proof", file=visible(s.row.proof_file), sha=s.row.proof_sha256))
    return EXIT_OK
