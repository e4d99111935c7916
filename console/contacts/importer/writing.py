"""Writing the checked rows: new contacts inserted, changed ones updated, in the
caller's transaction, chunk by chunk, through storage/rawsql.py's JSON inserts."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, select, update

from console.contacts.importer.rows import VALUE_COLUMNS, Good
from console.contacts.service import search_key, sort_key
from storage.models import contact_group_table, contact_table
from storage.rawsql import dialect

# SQLite's default limit on bound variables is 999 on older builds.
CHUNK = 900
# SQLite page cache while importing (see big_cache).
IMPORT_CACHE_KIB = 64 * 1024

_EXISTING_COLUMNS = ("id", "number", "number_kind", "sendable", "name", "zone", "groups", "notes")


def chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


@dataclass
class Outcome:
    new: list[Good] = field(default_factory=list)
    # (row, contact id) of existing contacts
    updated: list[tuple[Good, int]] = field(default_factory=list)
    unchanged: list[tuple[Good, int]] = field(default_factory=list)


class Writer:
    """The database side of an import, fed chunk by chunk in the caller's transaction.

    When writing it runs in one worker thread; the main thread only touches the
    session again once the worker is done.
    """

    def __init__(
        self,
        conn: Connection,
        mapping: Mapping[str, int],
        now: datetime,
        source: str,
        write: bool,
        expected_rows: int,
    ) -> None:
        self.conn = conn
        self.now = now
        self.source = source
        self.write = write
        self.has_name = "name" in mapping or "first_name" in mapping
        self.has_zone = "zone" in mapping
        self.has_groups = "groups" in mapping
        self.has_notes = "notes" in mapping
        self.outcome = Outcome()
        self.db = dialect(conn.engine)
        self.first_new_id = _max_id(conn) + 1
        cols = [contact_table.c[name] for name in _EXISTING_COLUMNS]
        number = contact_table.c.number
        self.select = select(*cols)
        live = conn.execute(
            select(func.count()).select_from(contact_table).where(number.is_not(None))
        ).scalar_one()
        # None: look each chunk up with IN lists. Otherwise what is known now holds
        # for the whole import: this file's numbers are unique already, SQLite's
        # write lock keeps other writers out, and on PostgreSQL a number someone
        # adds meanwhile makes the INSERT, hence the import, fail.
        self.known: dict[str, tuple[Any, ...]] | None = None
        if not live:
            self.known = {}
        elif live <= expected_rows:
            # The base is no bigger than the file: one scan beats many IN lists.
            self.known = {
                row[1]: tuple(row) for row in conn.execute(self.select.where(number.is_not(None)))
            }

    def _existing(self, chunk: Sequence[Good]) -> dict[str, tuple[Any, ...]]:
        if self.known is not None:
            return self.known
        found: dict[str, tuple[Any, ...]] = {}
        numbers = [good[1][0] for good in chunk]
        for part in chunks(numbers):
            for row in self.conn.execute(self.select.where(contact_table.c.number.in_(part))):
                found[row[1]] = tuple(row)
        return found

    def __call__(self, chunk: list[Good]) -> None:
        existing = self._existing(chunk)
        outcome = self.outcome
        new: list[Good] = []
        changed: list[tuple[int, tuple[Any, ...], bool]] = []
        for good in chunk:
            values = good[1]
            old = existing.get(values[0]) if existing else None
            if old is None:
                new.append(good)
                continue
            contact_id, number, kind, sendable, name, zone, groups, notes = old
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
                outcome.unchanged.append((good, contact_id))
                continue
            outcome.updated.append((good, contact_id))
            keys = (sort_key(merged[3]), search_key(merged[3], merged[4]))
            changed.append((contact_id, merged + keys, merged[5] != groups))
        outcome.new.extend(new)
        if self.write:
            self._update(changed)
            self._insert(new)

    def _insert(self, new: Sequence[Good]) -> None:
        if not new:
            return
        db = self.db
        stamp = db.datetime(self.now)
        self.conn.exec_driver_sql(
            db.insert_json(contact_table, VALUE_COLUMNS, ("source", "created_at", "updated_at")),
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

    def new_ids(self) -> dict[str, int]:
        """E.164 -> id of the contacts this import inserted."""
        wanted = {good[1][0] for good in self.outcome.new}
        if not wanted or not self.write:
            return {}
        found: dict[str, int] = {}
        for contact_id, number in self.conn.execute(
            select(contact_table.c.id, contact_table.c.number).where(
                contact_table.c.id >= self.first_new_id
            )
        ):
            if number in wanted:
                found[number] = contact_id
        return found


def _max_id(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(contact_table.c.id), 0))).scalar_one())


@contextmanager
def big_cache(conn: Connection) -> Iterator[None]:
    """On SQLite, a page cache that holds the indexes a big import writes to.

    With the default 2 MiB, inserting 100,000 residents in random number and name
    order spills and re-reads index pages in the middle of the transaction (0.7 s
    of inserts became 1.1 s when measured).
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    before = int(conn.exec_driver_sql("PRAGMA cache_size").scalar_one())
    conn.exec_driver_sql(f"PRAGMA cache_size={-IMPORT_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size={before}")
