"""Export the contact base as a CSV that Excel opens right and Tocsin re-imports as is.

UTF-8 with a BOM (Excel then reads accents right), `;` as separator (French Excel),
and cells a spreadsheet would run as a formula (= + - @ tab CR) prefixed with an
apostrophe. The importer drops that apostrophe again, so an export re-imports with
zero changes. Phone numbers are written as the town reads them (06 12 34 56 78,
+262 692 ...); one starting with `+` is guarded too, since Excel reads `+262 692
...` as a formula (the importer reads `'+262 692 ...` as the number).
"""

from __future__ import annotations

import codecs
import csv
import re
from pathlib import Path
from typing import TextIO

from sqlalchemy import select
from sqlmodel import col

from console.audit import append_audit
from console.contacts.numbers import InvalidNumber, display
from console.context import Context
from console.roles import Role
from storage.engine import read_session, write_session
from storage.models import Contact
from storage.queries import ContactQuery, ContactRow, Cursor, page_contacts

HEADER = ("telephone", "nom", "quartier", "groupes", "notes", "envoyable", "consentements")
PAGE_SIZE = 500  # also the size of the IN lists per page, under SQLite limits
# Apostrophes, then what a spreadsheet reads as the start of a formula.
_FORMULA = re.compile("'*[=+\\-@\t\r]")


def guard(cell: str) -> str:
    """The cell as a spreadsheet shows it, never as a formula it would run.

    A cell whose apostrophes already come before such a character gets one more,
    so that the importer, which removes exactly one, gives the original back.
    """
    return "'" + cell if _FORMULA.match(cell) else cell


def number_text(ctx: Context, e164: str) -> str:
    """The number as displayed, if this town's parser reads it back to the same E.164."""
    shown = display(e164)
    try:
        if ctx.parser.parse(shown).e164 == e164:
            return shown
    except InvalidNumber:
        pass
    # An ambiguous national form (an overseas town reading a metropolitan number,
    # say): the E.164 form cannot be misread.
    return e164


def export_contacts(
    ctx: Context,
    out: TextIO,
    *,
    query: ContactQuery | None = None,
    page_size: int = PAGE_SIZE,
) -> int:
    """Write live contacts (all, or those matching query) to out; return rows written.

    out must be a text stream opened with newline="" (see export_file); the BOM is
    written here unless the stream's encoding (utf-8-sig) writes it already. Pages
    through the base with keyset cursors, one short read transaction per page.
    """
    ctx.require(Role.OPERATOR)
    wanted = query or ContactQuery()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    if not _writes_bom(out):
        out.write("\ufeff")
    writer.writerow(HEADER)
    written = 0
    after: Cursor | None = None
    while True:
        with read_session(ctx.engine) as session:
            rows = page_contacts(session, wanted, after=after, limit=page_size)
            ids = [row.id for row in rows]
            notes = dict(
                session.execute(
                    select(col(Contact.id), col(Contact.notes)).where(col(Contact.id).in_(ids))
                ).all()
            )
        for row in rows:
            writer.writerow(_cells(ctx, row, notes.get(row.id, "")))
        written += len(rows)
        if len(rows) < page_size:
            break
        after = rows[-1].cursor
    with write_session(ctx.engine) as session:
        append_audit(
            session,
            at=ctx.clock.now(),
            operator=ctx.operator,
            action="contact.export",
            details={"rows": written, "filtered": wanted != ContactQuery()},
        )
    return written


def _writes_bom(out: TextIO) -> bool:
    # A stream opened as utf-8-sig writes the BOM itself; a second one would show
    # as a stray character in Excel's first cell.
    encoding = getattr(out, "encoding", None)
    if not isinstance(encoding, str):
        return False
    try:
        return codecs.lookup(encoding).name == "utf-8-sig"
    except LookupError:
        return False


def export_file(ctx: Context, path: Path, *, query: ContactQuery | None = None) -> int:
    """export_contacts into a file, opened the way the CSV needs."""
    with path.open("w", encoding="utf-8", newline="") as out:
        return export_contacts(ctx, out, query=query)


def _cells(ctx: Context, row: ContactRow, notes: str) -> list[str]:
    granted = ",".join(sorted(topic for topic, yes in row.consents.items() if yes))
    return [
        guard(number_text(ctx, row.number)) if row.number else "",
        guard(row.name),
        guard(row.zone),
        guard(row.groups),
        guard(notes),
        "oui" if row.sendable else "non",
        granted,
    ]
