"""Hand-written SQL on the DBAPI cursor, for the hot paths: the sender and the importer.

The worker records hundreds of answers a second. Built through SQLAlchemy, each
statement cost more CPU (construction, cache keys, a bind processor per value per
row) than SQLite spent running it, and that CPU is taken under the GIL from the
event loop that talks to the provider. Here a statement is written once with
`:name` placeholders, translated for the driver once, and run on the cursor of a
transaction that SQLAlchemy still opens (BEGIN IMMEDIATE on SQLite), commits and
pools.

The importer's bulk writes go through here too: a chunk of rows is one JSON
parameter that SQLite (json_each) or PostgreSQL (json_array_elements) unpacks, so
one call into the driver, which runs it without the GIL, writes thousands of rows.

Everything else keeps using SQLAlchemy: this is for a few statements run per
answer or per chunk, not a second data layer.
"""

from __future__ import annotations

import json
import re
import weakref
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, String, Table
from sqlalchemy.types import TypeDecorator, TypeEngine

from storage.engine import is_sqlite
from storage.models import message_table
from storage.waiting_writers import waiting_writers

_PLACEHOLDER = re.compile(r"(?<![:\w]):(\w+)")


class Dialect:
    """What the hand-written SQL needs to know about one engine."""

    def __init__(self, engine: Engine) -> None:
        self.sqlite = is_sqlite(engine)
        # The very conversion SQLAlchemy applies to these columns (text on SQLite,
        # UTC on PostgreSQL), done once per value rather than once per row.
        self._engine_dialect = engine.dialect
        impl = message_table.c.updated_at.type.dialect_impl(engine.dialect)
        processor: Callable[[Any], Any] | None = impl.bind_processor(engine.dialect)
        self._datetime = processor or (lambda value: value)
        self._cache: dict[str, str] = {}

    def sql(self, text: str) -> str:
        """`text` with `:name` placeholders as this driver wants them."""
        found = self._cache.get(text)
        if found is None:
            found = text if self.sqlite else _PLACEHOLDER.sub(r"%(\1)s", text)
            self._cache[text] = found
        return found

    def datetime(self, value: datetime | None) -> Any:
        return None if value is None else self._datetime(value)

    def in_ids(self, column: str, param: str) -> str:
        """`column` is one of the ids in `param` (bound with `ids`), as one
        placeholder whatever their number, so the statement is prepared once."""
        if self.sqlite:
            return f"{column} IN (SELECT value FROM json_each(:{param}))"
        return f"{column} = ANY(:{param})"

    def ids(self, values: Collection[int] | Collection[str]) -> Any:
        return json.dumps(list(values)) if self.sqlite else list(values)

    def json_rows(self, table: Table, columns: Sequence[str], param: str) -> tuple[list[str], str]:
        """Expressions for `columns` of each row of the JSON array bound to `param`
        (rows as lists, in the order of `columns`), and the FROM clause yielding them."""
        if self.sqlite:
            exprs = [f"json_extract(j.value, '$[{i}]')" for i in range(len(columns))]
            return exprs, f"json_each(:{param}) AS j"
        # Text stays text: a CAST to VARCHAR(n) would cut a long value silently where
        # the INSERT's own conversion refuses it.
        exprs = [
            f"j.value->>{i}"
            if _is_text(table.c[name].type)
            else f"CAST(j.value->>{i} AS {table.c[name].type.compile(self._engine_dialect)})"
            for i, name in enumerate(columns)
        ]
        return exprs, f"json_array_elements(CAST(:{param} AS json)) AS j(value)"

    def insert_json(
        self, table: Table, columns: Sequence[str], constants: Sequence[str] = ()
    ) -> str:
        """INSERT of the rows in the JSON parameter `rows` (see `json_rows`), with
        `constants` bound once as parameters of the same names."""
        exprs, source = self.json_rows(table, columns, "rows")
        # Quoted: `groups` is a keyword to SQLite.
        names = ", ".join(f'"{name}"' for name in (*columns, *constants))
        values = ", ".join((*exprs, *(f":{name}" for name in constants)))
        return self.sql(f'INSERT INTO "{table.name}" ({names}) SELECT {values} FROM {source}')

    @staticmethod
    def rows(rows: Sequence[Sequence[Any]]) -> str:
        """Rows of plain values (text, numbers, booleans) as the JSON parameter."""
        return json.dumps(rows, ensure_ascii=False, check_circular=False, separators=(",", ":"))

    def for_update(self, of: str = "") -> str:
        """Row locks on PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises."""
        if self.sqlite:
            return ""
        return f" FOR UPDATE OF {of}" if of else " FOR UPDATE"


def _is_text(type_: TypeEngine[Any]) -> bool:
    base = type_.impl_instance if isinstance(type_, TypeDecorator) else type_
    return isinstance(base, String)


_dialects: weakref.WeakKeyDictionary[Engine, Dialect] = weakref.WeakKeyDictionary()


def dialect(engine: Engine) -> Dialect:
    found = _dialects.get(engine)
    if found is None:
        found = _dialects[engine] = Dialect(engine)
    return found


@contextmanager
def write_cursor(engine: Engine) -> Iterator[Any]:
    """A DBAPI cursor inside one write transaction, committed on success.

    On the pooled DBAPI connection itself: SQLAlchemy's Connection and its events
    cost more per transaction than the few statements in it.
    """
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        try:
            if is_sqlite(engine):
                # The write lock at BEGIN, as storage.engine.write_session takes it,
                # and seen waiting for it meanwhile (storage.waiting_writers).
                waiters = waiting_writers(engine)
                with waiters.waiting() if waiters is not None else nullcontext():
                    cursor.execute("BEGIN IMMEDIATE")
            yield cursor
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
        finally:
            cursor.close()
    finally:
        connection.close()
