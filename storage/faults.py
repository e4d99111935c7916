"""What a database error means for whoever meets it: wait, or stop.

The worker must outlive a server's bad days: a write lock held for a while (an
import, someone's open transaction), a full disk, a file made read-only for a
moment. Those pass, and the work that met them was rolled back whole, so it can
simply be tried again. A missing or replaced database file does not pass: sending
on would write into a file nobody reads.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, TypeGuard, TypeVar

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.exc import DBAPIError

T = TypeVar("T")


def database_errors() -> tuple[type[BaseException], ...]:
    """Every error a database call may raise, through SQLAlchemy or straight from a
    driver (the raw-SQL hot path, storage/rawsql.py, meets the drivers' own errors).

    SQLAlchemy's and psycopg's only once something loaded them: a process that never
    did cannot meet them, and does not pay for loading them (`tocsin status` reads a
    SQLite file without either). Called where the error is caught
    (`except database_errors()`), it is asked only when an error comes."""
    errors: list[type[BaseException]] = [sqlite3.Error]
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
    if sqlalchemy_exc is not None:
        errors.append(sqlalchemy_exc.DBAPIError)
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None:
        errors.append(psycopg.Error)
    return tuple(errors)


def _wrapped(exc: BaseException) -> TypeGuard[DBAPIError]:
    """A driver's error as SQLAlchemy hands it on (the driver's own in `orig`)."""
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
    return sqlalchemy_exc is not None and isinstance(exc, sqlalchemy_exc.DBAPIError)


class Fault(StrEnum):
    LOCKED = "locked"
    DISK_FULL = "disk_full"
    READ_ONLY = "read_only"
    IO_ERROR = "io_error"
    UNREACHABLE = "unreachable"


# SQLite's extended error names (Python 3.11 gives them on sqlite3 errors).
_SQLITE = {
    "SQLITE_BUSY": Fault.LOCKED,
    "SQLITE_LOCKED": Fault.LOCKED,
    "SQLITE_FULL": Fault.DISK_FULL,
    "SQLITE_READONLY": Fault.READ_ONLY,
    "SQLITE_IOERR": Fault.IO_ERROR,
}
# PostgreSQL SQLSTATE classes and codes.
_POSTGRES = {
    "53100": Fault.DISK_FULL,  # disk_full
    "55P03": Fault.LOCKED,  # lock_not_available
    "57P01": Fault.UNREACHABLE,  # admin_shutdown (a restart)
    "57P03": Fault.UNREACHABLE,  # cannot_connect_now (starting up)
    "25006": Fault.READ_ONLY,  # read_only_sql_transaction (a standby)
}
# What the messages say when no code came with them.
_WORDS = (
    ("database is locked", Fault.LOCKED),
    ("database table is locked", Fault.LOCKED),
    ("database or disk is full", Fault.DISK_FULL),
    ("no space left on device", Fault.DISK_FULL),
    ("could not extend file", Fault.DISK_FULL),
    ("readonly database", Fault.READ_ONLY),
    ("disk i/o error", Fault.IO_ERROR),
    ("connection refused", Fault.UNREACHABLE),
    ("server closed the connection", Fault.UNREACHABLE),
    ("terminating connection", Fault.UNREACHABLE),
    ("connection is closed", Fault.UNREACHABLE),
)


def passing_fault(exc: BaseException) -> Fault | None:
    """The passing trouble behind a database error, or None for a real error."""
    original = exc.orig if _wrapped(exc) else exc
    name = getattr(original, "sqlite_errorname", None)
    if isinstance(name, str):
        if name == "SQLITE_READONLY_DBMOVED":
            return None  # the file was moved or deleted under us: no waiting mends that
        for prefix, fault in _SQLITE.items():
            if name == prefix or name.startswith(prefix + "_"):
                return fault
    code = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if isinstance(code, str):
        if code in _POSTGRES:
            return _POSTGRES[code]
        if code.startswith("08"):  # connection_exception
            return Fault.UNREACHABLE
    if _wrapped(exc) and exc.connection_invalidated:
        return Fault.UNREACHABLE
    text = str(original).lower()
    return next((fault for words, fault in _WORDS if words in text), None)


# PostgreSQL picked this transaction to lose a race with another one (two writers
# locking the same rows): nothing is wrong, the loser is rolled back whole.
_CONFLICTS = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure


def lost_race(exc: BaseException) -> bool:
    """Whether a database error only means "roll back and try again now"."""
    original = exc.orig if _wrapped(exc) else exc
    code = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    return code in _CONFLICTS


# Below this, SQLite cannot count on finishing a transaction (its journal grows).
LOW_DISK_BYTES = 1024 * 1024


def sqlite_path(engine: Engine) -> Path | None:
    """The SQLite database file, or None (PostgreSQL, in memory)."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def disk_fault(engine: Engine) -> Fault | None:
    """A full disk under the SQLite file: cheap enough for every refresh. A worker
    may still get some writes through (SQLite reuses its journal's space) while most
    fail, so its heartbeat alone does not tell."""
    return disk_fault_at(sqlite_path(engine))


