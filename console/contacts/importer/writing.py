"""Writing the checked rows: new contacts inserted, changed ones updated, and with
--consent their grants, in transactions of whole chunks.

Each chunk is looked up in the base by its own numbers (indexed IN lists), so
neither the file nor the base is ever held whole in memory. On SQLite a
transaction ends as soon as another writer waits for the lock
(storage.waiting_writers), so an emergency alert confirmed meanwhile waits for one
chunk, not for the import. A chunk is all or nothing, and what decides its counts
is read inside its transaction, so an import that stops half-way (a crash, a full
disk) leaves whole chunks, and running the same file again counts them unchanged.
"""

from __future__ import annotations

import contextlib
import json
import pickle
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from console.contacts.importer.options import ImportOptions
from console.contacts.importer.report import RowIssue
from console.contacts.importer.rows import VALUE_COLUMNS, Good
from console.contacts.rules import search_key, sort_key
from console.context import Context
from storage.models import contact_group_table, contact_table
from storage.rawsql import dialect
from storage.waiting_writers import waiting_writers

# SQLite's default limit on bound variables is 999 on older builds.
CHUNK = 900
# SQLite page cache while importing (see big_cache).
IMPORT_CACHE_KIB = 32 * 1024
# SQLite's lock is not fair: a connection waiting on its busy timeout sleeps and
# tries again, at most 100 ms apart, so a writer that begins again as soon as it
# commits could keep it waiting transaction after transaction. So on SQLite the
# import leaves the lock free for PAUSE_S, longer than a waiter sleeps, between
# two transactions: every waiter gets its turn within one transaction. When the
# rows are checked slower than they are written, the writer waits for its next
# chunk anyway and that wait counts.
PAUSE_S = 0.11
# While other connections commit during the pause, the import waits on, by PAUSE_S,
# up to this long: an alert is several transactions (its enqueue, the worker's
# claim, its answers), and each would otherwise wait for one of the import's. A
# worker sending a big campaign commits all the time: the import then still gets
# a transaction in every second or so.
YIELD_MORE_S = 0.5
# The longest a transaction goes on taking the next chunk when it is ready.
TRANSACTION_S = 0.5
# The same where writers waiting for SQLite's lock can be seen
# (storage.waiting_writers): the import then commits and steps aside as soon as one
# waits, so it need not commit often for their sake, and every commit writes the
# index pages its rows touched (at 1,000,000 residents, 5,000-row transactions
# took 50 s to write what 100,000-row ones wrote in 20; 6 s transactions wrote
# 3.8 GB where 3 s ones wrote 4.6). Well under the busy timeout
# (storage.engine.BUSY_TIMEOUT_S, 10 s), for a writer that cannot be seen waiting
# (one that begins with a read: a backup restored).
LONG_TRANSACTION_S = 6.0
# How often, waiting for the writers it stepped aside for, the import looks again.
WAITERS_POLL_S = 0.005
# A chunk whose transaction meets a number added meanwhile (PostgreSQL, or the
# console on SQLite between two chunks) is looked up and written again.
ATTEMPTS = 3

# The columns an insert sets besides VALUE_COLUMNS, in this order.
_STAMPED = ("source", "created_at", "updated_at")

_EXISTING_COLUMNS = ("id", "number", "number_kind", "sendable", "name", "zone", "groups", "notes")


def chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


# Put on the writer's queue after the last chunk.
END: list[Good] = []

# A chunk of good rows, or its pickle from the row checker's child (frames.py).
Chunk = list[Good] | bytes


def rows_of(chunk: Chunk) -> list[Good]:
    if isinstance(chunk, bytes):
        rows: list[Good] = pickle.loads(chunk)
        return rows
    return chunk


def chunk_committed(rows: int) -> None:
    """Called after each commit (tests use it to act between two transactions)."""


@dataclass
class Tally:
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    consents_recorded: int = 0
    # Issues the database side finds (STOP, withdrawn consent).
    issues: list[RowIssue] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.imported += other.imported
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.consents_recorded += other.consents_recorded
        self.issues.extend(other.issues)


