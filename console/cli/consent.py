"""Consent from scripts: tocsin consent grant|withdraw."""

from __future__ import annotations

import argparse

from console.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    context,
    parse_when,
    print_json,
    translator,
)
from console.config import Config


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    consent = sub.add_parser("consent", help="record a consent decision")
    consent.add_argument("action", choices=["grant", "withdraw"])
    consent.add_argument("contact", help="contact id or phone number")
    consent.add_argument("--topic", required=True)
    consent.add_argument("--source", required=True)
    consent.add_argument("--proof", default="")
    consent.add_argument("--text-version", default="")
    consent.add_argument("--at", help="when it happened (ISO date/time, town time zone)")
    consent.add_argument("--json", action="store_true")

    consent.set_defaults(handler=cmd_consent)


def cmd_consent(args: argparse.Namespace, config: Config) -> int:
    from console.consent.ledger import ConsentError, ConsentRequest, record_consent
    from console.contacts.service import find_by_number

    ctx = context(config)
    t = translator(config)
    contact_id: int | None = (
        int(args.contact) if args.contact.isdigit() and len(args.contact) < 9 else None
    )
    if contact_id is None:
        found = find_by_number(ctx, args.contact)
        if found is None:
            raise CliError(t("cli.no_contact_number", number=args.contact))
        contact_id = found.id
    occurred = parse_when(args.at, config) if args.at else None
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
