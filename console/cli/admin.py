"""The database and the chains: db upgrade|backup|restore, audit verify|head|rekey."""

from __future__ import annotations

import argparse
import sys

from console.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    context,
    print_json,
    translator,
)
from console.config import Config


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = sub.add_parser("db", help="database schema, backup and restore")
    db_sub = db.add_subparsers(dest="action", required=True)
    db_sub.add_parser("upgrade", help="apply migrations (PostgreSQL; SQLite does it itself)")
    db_sub.add_parser(
        "init",
        help="create the database, also where one this installation created has gone",
    )
    backup = db_sub.add_parser("backup", help="write a consistent copy of everything to FILE")
    backup.add_argument("file")
    backup.add_argument("--json", action="store_true")
    restore = db_sub.add_parser("restore", help="load a backup into an empty database")
    restore.add_argument("file")
    restore.add_argument("--json", action="store_true")

    db.set_defaults(handler=cmd_db)
    audit = sub.add_parser("audit", help="audit trail and consent ledger")
    audit_sub = audit.add_subparsers(dest="action", required=True)
    verify = audit_sub.add_parser(
        "verify", help="check both chains, the consent state and the suppression list"
    )
    verify.add_argument(
        "--expect-head",
        action="append",
        default=[],
        metavar="CHAIN:SEQ:HASH",
        help="a head recorded earlier by `audit head`: it must still be in its chain",
    )
    verify.add_argument("--json", action="store_true")
    head = audit_sub.add_parser("head", help="print the chains' heads, to record outside")
    head.add_argument("--json", action="store_true")
    rekey = audit_sub.add_parser(
        "rekey", help="once after upgrading: link the older entries by HMAC (admin)"
    )
    rekey.add_argument("--json", action="store_true")
    audit.set_defaults(handler=cmd_audit)
    service = sub.add_parser(
        "service",
        help="run operators' commands on their behalf (as [service] user; systemd: "
        "tocsin-console.service)",
    )
    service.set_defaults(handler=cmd_service)


def cmd_service(args: argparse.Namespace, config: Config) -> int:
    import logging

    from console.service.server import ServiceError, run_service

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from console.cli import _parser

    try:
        run_service(config, lambda argv: _parser().parse_args(argv))
    except ServiceError as exc:
        raise CliError(str(exc), EXIT_USAGE) from exc
    return EXIT_OK


def cmd_db(args: argparse.Namespace, config: Config) -> int:
    if args.action == "backup":
        return _db_backup(args, config)
    if args.action == "restore":
        return _db_restore(args, config)
    from sqlalchemy.exc import SQLAlchemyError

    from console.bootstrap import StartupError, engine_label, open_engine
    from console.config import database_url
    from storage.migrate import current_revision, head_revision, upgrade

    url = database_url(config)
    try:
        engine = open_engine(config, migrate_sqlite=False, create=args.action == "init")
        created = current_revision(engine) is None
        upgrade(engine)
    except StartupError as exc:
        raise CliError(str(exc)) from exc
    except SQLAlchemyError as exc:
        raise CliError(
            translator(config)("cli.db_error", label=engine_label(url), error=exc)
        ) from exc
    t = translator(config)
    if args.action == "init":
        # The key goes with the database from its first day.
        context(config)
        print(t("cli.db_created" if created else "cli.db_there", label=engine_label(url)))
    print(t("cli.db_schema", current=current_revision(engine), head=head_revision()))
    return EXIT_OK


def _db_backup(args: argparse.Namespace, config: Config) -> int:
    from pathlib import Path

    from console.backup import backup_database
    from console.consent.suppression import key_fingerprint

    ctx = context(config)
    written = backup_database(ctx, Path(args.file))
    if args.json:
        print_json(
            {
                "file": str(written.path),
                "schema": written.schema,
                "created_at": written.created_at.isoformat(),
                "key_fingerprint": key_fingerprint(ctx.hash_key),
                "counts": written.counts,
            }
        )
    else:
        t, counts = translator(config), written.counts
        print(
            t(
                "cli.backup_written",
                path=written.path,
                contacts=counts.get("contact", 0),
                consents=counts.get("consent_event", 0),
                suppressed=counts.get("suppression", 0),
                campaigns=counts.get("campaign", 0),
                messages=counts.get("message", 0),
                audit=counts.get("audit_entry", 0),
            )
        )
        print(t("cli.backup_key", fingerprint=key_fingerprint(ctx.hash_key)))
    return EXIT_OK


