"""Backups in a format of our own, the same from SQLite and PostgreSQL and restorable
into either.

A backup is a gzip'd text file of JSON lines:

    {"tocsin_backup": 1, "schema": "0008", "engine": "sqlite", "created_at": ..., ...}
    {"table": "contact", "columns": ["id", "number", ...]}
    [1, "+33612345678", ...]                  one line per row
    ...
    {"end": {"counts": {"contact": 5000, ...}, "mac": "..."}}

Every table is read in one transaction (SQLite's read snapshot in WAL mode;
PostgreSQL's REPEATABLE READ, read only), so a backup taken while the worker sends
is one instant of the town: messages, their events, the chains and their heads
agree. The last line's HMAC, under a sub-key of the town's hash key, covers every
line before it: a file cut short or edited is refused before its load commits.

The processes' own bookkeeping (worker heartbeats, the SQLite sender lease) is not
the town's data and stays out.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    MetaData,
    Table,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (every table registered before the metadata is read)
from storage.chain import derive_chain_key

FORMAT = 1
# Runtime state of the processes, not the town's data: restored, it would only make
# a dead worker look alive.
# campaign_tally is derived: the message triggers rebuild it as a restore loads them.
SKIPPED_TABLES = frozenset({"worker_heartbeat", "sender_lease", "campaign_tally"})
# What any start of Tocsin writes into a new database: a restore replaces them.
START_TABLES = frozenset({"topic", "meta"})
_BATCH = 5000


class BackupError(Exception):
    """A backup that cannot be written or read, phrased as the one line to show."""


def backup_key(master: bytes) -> bytes:
    return derive_chain_key(master, "backup")


def data_tables() -> list[Table]:
    """Our tables in foreign-key order (parents first), runtime state left out."""
    return [t for t in SQLModel.metadata.sorted_tables if t.name not in SKIPPED_TABLES]


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot back up a {type(value).__name__}")


def _line(data: Any) -> bytes:
    return (
        json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=_encode) + "\n"
    ).encode("utf-8")


@dataclass
class Written:
    path: Path
    counts: dict[str, int]
    schema: str
    created_at: datetime


@dataclass
class _Writer:
    handle: gzip.GzipFile
    mac: Any
    counts: dict[str, int] = field(default_factory=dict)

    def write(self, data: Any) -> None:
        line = _line(data)
        self.mac.update(line)
        self.handle.write(line)


def write_backup(
    engine: Engine,
    path: Path,
    *,
    key: bytes,
    schema: str,
    header: Mapping[str, Any],
    now: datetime,
    on_snapshot: Callable[[Connection], None] | None = None,
) -> Written:
    """Dump every data table into `path` (written beside it, then renamed: a backup
    under its final name is always whole). `on_snapshot` runs inside the read
    transaction, after the snapshot is taken (the restore drill counts there)."""
    target = path.resolve()
    partial = target.with_name(f".{target.name}.partial")
    mac = hmac.new(backup_key(key), digestmod=hashlib.sha256)
    try:
        # 0600: a backup holds every resident's number.
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as handle:
            writer = _Writer(handle, mac)
            writer.write(
                {
                    "tocsin_backup": FORMAT,
                    "schema": schema,
                    "engine": engine.dialect.name,
                    "created_at": now,
                    **header,
                }
            )
            with _snapshot(engine) as conn:
                if on_snapshot is not None:
                    on_snapshot(conn)
                for table in data_tables():
                    _dump(conn, table, writer)
            handle.write(_line({"end": {"counts": writer.counts, "mac": mac.hexdigest()}}))
            handle.flush()
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return Written(target, writer.counts, schema, now)


class _snapshot:
    """One read transaction over every table."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None

    def __enter__(self) -> Connection:
        if self._engine.dialect.name == "postgresql":
            conn = self._engine.connect().execution_options(isolation_level="REPEATABLE READ")
            conn.begin()
            conn.execute(text("SET TRANSACTION READ ONLY"))
        else:
            conn = self._engine.connect()
            conn.begin()
        # SQLite takes its snapshot at the first read: take it now, for every table.
        conn.execute(text("SELECT 1 FROM chain_head LIMIT 1")).all()
        self._conn = conn
        return conn

    def __exit__(self, *exc: object) -> None:
        assert self._conn is not None
        self._conn.rollback()
        self._conn.close()


def _dump(conn: Connection, table: Table, writer: _Writer) -> None:
    columns = [c.name for c in table.columns]
    writer.write({"table": table.name, "columns": columns})
    order = list(table.primary_key.columns) or list(table.columns)
    result = conn.execution_options(stream_results=True, yield_per=_BATCH).execute(
        select(table).order_by(*order)
    )
    count = 0
    for row in result:
        writer.write(list(row))
        count += 1
    writer.counts[table.name] = count


# ---- reading ----------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    schema: str
    engine: str
    created_at: str
    fields: dict[str, Any]


def _lines(path: Path) -> Iterator[bytes]:
    try:
        with gzip.open(path, "rb") as handle:
            yield from handle
    except FileNotFoundError:
        raise BackupError(f"{path}: no such file") from None
    except (gzip.BadGzipFile, EOFError) as exc:
        raise BackupError(f"{path}: not a Tocsin backup, or cut short ({exc})") from None


