"""Writers waiting for SQLite's write lock, made visible to the one that holds it.

SQLite does not tell the holder of its write lock that someone waits: a waiter
sleeps in its busy handler and tries again. So a long writer (an import of a
city's residents) had to guess, and committed every half second with a pause
after each, whether anyone waited or not: at 1,000,000 residents, writing the same
index pages again at every commit doubled its time.

Now every writer holds a shared flock on `<database>-waiters` while it waits for
the lock (around its BEGIN IMMEDIATE), and the long writer asks between two of its
chunks whether anyone holds it: then it commits at once and steps aside; otherwise
it keeps its transaction on. flock is per open file, so threads and processes
alike are seen; a file made by another user is locked through a read-only open.
Where the file can be neither made nor read, nobody is seen, and the long writer
keeps to short transactions (`usable` is False).
"""

from __future__ import annotations

import fcntl
import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine


class WaitingWriters:
    def __init__(self, database: Path) -> None:
        self.path = Path(f"{database}-waiters")
        self.usable = True

    def _open(self) -> int | None:
        if not self.usable:
            return None
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o660)
        except PermissionError:
            pass
        except OSError:
            self.usable = False
            return None
        try:
            # Made by another user: flock needs no more than reading it.
            return os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self.usable = False
            return None

    @contextmanager
    def waiting(self) -> Iterator[None]:
        """Around a wait for the write lock: seen by `present` meanwhile."""
        fd = self._open()
        if fd is None:
            yield
            return
        try:
            with suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    def present(self) -> bool:
        """Whether some writer waits for the lock now."""
        fd = self._open()
        if fd is None:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return False
        finally:
            os.close(fd)  # and the probe's lock with it
        return False


_by_engine: weakref.WeakKeyDictionary[Engine, WaitingWriters] = weakref.WeakKeyDictionary()


def waiting_writers(engine: Engine) -> WaitingWriters | None:
    """The waiting writers of a SQLite file engine; None for others (PostgreSQL's
    row locks need none, an in-memory base has one connection)."""
    found = _by_engine.get(engine)
    if found is None:
        if engine.dialect.name != "sqlite":
            return None
        database = engine.url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        found = _by_engine[engine] = WaitingWriters(Path(database).resolve())
    return found
