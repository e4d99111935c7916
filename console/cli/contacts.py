"""The contact base from scripts: import, export, contact add|edit|erase."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from console.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    confirm_typed,
    context,
    print_json,
    translator,
)
from console.config import Config

if TYPE_CHECKING:
    from console.contacts.importer import ImportOptions
    from console.context import Context


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    contacts.add_argument(
        "--list",
        metavar="NAME",
        help="a rented list registered with `tocsin list add`: its topics are granted on its terms",
    )
    contacts.add_argument("--rejects", metavar="FILE", help="write rejected rows to FILE")
    contacts.add_argument("--dry-run", action="store_true", help="check only, write nothing")
    contacts.add_argument("--json", action="store_true", help="print the report as JSON")

    imp.set_defaults(handler=cmd_import)
    exp = sub.add_parser("export", help="export residents")
    exp_sub = exp.add_subparsers(dest="what", required=True)
    exp_contacts = exp_sub.add_parser("contacts", help="export contacts as CSV")
    exp_contacts.add_argument("-o", "--output", help="file (default: standard output)")

    exp.set_defaults(handler=cmd_export)
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

    contact.set_defaults(handler=cmd_contact)


def cmd_import(args: argparse.Namespace, config: Config) -> int:
    from console.contacts.importer import ImportFailed, ImportOptions, import_contacts

    t = translator(config)
    mapping: dict[str, str] = {}
    for item in args.map:
        field, sep, column = item.partition("=")
        if not sep or not field or not column:
            raise CliError(t("cli.map_bad", item=repr(item)), EXIT_USAGE)
        mapping[field.strip()] = column.strip()
    if args.consent and not args.source:
        raise CliError(t("cli.consent_needs_source"), EXIT_USAGE)
    if args.list and (args.consent or args.source or args.proof):
        raise CliError(t("cli.list_sets_consent"), EXIT_USAGE)
    ctx = context(config)
    if args.list:
        options = _list_options(ctx, args, mapping)
    else:
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
        report.write_rejects(Path(args.rejects), t.language)
    if args.json:
        print_json(report.to_json())
    else:
        from console.text import visible

        for line in report.summary_lines(t.language):
            print(visible(line))
    return EXIT_OK


def _list_options(ctx: Context, args: argparse.Namespace, mapping: dict[str, str]) -> ImportOptions:
    """A rented list imports only once its provenance is recorded."""
    from console.consent.lists import ListError, get_list, proof_ref
    from console.contacts.importer import ImportOptions

    try:
        row = get_list(ctx, args.list)
    except ListError as exc:
        raise CliError(translator(ctx.config).error(exc), EXIT_USAGE) from exc
    topics = tuple(row.topics.split(","))
    return ImportOptions(
        mapping=mapping,
        source=f"list:{row.name}",
        consent_topic=topics[0],
        consent_more_topics=topics[1:],
        consent_source="rented_list",
        consent_proof=proof_ref(row),
        consent_text_version=args.text_version or f"list:{row.name}"[:50],
        consent_at=row.consented_at,
        dry_run=args.dry_run,
    )


def cmd_export(args: argparse.Namespace, config: Config) -> int:
    from console.contacts.exporter import export_contacts, export_file

    ctx = context(config)
    if args.output:
        try:
            count = export_file(ctx, Path(args.output))
        except OSError as exc:
            # A write error (a full disk) names no file: say which.
            exc.filename = exc.filename or args.output
            raise
        print(translator(config)("cli.exported", count=count, file=args.output), file=sys.stderr)
    else:
        export_contacts(ctx, sys.stdout)
    return EXIT_OK


def cmd_contact(args: argparse.Namespace, config: Config) -> int:
    from console.contacts.rules import ContactError, split_groups
    from console.contacts.service import (
        ContactInput,
        add_contact,
        erase_contact,
        get_contact,
        update_contact,
    )

    ctx = context(config)
    t = translator(config)
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
                confirm_typed(t, 1, t("cli.what_erase"), sys.stdin, sys.stderr)
            result = erase_contact(ctx, args.id)
            if args.json:
                print_json(
                    {"id": result.contact_id, "erased": True, "suppressed": result.suppressed}
                )
            else:
                print(t("cli.contact_erased", id=result.contact_id))
            return EXIT_OK
    except ContactError as exc:
        raise CliError(t.error(exc)) from exc
    if args.json:
        print_json(
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
        print(t("cli.contact_saved", id=contact.id, number=contact.number))
    return EXIT_OK
