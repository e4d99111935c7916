"""The `tocsin status` figures, read with plain SQL through the engine alone.

`tocsin status` is a process of its own, asked by scripts and monitoring every few
seconds: loading the ORM and the tables' models would be most of its time. So this
module reads the same rows the ORM would, by name, and converts times as the
models' UTC columns do (aware, in UTC). Envois' live figures (send_queue) and the
console reach the same answers through `campaign_ops.queue_status`.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from console.sending.states import ACTIVE_STATUSES, SENDING, STATES, SUBMITTED
from storage.faults import Fault, disk_fault, disk_fault_at, probe, probe_file

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from storage.libpq import Connection

# A worker whose last heartbeat is older than this is taken for dead (it beats every
# few seconds).
ALIVE_WITHIN_S = 15
# A worker beats every few seconds; silent this long, it is waiting on something.
SILENT_AFTER_S = 8


@dataclass(frozen=True)
class PostgresqlDatabase:
    """A PostgreSQL database `tocsin status` reads through libpq alone (storage.libpq):
    SQLAlchemy and its dialect, even psycopg, would be most of the command's time."""

    url: str  # as configured: the engine's way if libpq's fails
    conninfo: str  # the same database for libpq
    # The connection the start-up checked the database with, read on and closed.
    connection: Connection | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Heartbeat:
    owner: str
    host: str
    provider: str
    last_seen: datetime
    sent: int


class _Seen(Protocol):
    @property
    def last_seen(self) -> datetime: ...


def silent_database_fault(engine: Engine, workers: Sequence[_Seen], now: datetime) -> Fault | None:
    """Why sending is paused: a full disk, seen at once; a locked or unreachable
    database, asked only when no worker has been heard from lately (a worker waiting
    it out cannot say so in the database, and the question takes the lock)."""
    return _silent(workers, now, lambda: disk_fault(engine), lambda: probe(engine))


def _silent(
    workers: Sequence[_Seen],
    now: datetime,
    disk: Callable[[], Fault | None],
    probe_now: Callable[[], Fault | None],
) -> Fault | None:
    full = disk()
    if full is not None:
        return full
    newest = max((w.last_seen for w in workers), default=None)
    if newest is not None and (now - newest).total_seconds() < SILENT_AFTER_S:
        return None
    return probe_now()


# Every statement reads the same on SQLite and PostgreSQL, with :name parameters
# (sqlite3's own style; SQLAlchemy's text() for PostgreSQL).
_COUNTS = "SELECT state, sum(n) FROM campaign_tally GROUP BY state"  # console.sending.tallies
_LAST_MINUTE = (
    "SELECT count(*) FROM delivery_event "
    "WHERE source = 'send' AND state = :submitted AND at >= :since"
)
_NO_REPORT = "SELECT count(*) FROM message WHERE state = :submitted AND updated_at < :deadline"
_ACTIVE = "SELECT count(*) FROM campaign WHERE status IN ({})".format(
    ", ".join(f"'{status}'" for status in ACTIVE_STATUSES)
)
_WORKERS = (
    "SELECT owner, host, provider, last_seen, sent FROM worker_heartbeat "
    "WHERE last_seen >= :since ORDER BY owner"
)

Query = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]


def sqlite_time(value: datetime) -> str:
    """A time as the models' UTC columns store it in SQLite (SQLAlchemy's format),
    so that comparing the text compares the times."""
    utc = value.astimezone(UTC)
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d} "
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{utc.microsecond:06d}"
    )