class Writer:
    """The database side of an import, fed chunk by chunk.

    `transaction` opens what one chunk is written in (a nullcontext for a dry run,
    which reads in the caller's transaction). When writing it runs in one worker
    thread, the only user of `conn` until it is done.
    """

    def __init__(
        self,
        conn: Connection,
        ctx: Context,
        options: ImportOptions,
        mapping: Mapping[str, int],
        now: datetime,
        source: str,
        transaction: Callable[[], AbstractContextManager[Any]],
    ) -> None:
        self.conn = conn
        self.ctx = ctx
        self.options = options
        self.now = now
        self.source = source
        self.write = not options.dry_run
        self.transaction = transaction
        self.has_name = "name" in mapping or "first_name" in mapping
        self.has_zone = "zone" in mapping
        self.has_groups = "groups" in mapping
        self.has_notes = "notes" in mapping
        self.tally = Tally()
        self.db = dialect(conn.engine)
        # SQLite: insert with executemany (see _insert_each), where no other thread
        # of this process is busy meanwhile (the rows are checked by a child).
        self.each_row = False
        self.pause = PAUSE_S if self.write and self.db.sqlite else 0.0
        self.waiters = waiting_writers(conn.engine) if self.pause else None
        # Whether the last transaction ended because a writer waited for the lock.
        self.stepped_aside = False
        self.last_commit = 0.0
        self.version = 0
        # On SQLite, copies the WAL into the database after each commit (see
        # Checkpointer); set by the caller.
        self.checkpointer: Checkpointer | None = None
        # Whether the numbers need looking up: not in a base that had no contact
        # when the import began, since the file's numbers are unique; a number
        # someone adds meanwhile fails the INSERT, and the chunk is redone.
        self.look_up = not self.write or _has_contacts(conn)
        columns = ", ".join(f'"{name}"' for name in _EXISTING_COLUMNS)
        self.lookup = self.db.sql(
            f"SELECT {columns} FROM contact WHERE {self.db.in_ids('number', 'numbers')}"
        )

    def __call__(self, chunk: list[Good]) -> None:
        """Check one chunk against the base without writing (a dry run)."""
        self.tally.add(self._chunk(chunk, True))

    def drain(self, chunks: queue.Queue[Chunk]) -> None:
        """Write the chunks put on `chunks` until END, in the writer thread.

        While the next chunk is already waiting, it joins the transaction of the
        one before, up to TRANSACTION_S: a commit costs a few tens of milliseconds
        (the WAL pages, a checkpoint), so a writer that is the slower side commits
        less often, and one that waits for its rows commits each chunk at once.
        Where writers waiting for the lock can be seen, a transaction lasts up to
        LONG_TRANSACTION_S, waiting for its rows if need be, and ends as soon as
        one of them waits.
        """
        ended = False
        while not ended:
            first = chunks.get()
            if first is END:
                break
            # Kept as they came (a pickle is a fifth of its rows' memory) for a
            # transaction written again.
            batch = [first]
            attempt = 1
            while True:
                self._breathe()
                try:
                    with self.transaction():
                        tally = Tally()
                        started = time.monotonic()
                        longest = self._longest_transaction()
                        self.stepped_aside = False
                        index = written = 0
                        while True:
                            rows = rows_of(batch[index])
                            written += len(rows)
                            # A chunk written again looks its numbers up whatever.
                            tally.add(self._chunk(rows, self.look_up or attempt > 1))
                            index += 1
                            if index < len(batch):
                                continue
                            if ended or time.monotonic() - started >= longest:
                                break
                            more = self._next(chunks, started + longest)
                            if more is None:
                                break
                            if more is END:
                                ended = True
                                break
                            batch.append(more)
                except IntegrityError:
                    if attempt >= ATTEMPTS:
                        raise
                    attempt += 1
                    continue
                finally:
                    self.last_commit = time.monotonic()
                break
            self.tally.add(tally)
            if self.pause:
                self.version = self._data_version()
            chunk_committed(written)
            self._checkpoint()

    def _checkpoint(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.poke()

    def _next(self, chunks: queue.Queue[Chunk], deadline: float) -> Chunk | None:
        """The next chunk for this transaction, or None to commit now: at once when
        none is ready, unless waiting writers can be seen; then the transaction
        waits for its rows until a writer waits for the lock, or `deadline`."""
        waiters = self.waiters
        if waiters is None or not waiters.usable:
            try:
                return chunks.get_nowait()
            except queue.Empty:
                return None
        while True:
            if waiters.present():
                self.stepped_aside = True
                return None
            try:
                return chunks.get(timeout=4 * WAITERS_POLL_S)
            except queue.Empty:
                if time.monotonic() >= deadline:
                    return None

    def _longest_transaction(self) -> float:
        if self.waiters is not None and self.waiters.usable:
            return LONG_TRANSACTION_S
        return TRANSACTION_S

    def _breathe(self) -> None:
        """On SQLite, leave the lock free after the last commit: where waiting
        writers are seen, to each one that waits (and none when none does), else
        PAUSE_S; then longer while others commit meanwhile (an alert's enqueue,
        then the worker's claim and answers), up to YIELD_MORE_S more."""
        if not self.pause:
            return
        waiters = self.waiters
        if waiters is not None and waiters.usable:
            if not self.stepped_aside:
                return
            deadline = self.last_commit + YIELD_MORE_S
            while waiters.present() and time.monotonic() < deadline:
                time.sleep(WAITERS_POLL_S)
        else:
            wait = self.last_commit + self.pause - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        more = 0.0
        version = self._data_version()
        while version != self.version and more < YIELD_MORE_S:
            self.version = version
            time.sleep(self.pause)
            more += self.pause
            version = self._data_version()

    def _data_version(self) -> int:
        """SQLite's count of the commits other connections made (PRAGMA data_version)."""
        raw = self.conn.connection.driver_connection
        assert raw is not None
        return int(raw.execute("PRAGMA data_version").fetchone()[0])

    def _existing(self, chunk: Sequence[Good]) -> dict[str, tuple[Any, ...]]:
        """The contacts that have one of the chunk's numbers, by number: one
        indexed lookup with the numbers as a single parameter."""
        numbers = [good[1][0] for good in chunk]
        db = self.db
        cursor = self.conn.exec_driver_sql(
            self.lookup, {"numbers": json.dumps(numbers) if db.sqlite else numbers}
        )
        return {row[1]: tuple(row) for row in cursor}

    def _chunk(self, chunk: list[Good], look_up: bool) -> Tally:
        existing = self._existing(chunk) if look_up else {}
        tally = Tally()
        new: list[Good] = []
        # (row, contact id) of existing contacts, kept for --consent
        kept: list[tuple[Good, int]] = []
        consent = self.options.consent_topic is not None
        changed: list[tuple[int, tuple[Any, ...], bool]] = []
        for good in chunk:
            values = good[1]
            old = existing.get(values[0]) if existing else None
            if old is None:
                new.append(good)
                continue
            contact_id, number, kind, sendable, name, zone, groups, notes = old
            if consent:
                kept.append((good, contact_id))
            merged = (
                values[0],
                values[1],
                values[2],
                values[3] if self.has_name else name,
                values[4] if self.has_zone else zone,
                values[5] if self.has_groups else groups,
                values[6] if self.has_notes else notes,
            )
            if merged == (number, kind, bool(sendable), name, zone, groups, notes):
                tally.unchanged += 1
                continue
            tally.updated += 1
            keys = (sort_key(merged[3]), search_key(merged[3], merged[4]))
            changed.append((contact_id, merged + keys, merged[5] != groups))
        tally.imported = len(new)
        before = 0
        if self.write:
            self._update(changed)
            before = self._max_id() if consent and new else 0
            self._insert(new)
        if consent:
            # consent.py chunks its lookups with this module's chunks().
            from console.contacts.importer.consent import consents

            ids = self._new_ids(new, before) if self.write else {}
            kept.extend((good, ids.get(good[1][0], 0)) for good in new)
            kept.sort(key=lambda pair: pair[0][0])
            for topic in self.options.consent_topics:
                found, recorded = consents(
                    self.conn, self.ctx, self.options, kept, self.write, topic
                )
                tally.issues.extend(found)
                tally.consents_recorded += recorded
        return tally

    def _insert(self, new: Sequence[Good]) -> None:
        if not new:
            return
        db = self.db
        stamp = db.datetime(self.now)
        if db.sqlite and self.each_row:
            self._insert_each(new, stamp)
            return
        self.conn.exec_driver_sql(
            db.insert_json(contact_table, VALUE_COLUMNS, _STAMPED),
            {
                "rows": db.rows([good[1] for good in new]),
                "source": self.source,
                "created_at": stamp,
                "updated_at": stamp,
            },
        )
        pairs = [(good[1][0], name) for good in new if good[1][5] for name in good[1][5].split(",")]
        if pairs:
            # The new contacts' ids come from the database: join on their numbers.
            (number, name), rows = db.json_rows(contact_table, ("number", "name"), "rows")
            self.conn.exec_driver_sql(
                db.sql(
                    f"INSERT INTO contact_group (contact_id, name) SELECT c.id, {name} "
                    f"FROM {rows} JOIN contact AS c ON c.number = {number}"
                ),
                {"rows": db.rows(pairs)},
            )

    def _insert_each(self, new: Sequence[Good], stamp: Any) -> None:
        """SQLite: one prepared INSERT run for each row (executemany), faster than
        the JSON insert alone (0.92 s against 1.32 s for 100,000 rows, 17.8 s
        against 28 s for 1,000,000), but it gives up the GIL around each row and
        must get it back: beside a thread busy checking rows it crawled, so only
        when a child checks them (checker_process.py, frames.py).

        The ids are given, not looked up: SQLite gives a new row the largest id
        plus one (the table has no AUTOINCREMENT), and this transaction holds the
        write lock, so they are the ids SQLite would give. The groups then go in
        without finding each contact by its number again (2 s of 5.5 for 300,000
        residents)."""
        first = self._max_id() + 1
        names = ", ".join(f'"{name}"' for name in ("id", *VALUE_COLUMNS, *_STAMPED))
        marks = ", ".join("?" * (1 + len(VALUE_COLUMNS) + len(_STAMPED)))
        tail = (self.source, stamp, stamp)
        self.conn.exec_driver_sql(
            f"INSERT INTO contact ({names}) VALUES ({marks})",
            [(contact_id, *good[1], *tail) for contact_id, good in enumerate(new, first)],
        )
        pairs = [
            (contact_id, name)
            for contact_id, good in enumerate(new, first)
            if good[1][5]
            for name in good[1][5].split(",")
        ]
        if pairs:
            self.conn.exec_driver_sql(
                "INSERT INTO contact_group (contact_id, name) VALUES (?, ?)", pairs
            )

    def _update(self, changed: Sequence[tuple[int, tuple[Any, ...], bool]]) -> None:
        if not changed:
            return
        names = (*VALUE_COLUMNS[1:], "updated_at")
        stmt = (
            update(contact_table)
            .where(contact_table.c.id == bindparam("b_id"))
            .values({name: bindparam(f"b_{name}") for name in names})
        )
        self.conn.execute(
            stmt,
            [
                {
                    "b_id": contact_id,
                    **{f"b_{n}": v for n, v in zip(VALUE_COLUMNS[1:], merged[1:], strict=True)},
                    "b_updated_at": self.now,
                }
                for contact_id, merged, _ in changed
            ],
        )
        regroup = [(contact_id, merged[5]) for contact_id, merged, moved in changed if moved]
        for part in chunks([contact_id for contact_id, _ in regroup]):
            self.conn.execute(
                delete(contact_group_table).where(contact_group_table.c.contact_id.in_(part))
            )
        pairs = [(cid, name) for cid, groups in regroup for name in groups.split(",") if name]
        if pairs:
            self.conn.exec_driver_sql(
                self.db.insert_json(contact_group_table, ("contact_id", "name")),
                {"rows": self.db.rows(pairs)},
            )

    def _max_id(self) -> int:
        query = select(func.coalesce(func.max(contact_table.c.id), 0))
        return int(self.conn.execute(query).scalar_one())

    def _new_ids(self, new: Sequence[Good], after: int) -> dict[str, int]:
        """E.164 -> id of the contacts this chunk inserted (ids above `after`)."""
        wanted = {good[1][0] for good in new}
        found: dict[str, int] = {}
        if not wanted:
            return found
        for contact_id, number in self.conn.execute(
            select(contact_table.c.id, contact_table.c.number).where(contact_table.c.id > after)
        ):
            if number in wanted:
                found[number] = contact_id
        return found


class Checkpointer:
    """A thread that copies SQLite's WAL into the database after each of the
    import's commits, on its own connection, while the next transaction is written.

    The import's connection has no automatic checkpoint (see big_cache): in the
    commit, the checkpoint would hold the write lock (and the writer) for the copy.
    Kept small this way, the WAL leaves no big checkpoint either to the next
    process that commits: the alert waiting for its turn.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.wanted = threading.Event()
        self.done = False
        self.thread = threading.Thread(target=self._run, name="import-checkpoint", daemon=True)
        self.thread.start()

    def poke(self) -> None:
        self.wanted.set()

    def close(self) -> None:
        """One last checkpoint, then stop."""
        self.done = True
        self.wanted.set()
        self.thread.join()

    def _run(self) -> None:
        raw = self.engine.raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        try:
            while True:
                self.wanted.wait()
                self.wanted.clear()
                done = self.done
                with contextlib.suppress(Exception):  # the next one will do
                    driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                if done:
                    return
        finally:
            raw.close()


def _has_contacts(conn: Connection) -> bool:
    number = contact_table.c.number
    found = conn.execute(select(number).where(number.is_not(None)).limit(1)).first()
    conn.rollback()
    return found is not None


@contextmanager
def big_cache(conn: Connection) -> Iterator[None]:
    """On SQLite, a page cache that holds the indexes a big import writes to, and
    no automatic checkpoint.

    With the default 2 MiB, inserting 100,000 residents in random number and name
    order spills and re-reads index pages in the middle of the transaction (0.7 s
    of inserts became 1.1 s when measured). A Checkpointer copies the WAL after
    each commit, where SQLite would do it inside the commit. Set on the driver's
    connection, which needs no transaction for it.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    raw = conn.connection.driver_connection
    assert raw is not None
    before = int(raw.execute("PRAGMA cache_size").fetchone()[0])
    pages = int(raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
    raw.execute(f"PRAGMA cache_size={-IMPORT_CACHE_KIB}")
    raw.execute("PRAGMA wal_autocheckpoint=0")
    try:
        yield
    finally:
        raw.execute(f"PRAGMA cache_size={before}")
        raw.execute(f"PRAGMA wal_autocheckpoint={pages}")
