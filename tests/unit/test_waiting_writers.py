"""Writers waiting for SQLite's write lock are seen by the one holding it, and a
long import keeps one transaction while nobody waits and steps aside as soon as
someone does."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

import console.contacts.importer as importer
from console.contacts.importer import ImportOptions, import_contacts
from console.context import Context
from storage.engine import make_engine, write_session
from storage.waiting_writers import WaitingWriters, waiting_writers

pytestmark = pytest.mark.sqlite_file


def test_a_waiter_is_seen_while_it_waits_and_only_then(tmp_path: Path) -> None:
    waiters = WaitingWriters(tmp_path / "town.db")
    assert not waiters.present()
    other = WaitingWriters(tmp_path / "town.db")  # another process or thread
    with other.waiting():
        assert waiters.present()
        with other.waiting():  # two at once
            assert waiters.present()
    assert not waiters.present()
    assert waiters.usable


def test_where_the_file_cannot_be_made_nobody_is_seen(tmp_path: Path) -> None:
    waiters = WaitingWriters(tmp_path / "gone" / "town.db")
    with waiters.waiting():
        assert not waiters.present()
    assert not waiters.usable


def test_only_a_sqlite_file_has_waiters(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'town.db'}")
    found = waiting_writers(engine)
    assert found is not None and found.path == (tmp_path / "town.db-waiters").resolve()
    assert waiting_writers(make_engine("sqlite://")) is None
    engine.dispose()


def test_a_write_session_waiting_for_the_lock_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "town.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    done = threading.Event()

    def write() -> None:
        with write_session(engine) as session:
            session.execute(text("INSERT INTO t VALUES (1)"))
        done.set()

    thread = threading.Thread(target=write)
    thread.start()
    waiters = waiting_writers(engine)
    assert waiters is not None
    assert _eventually(waiters.present)
    holder.execute("COMMIT")
    thread.join(5)
    assert done.is_set()
    assert not waiters.present()
    holder.close()
    engine.dispose()


def _eventually(check: object, seconds: float = 5.0) -> bool:
    assert callable(check)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return False


def town_file(tmp_path: Path, rows: int) -> Path:
    lines = ["Nom;Téléphone"] + [
        f"Habitant {i};06 12 {i // 10000:02d} {i // 100 % 100:02d} {i % 100:02d}"
        for i in range(rows)
    ]
    path = tmp_path / "habitants.csv"
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return path


@pytest.fixture
def slow_chunks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Chunks of 50 rows that take 20 ms each to write; records the commits."""
    events: list[str] = []
    monkeypatch.setattr(importer.rows, "CHUNK_ROWS", 50)
    real_chunk = importer.writing.Writer._chunk

    def slow(self: importer.writing.Writer, *args: object) -> importer.writing.Tally:
        time.sleep(0.02)
        return real_chunk(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importer.writing.Writer, "_chunk", slow)
    monkeypatch.setattr(importer.writing, "chunk_committed", lambda rows: events.append("commit"))
    return events


def test_nobody_waiting_the_import_keeps_its_transaction(
    ctx: Context, tmp_path: Path, slow_chunks: list[str]
) -> None:
    report = import_contacts(ctx, town_file(tmp_path, 1000), ImportOptions())
    assert report.imported == 1000
    # 20 chunks, at least 0.4 s in all: one transaction, no pause.
    assert slow_chunks == ["commit"]


def test_a_writer_waiting_makes_the_import_step_aside(
    ctx: Context,
    engine: Engine,
    tmp_path: Path,
    slow_chunks: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_insert = importer.writing.Writer._insert
    threads: list[threading.Thread] = []

    def alert() -> None:
        with write_session(engine) as session:
            session.execute(text("UPDATE contact SET notes = 'alerte' WHERE 0"))
        slow_chunks.append("alert written")

    def insert(self: importer.writing.Writer, new: object) -> None:
        real_insert(self, new)  # type: ignore[arg-type]
        if not threads:
            # The console or the worker wants the lock while the import holds it.
            threads.append(threading.Thread(target=alert))
            threads[0].start()

    monkeypatch.setattr(importer.writing.Writer, "_insert", insert)
    report = import_contacts(ctx, town_file(tmp_path, 1000), ImportOptions())
    threads[0].join(5)
    assert report.imported == 1000
    # The import committed what it had, the alert wrote, the import went on.
    assert slow_chunks[:2] == ["commit", "alert written"]
    assert slow_chunks.count("commit") >= 2


def test_a_file_another_user_made_is_locked_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with WaitingWriters(tmp_path / "town.db").waiting():
        pass  # made by the service's user
    real_open = os.open

    def not_writable(path: str, flags: int, *args: int) -> int:
        # What another user meets (root would open it anyway).
        if flags & os.O_RDWR:
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", not_writable)
    other = WaitingWriters(tmp_path / "town.db")
    with other.waiting():
        assert WaitingWriters(tmp_path / "town.db").present()
    assert other.usable
