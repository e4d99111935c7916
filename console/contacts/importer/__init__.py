"""Import a town hall's resident CSV into the contact base.

What town halls really have: Excel exports in Windows-1252 or UTF-8 (with or without
BOM), sometimes UTF-16 ("texte Unicode"), separated by `;`, `,` or tabs, with French
or English headers. One run imports every good row and reports every other one with
the line a spreadsheet user would look at.

Decisions:

- Columns the file does not have are left untouched on existing contacts; a column
  the file has is authoritative, an empty cell included. So a list of numbers and
  names never wipes the zones and notes typed in the console.
- Counts: `rows = imported + updated + unchanged + rejected`; `flagged` counts rows
  that were kept but carry a warning (not a mobile, STOP, withdrawn consent), so it
  overlaps the first three.
- `--consent` never re-grants a consent the resident withdrew: a bulk list must not
  undo an individual decision. Such rows are flagged (`withdrawn`).
- A cell the exporter guarded against formula injection ('=..., '+..., ...) loses
  its apostrophe again, so an export re-imports unchanged.
- A file that cannot be read is refused before anything is committed: it is read
  to its end (csv's own reading) first, so a quote never closed on its last line
  writes nothing.
- The writes commit in transactions of whole chunks (writing.py). On SQLite the
  import sees the writers waiting for the lock (storage.waiting_writers) and
  commits as soon as one waits, so an emergency alert confirmed meanwhile waits
  for one chunk, not for the import; while nobody waits, a transaction goes on
  for up to 3 seconds. An import stopped half-way (a crash, a full disk) leaves
  whole chunks, each with its consent grants, and the same file run again
  converges: what was imported counts unchanged, nothing is doubled, grants are
  not recorded twice. The audit entry is written after the last chunk.

The package, by job: `decoding` (the file's encoding and separator, then its lines
one at a time), `header` (the header line and the column mapping), `rows` (each row
through the contact rules of console.contacts.rules), `checker_process` (the rows
of a big file checked by a child process), `writing` (inserts, updates and
--consent grants, chunk by chunk), `consent` (--consent, through the consent
ledger's bulk append), `report` (counts, issues, --json, the rejects file); this
module runs them in order.

Memory: neither the file nor the base is held whole. The file is scanned as bytes,
then read a line at a time; each chunk of good rows is compared with the base by
an indexed lookup of its own numbers; what grows with the file is one int per
number (to name the first line of a duplicate, in the process that checks the
rows) and the reported rows.

Speed (bench/bench_import.py, ratio to phonenumbers.parse alone at most 1.5): the
rows of a file of 1 MB or more (about 20,000 residents) are checked by a child
process, started before the header is read, and handed back in chunks of 5,000;
this process writes them in a writer thread, SQLite a prepared INSERT a row at a
time. Checking and writing thus use the server's two cores. Good rows are plain
tuples, which the garbage collector soon stops tracking. The writer is the only
user of its connection until it is done.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from console.audit import append_audit
from console.contacts.importer.checker_process import CHILD_QUEUE, CheckerChild, started_early
from console.contacts.importer.consent import validate_consent
from console.contacts.importer.header import Source, column_label, open_source
from console.contacts.importer.options import FIELDS, ImportOptions
from console.contacts.importer.report import ImportFailed, ImportReport, RowIssue
from console.contacts.importer.rows import check_rows, check_structure, contact_values
from console.contacts.importer.writing import END, Checkpointer, Chunk, Writer, big_cache
from console.context import Context
from console.roles import Role
from console.text import clean_field
from storage.engine import (
    CONTACT_TABLES,
    is_sqlite,
    read_session,
    refresh_statistics,
    write_session,
)

__all__ = [
    "FIELDS",
    "ImportFailed",
    "ImportOptions",
    "ImportReport",
    "RowIssue",
    "contact_values",
    "import_contacts",
]


def import_contacts(ctx: Context, path: Path, options: ImportOptions) -> ImportReport:
    """Import the good rows of a resident CSV and report every other one.

    Raises ImportFailed when the file cannot be imported at all (nothing is then
    written), PermissionDenied below the operator role.
    """
    ctx.require(Role.OPERATOR)
    if options.consent_topic is not None:
        validate_consent(ctx, options)
    path = Path(path)
    with started_early(path, options) as child:
        return _import(ctx, path, options, child)


def _import(
    ctx: Context, path: Path, options: ImportOptions, child: CheckerChild | None
) -> ImportReport:
    source = open_source(ctx, path, options)
    report = ImportReport(
        file=str(path),
        encoding=source.text.encoding,
        delimiter=source.delimiter,
        mapping={name: column_label(source.header, i) for name, i in source.mapping.items()},
        header=source.header,
        dry_run=options.dry_run,
        consent_topic=options.consent_topic,
    )
    contact_source = clean_field(options.source or f"import:{path.name}")[:100]
    try:
        if options.dry_run:
            with read_session(ctx.engine) as session:
                conn = session.connection()
                _run(conn, ctx, source, options, report, contact_source, nullcontext, None)
        else:
            # Nothing is committed before the whole file is known to read to its end.
            check_structure(source)
            bind = ctx.engine
            if is_sqlite(bind):
                bind = bind.execution_options(sqlite_begin="IMMEDIATE")
            with bind.connect() as conn:
                _run(conn, ctx, source, options, report, contact_source, conn.begin, child)
            with write_session(ctx.engine) as session:
                _audit(session, ctx, source, report)
            written = report.imported + report.updated + report.consents_recorded
            refresh_statistics(ctx.engine, CONTACT_TABLES, written)
    except IntegrityError as exc:
        raise ImportFailed(
            f"{path}: the contact base kept changing during the import (someone added "
            "these numbers meanwhile); run it again: the rows already imported will "
            "count as unchanged"
        ) from exc
    return report


def _run(
    conn: Connection,
    ctx: Context,
    source: Source,
    options: ImportOptions,
    report: ImportReport,
    contact_source: str,
    transaction: Callable[[], AbstractContextManager[Any]],
    child: CheckerChild | None,
) -> None:
    now = ctx.clock.now()
    with big_cache(conn):
        writer = Writer(conn, ctx, options, source.mapping, now, contact_source, transaction)
        if not options.dry_run:
            if is_sqlite(ctx.engine):
                writer.checkpointer = Checkpointer(ctx.engine)
            try:
                report.rows = _write_in_thread(ctx, source, options, report, writer, child)
            finally:
                if writer.checkpointer is not None:
                    writer.checkpointer.close()
        else:
            report.rows = check_rows(ctx.parser, source, options, report.issues, writer)
    tally = writer.tally
    report.imported = tally.imported
    report.updated = tally.updated
    report.unchanged = tally.unchanged
    report.consents_recorded = tally.consents_recorded
    report.issues.extend(tally.issues)
    report.issues.sort(key=lambda issue: issue.line)
    report.rejected = sum(1 for issue in report.issues if issue.status == "rejected")
    report.flagged = len({issue.line for issue in report.issues if issue.status == "flagged"})


def _write_in_thread(
    ctx: Context,
    source: Source,
    options: ImportOptions,
    report: ImportReport,
    writer: Writer,
    child: CheckerChild | None,
) -> int:
    """Check the rows in this thread, or have `child` check them, while the writer
    writes the chunks before.

    At most two chunks wait for the writer (with a child, two of its runs, as
    pickles), so the memory holds a few chunks whatever the file's size; parsing
    stops as soon as the writer failed.
    """
    chunks: queue.Queue[Chunk] = queue.Queue(maxsize=2 if child is None else CHILD_QUEUE)
    failure: list[BaseException] = []

    def drain() -> None:
        try:
            writer.drain(chunks)
        except BaseException as exc:  # handed to the main thread
            failure.append(exc)

    def put(chunk: Chunk) -> None:
        while not failure:
            try:
                chunks.put(chunk, timeout=0.05)
                return
            except queue.Full:
                continue
        raise failure[0]

    writer.each_row = child is not None
    thread = threading.Thread(target=drain, name="import-writer", daemon=True)
    thread.start()
    try:
        if child is not None:
            region = ctx.parser.default_region
            rows = child.check_rows(region, source, options, report.issues, put)
        else:
            rows = check_rows(ctx.parser, source, options, report.issues, put)
    finally:
        # The writer must be done with the connection whatever happened.
        with contextlib.suppress(BaseException):
            put(END)
        thread.join()
    if failure:
        raise failure[0]
    return rows


def _audit(session: Session, ctx: Context, source: Source, report: ImportReport) -> None:
    append_audit(
        session,
        at=ctx.clock.now(),
        operator=ctx.operator,
        action="contact.import",
        target=f"file:{source.path.name}"[:200],
        details={
            "file": source.path.name,
            "encoding": report.encoding,
            "consent_topic": report.consent_topic,
            **report.to_json()["counts"],
        },
    )