def _decode(line: bytes, path: Path) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        raise BackupError(f"{path}: damaged backup (a line is not JSON)") from None


def read_header(path: Path) -> Header:
    for line in _lines(path):
        first = _decode(line, path)
        break
    else:
        raise BackupError(f"{path}: empty file, not a Tocsin backup")
    if not isinstance(first, dict) or first.get("tocsin_backup") != FORMAT:
        raise BackupError(f"{path}: not a Tocsin backup (format {FORMAT})")
    return Header(
        schema=str(first.get("schema", "")),
        engine=str(first.get("engine", "")),
        created_at=str(first.get("created_at", "")),
        fields=first,
    )


def row_counts(conn: Connection) -> dict[str, int]:
    """Rows per data table, as a backup counts them."""
    existing = set(inspect(conn).get_table_names())
    return {
        t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
        for t in data_tables()
        if t.name in existing
    }


def load_backup(conn: Connection, path: Path, *, key: bytes) -> dict[str, int]:
    """Insert every row of the backup through `conn` (the caller's transaction);
    returns the rows per table. Raises BackupError, before the caller commits, when
    the file does not check out under `key`."""
    mac = hmac.new(backup_key(key), digestmod=hashlib.sha256)
    lines = _lines(path)
    header = next(lines, None)
    if header is None:
        raise BackupError(f"{path}: empty file, not a Tocsin backup")
    mac.update(header)
    counts: dict[str, int] = {}
    table: Table | None = None
    batch: list[dict[str, Any]] = []
    columns: list[str] = []
    converters: list[Callable[[Any], Any]] = []
    end: dict[str, Any] | None = None
    for line in lines:
        data = _decode(line, path)
        if isinstance(data, list):
            if table is None or len(data) != len(columns):
                raise BackupError(f"{path}: damaged backup (a row out of place)")
            batch.append(
                {c: convert(v) for c, convert, v in zip(columns, converters, data, strict=True)}
            )
            counts[table.name] += 1
            if len(batch) >= _BATCH:
                conn.execute(insert(table), batch)
                batch = []
            mac.update(line)
            continue
        if table is not None and batch:
            conn.execute(insert(table), batch)
            batch = []
        if isinstance(data, dict) and "end" in data:
            end = data["end"]
            break
        if not isinstance(data, dict) or "table" not in data:
            raise BackupError(f"{path}: damaged backup (unexpected line)")
        mac.update(line)
        columns = [str(c) for c in data["columns"]]
        table, converters = _target_table(conn, str(data["table"]), columns, path)
        counts[table.name] = 0
    if end is None or not isinstance(end, dict):
        raise BackupError(f"{path}: cut short (no end line): nothing was restored")
    given = str(end.get("mac", ""))
    if not hmac.compare_digest(given, mac.hexdigest()):
        raise BackupError(
            f"{path}: the backup does not match the key (edited, damaged, or made with "
            "another key): nothing was restored"
        )
    if end.get("counts") != counts:
        raise BackupError(f"{path}: the row counts do not match: nothing was restored")
    return counts


def _target_table(
    conn: Connection, name: str, columns: list[str], path: Path
) -> tuple[Table, list[Callable[[Any], Any]]]:
    """The table to insert into, typed as our models type it (so times and booleans
    go in as every other write puts them), and a converter per column."""
    model = SQLModel.metadata.tables.get(name)
    existing = set(inspect(conn).get_table_names())
    if name not in existing:
        raise BackupError(f"{path}: table {name!r} is not in this database's schema")
    reflected = {c["name"]: c["type"] for c in inspect(conn).get_columns(name)}
    typed: list[Column[Any]] = []
    converters: list[Callable[[Any], Any]] = []
    for column in columns:
        if column not in reflected:
            raise BackupError(f"{path}: column {name}.{column} is not in this database")
        kind = (
            model.columns[column].type
            if model is not None and column in model.columns
            else reflected[column]
        )
        typed.append(Column(column, kind))
        converters.append(_datetime if isinstance(kind, DateTime) or _is_time(kind) else _same)
    return Table(name, MetaData(), *typed), converters


def _is_time(kind: Any) -> bool:
    return isinstance(getattr(kind, "impl", None), DateTime) or isinstance(
        getattr(kind, "impl_instance", None), DateTime
    )


def _same(value: Any) -> Any:
    return value


def _datetime(value: Any) -> Any:
    if value is None or isinstance(value, datetime):
        return value
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def reset_sequences(conn: Connection) -> None:
    """PostgreSQL: the id sequences continue after the restored rows."""
    if conn.dialect.name != "postgresql":
        return
    for table in data_tables():
        key = list(table.primary_key.columns)
        if len(key) != 1 or key[0].name != "id":
            continue
        conn.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f'COALESCE((SELECT MAX(id) FROM "{table.name}"), 1), '
                f'(SELECT MAX(id) FROM "{table.name}") IS NOT NULL) '
                f"WHERE pg_get_serial_sequence('{table.name}', 'id') IS NOT NULL"
            )
        )