def _utc(value: datetime | str) -> datetime:
    """A time read back as the models return it: aware, in UTC (SQLite's text, and
    databases without time zones, hold UTC without an offset)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.utcoffset() is None else value.astimezone(UTC)


def _alive_workers(
    query: Query, stamp: Callable[[datetime], Any], now: datetime
) -> list[Heartbeat]:
    """The workers heard from in the last ALIVE_WITHIN_S seconds, by owner."""
    rows = query(_WORKERS, {"since": stamp(now - timedelta(seconds=ALIVE_WITHIN_S))})
    return [
        Heartbeat(
            owner=owner, host=host, provider=provider, last_seen=_utc(last_seen), sent=int(sent)
        )
        for owner, host, provider, last_seen, sent in rows
    ]


def read_queue_status(
    database: Engine | Path | PostgresqlDatabase, now: datetime, report_timeout_minutes: int
) -> dict[str, Any]:
    """The `tocsin status` figures: messages per state, in flight, rate, workers.

    `database` is an engine, or a SQLite file read straight with sqlite3, or a
    PostgreSQL database read straight through libpq (the command's own process:
    neither SQLAlchemy nor psycopg is even loaded)."""
    if isinstance(database, Path):
        return _from_file(database, now, report_timeout_minutes)
    if isinstance(database, PostgresqlDatabase):
        return _from_postgresql(database, now, report_timeout_minutes)
    from sqlalchemy import text

    engine = database
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:

        def query(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
            return [tuple(row) for row in conn.execute(text(sql), params)]

        return _figures(
            query,
            sqlite_time if sqlite else (lambda value: value.astimezone(UTC)),
            now,
            report_timeout_minutes,
            lambda workers: silent_database_fault(engine, workers, now),
        )


def _from_file(path: Path, now: datetime, report_timeout_minutes: int) -> dict[str, Any]:
    try:
        return _read_file(path, now, report_timeout_minutes)
    except sqlite3.Error:
        # Met again through SQLAlchemy, whose error the command words (cli.database).
        from storage.engine import make_engine

        engine = make_engine(f"sqlite:///{path}")
        try:
            return read_queue_status(engine, now, report_timeout_minutes)
        finally:
            engine.dispose()


def _read_file(path: Path, now: datetime, report_timeout_minutes: int) -> dict[str, Any]:
    from storage.engine import BUSY_TIMEOUT_S

    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        # As storage.engine opens every connection; one read transaction, as through it.
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL"):
            conn.execute(f"PRAGMA {pragma}")
        conn.execute("BEGIN")

        def query(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
            return list(conn.execute(sql, params).fetchall())

        def fault(workers: Sequence[_Seen]) -> Fault | None:
            return _silent(workers, now, lambda: disk_fault_at(path), lambda: probe_file(path))

        figures = _figures(query, sqlite_time, now, report_timeout_minutes, fault)
        conn.execute("ROLLBACK")
        return figures
    finally:
        conn.close()


_PLACEHOLDER = re.compile(r"(?<![:\w]):(\w+)")


def _from_postgresql(
    database: PostgresqlDatabase, now: datetime, report_timeout_minutes: int
) -> dict[str, Any]:
    from storage import libpq

    try:
        with database.connection or libpq.connect(database.conninfo) as conn:

            def query(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
                names: list[str] = []

                def number(found: re.Match[str]) -> str:
                    names.append(found[1])
                    return f"${len(names)}"

                numbered = _PLACEHOLDER.sub(number, sql)
                return conn.execute(numbered, [params[name] for name in names])

            # No file to watch, and the server answered: what `probe` would say.
            def fault(workers: Sequence[_Seen]) -> Fault | None:
                return _silent(workers, now, lambda: None, lambda: None)

            return _figures(
                query, lambda value: value.astimezone(UTC), now, report_timeout_minutes, fault
            )
    except libpq.LibpqError:
        # Met again through SQLAlchemy, whose error the command words (cli.database).
        from storage.engine import make_engine

        engine = make_engine(database.url)
        try:
            return read_queue_status(engine, now, report_timeout_minutes)
        finally:
            engine.dispose()


def _figures(
    query: Query,
    stamp: Callable[[datetime], Any],
    now: datetime,
    report_timeout_minutes: int,
    fault_of: Callable[[Sequence[_Seen]], Fault | None],
) -> dict[str, Any]:
    by_state: dict[str, int] = dict.fromkeys(STATES, 0)
    for state, n in query(_COUNTS, {}):
        by_state[state] = int(n)
    submitted = str(SUBMITTED)
    [(last_minute,)] = query(
        _LAST_MINUTE, {"submitted": submitted, "since": stamp(now - timedelta(minutes=1))}
    )
    # Submitted long ago and never reported on: the provider's silence is shown.
    deadline = now - timedelta(minutes=report_timeout_minutes)
    [(no_report,)] = query(_NO_REPORT, {"submitted": submitted, "deadline": stamp(deadline)})
    [(active,)] = query(_ACTIVE, {})
    workers = _alive_workers(query, stamp, now)
    fault = fault_of(workers)
    return {
        "messages": {state: int(by_state.get(state, 0)) for state in STATES},
        "in_flight": int(by_state.get(SENDING, 0)),
        "no_report": int(no_report),
        "rate_per_second": round(int(last_minute) / 60, 2),
        "active_campaigns": int(active),
        "worker_alive": bool(workers),
        "workers": [
            {
                "owner": w.owner,
                "host": w.host,
                "provider": w.provider,
                "last_seen": w.last_seen.isoformat(),
                "sent": w.sent,
            }
            for w in workers
        ],
        "database_fault": fault and str(fault),
    }