def _db_restore(args: argparse.Namespace, config: Config) -> int:
    from pathlib import Path

    from console.backup import restore_database
    from console.errors import TocsinError
    from storage.backup import BackupError

    try:
        restored = restore_database(config, Path(args.file))
    except TocsinError as exc:
        raise CliError(translator(config).error(exc)) from exc
    except BackupError as exc:
        raise CliError(str(exc)) from exc
    if args.json:
        print_json(
            {
                "file": args.file,
                "made_at": restored.created_at,
                "schema": restored.schema,
                "counts": restored.counts,
            }
        )
    else:
        print(
            translator(config)(
                "cli.restored",
                total=sum(restored.counts.values()),
                file=args.file,
                made=restored.created_at,
                engine=restored.engine,
            )
        )
    return EXIT_OK


def cmd_audit(args: argparse.Namespace, config: Config) -> int:
    if args.action == "head":
        return _audit_head(args, config)
    if args.action == "rekey":
        return _audit_rekey(args, config)
    return _audit_verify(args, config)


def _audit_verify(args: argparse.Namespace, config: Config) -> int:
    from console.audit import parse_anchor, verify_chains
    from console.consent.integrity import check_consent_state, check_suppression
    from console.errors import TocsinError

    try:
        anchors = [parse_anchor(text) for text in args.expect_head]
    except TocsinError as exc:
        raise CliError(f"--expect-head {translator(config).error(exc)}", EXIT_USAGE) from exc
    ctx = context(config)
    results = verify_chains(ctx.engine, ctx.hash_key, expect=anchors)
    derived = {
        "consent_state": check_consent_state(ctx.engine),
        "suppression": check_suppression(ctx.engine),
    }
    ok = all(not problems for _, problems in results.values()) and all(
        not check.problems for check in derived.values()
    )
    if args.json:
        print_json(
            {
                "ok": ok,
                "chains": {
                    name: {
                        "entries": count,
                        "problems": [{"seq": p.seq, "reason": p.reason} for p in problems],
                    }
                    for name, (count, problems) in results.items()
                },
                "derived": {
                    name: {
                        "rows": check.checked,
                        "problems": [{"seq": p.seq, "reason": p.reason} for p in check.problems],
                    }
                    for name, check in derived.items()
                },
            }
        )
    else:
        t = translator(config)
        for name, (count, problems) in results.items():
            key = "cli.chain_problems" if problems else "cli.chain_ok"
            print(t(key, name=name, count=count, problems=len(problems)))
            for problem in problems:
                print(f"  #{problem.seq}: {problem.reason}")
        for name, check in derived.items():
            key = "cli.derived_problems" if check.problems else "cli.derived_ok"
            print(t(key, name=name, count=check.checked, problems=len(check.problems)))
            for problem in check.problems:
                print(f"  {f'#{problem.seq}: ' if problem.seq else ''}{problem.reason}")
    return EXIT_OK if ok else EXIT_FAILED


def _audit_head(args: argparse.Namespace, config: Config) -> int:
    from console.audit import read_heads

    ctx = context(config)
    heads = read_heads(ctx.engine, ctx.hash_key)
    at = ctx.clock.now().isoformat(timespec="seconds")
    if args.json:
        print_json(
            {
                "at": at,
                "heads": {
                    h.chain: {
                        "seq": h.seq,
                        "hash": h.hash,
                        "keyed": h.keyed,
                        "anchor": str(h.anchor),
                    }
                    for h in heads
                },
            }
        )
    else:
        t = translator(config)
        for h in heads:
            print(f"{h.anchor}{'' if h.keyed else t('cli.head_not_keyed')}")
        print(t("cli.head_note", at=at), file=sys.stderr)
    return EXIT_OK if all(h.keyed for h in heads) else EXIT_FAILED


def _audit_rekey(args: argparse.Namespace, config: Config) -> int:
    from console.errors import TocsinError
    from console.rekey import rekey_chains
    from console.sending.workers import ALIVE_WITHIN_S, alive_workers

    ctx = context(config)
    t = translator(config)
    if alive_workers(ctx.engine, ctx.clock.now(), ALIVE_WITHIN_S):
        raise CliError(t("cli.rekey_worker"))
    try:
        done = rekey_chains(ctx)
    except TocsinError as exc:
        raise CliError(t.error(exc)) from exc
    if args.json:
        print_json(
            {
                "rekeyed": {
                    r.chain: {
                        "entries": r.entries,
                        "previous_head": r.previous_head,
                        "head": r.head,
                    }
                    for r in done
                }
            }
        )
    elif not done:
        print(t("cli.rekey_nothing"))
    else:
        for r in done:
            print(t("cli.rekey_done", chain=r.chain, entries=r.entries, previous=r.previous_head))
        print(t("cli.rekey_record"))
    return EXIT_OK
