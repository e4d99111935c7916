"""The database and the audit trail: db upgrade, audit verify."""

from __future__ import annotations

import argparse

from console.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    context,
    print_json,
)
from console.config import Config


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="action", required=True)
    db_sub.add_parser("upgrade", help="apply migrations (PostgreSQL; SQLite does it itself)")

    db.set_defaults(handler=cmd_db)
    audit = sub.add_parser("audit", help="audit trail")
    audit_sub = audit.add_subparsers(dest="action", required=True)
    verify = audit_sub.add_parser("verify", help="check both hash chains")
    verify.add_argument("--json", action="store_true")
    audit.set_defaults(handler=cmd_audit)


def cmd_db(args: argparse.Namespace, config: Config) -> int:
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


def cmd_audit(args: argparse.Namespace, config: Config) -> int:
    from console.audit import verify_chains

    ctx = context(config)
    results = verify_chains(ctx.engine)
    ok = all(not problems for _, problems in results.values())
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
            }
        )
    else:
        for name, (count, problems) in results.items():
            state = "ok" if not problems else f"{len(problems)} problem(s)"
            print(f"{name}: {count} entries, {state}")
            for problem in problems:
                print(f"  #{problem.seq}: {problem.reason}")
    return EXIT_OK if ok else EXIT_FAILED