def disk_fault_at(path: Path | None) -> Fault | None:
    """`disk_fault` of the SQLite file at `path` (None: not a SQLite file)."""
    if path is None:
        return None
    try:
        return Fault.DISK_FULL if shutil.disk_usage(path.parent).free < LOW_DISK_BYTES else None
    except OSError:
        return Fault.IO_ERROR


def probe(engine: Engine, *, lock_wait_seconds: float = 0.2) -> Fault | None:
    """Why writing would fail right now, asked without waiting long: for the figures
    shown while a worker is silent. Takes the write lock for an instant (SQLite), so
    it is for a silent worker, not for every refresh."""
    from sqlalchemy.exc import DBAPIError

    path = sqlite_path(engine)
    if path is None:
        try:
            with engine.connect() as server:
                server.exec_driver_sql("SELECT 1")
        except DBAPIError as exc:
            return passing_fault(exc) or Fault.UNREACHABLE
        return None
    return probe_file(path, lock_wait_seconds=lock_wait_seconds)


def probe_file(path: Path, *, lock_wait_seconds: float = 0.2) -> Fault | None:
    """`probe` of the SQLite file at `path`."""
    try:
        if shutil.disk_usage(path.parent).free < LOW_DISK_BYTES:
            return Fault.DISK_FULL
    except OSError:
        return Fault.IO_ERROR
    try:
        local = sqlite3.connect(path, timeout=lock_wait_seconds, isolation_level=None)
    except sqlite3.Error as exc:
        return passing_fault(exc) or Fault.IO_ERROR
    try:
        local.execute("BEGIN IMMEDIATE")
        local.execute("ROLLBACK")
    except sqlite3.Error as exc:
        return passing_fault(exc) or Fault.IO_ERROR
    finally:
        local.close()
    return None


# What a connection leaves where it found no file: nothing, or the first page
# that records the WAL mode; a town's base, even new, is many pages.
_EMPTY_BASE_BYTES = 4096


@dataclass(frozen=True)
class DatabaseFile:
    """The SQLite file an engine was opened on, to notice it deleted or replaced.

    A descriptor of the file is kept open: the file deleted, its inode number would
    otherwise be free for the next file made, and a new empty base made at the same
    path (by a connection that found no file there) could take it and pass for the
    town's. Held open, the number stays the file's.
    """

    path: Path
    device: int
    inode: int
    descriptor: int

    @classmethod
    def of(cls, engine: Engine) -> DatabaseFile | None:
        path = sqlite_path(engine)
        if path is None:
            return None
        descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        stat = os.fstat(descriptor)
        return cls(path, stat.st_dev, stat.st_ino, descriptor)

    def problem(self) -> str | None:
        """What happened to the file since it was opened, or None if it is still it."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return f"{self.path}: the database file was deleted while in use"
        except OSError as exc:
            return f"{self.path}: {exc.strerror or exc}"
        if (stat.st_dev, stat.st_ino) == (self.device, self.inode):
            return None
        if stat.st_size <= _EMPTY_BASE_BYTES:
            return (
                f"{self.path}: the database file was deleted while in use "
                "(an empty one now stands in its place)"
            )
        return f"{self.path}: the database file was replaced by another one while in use"

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.descriptor)


def retry_while_locked(
    work: Callable[[], T],
    *,
    patience_seconds: float,
    on_wait: Callable[[Fault], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> T:
    """Do `work` (one transaction), again while the database is locked or out of
    reach, for up to `patience_seconds`: for an alert, which must get out once the
    import or the open transaction in its way is done. Other errors, and a full
    disk (the operator must act), are raised at once."""
    deadline = monotonic() + patience_seconds
    while True:
        try:
            return work()
        except database_errors() as exc:
            fault = passing_fault(exc)
            if fault not in (Fault.LOCKED, Fault.UNREACHABLE) or monotonic() >= deadline:
                raise
            if on_wait is not None:
                on_wait(fault)
            sleep(0.5)
