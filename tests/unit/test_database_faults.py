"""A server's bad days, as Tocsin's code meets them: a lock held by someone else, a
full disk, a database file deleted or replaced, side files left read-only."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError, OperationalError

from console.bootstrap import StartupError, open_engine
from console.clock import FrozenClock
from console.config import Config, DatabaseConfig, PrivacyConfig
from console.sending.campaign_ops import queue_status
from storage.engine import make_engine
from storage.faults import DatabaseFile, Fault, passing_fault, probe, retry_while_locked
from storage.migrate import upgrade
from tests.conftest import make_context


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    path = tmp_path / "town.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def held_lock(sqlite_file: Path) -> Iterator[sqlite3.Connection]:
    """Someone else's open write transaction."""
    holder = sqlite3.connect(sqlite_file, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    yield holder
    holder.execute("ROLLBACK")
    holder.close()


def _error_from(work: str, path: Path) -> sqlite3.Error:
    connection = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        connection.execute(work)
    except sqlite3.Error as exc:
        return exc
    finally:
        connection.close()
    raise AssertionError(f"{work!r} did not fail")


def test_a_held_lock_is_a_passing_fault(sqlite_file: Path, held_lock: object) -> None:
    exc = _error_from("BEGIN IMMEDIATE", sqlite_file)
    assert passing_fault(exc) is Fault.LOCKED
    # As SQLAlchemy hands it over, too.
    assert passing_fault(OperationalError("BEGIN", {}, exc)) is Fault.LOCKED
    assert probe(make_engine(f"sqlite:///{sqlite_file}")) is Fault.LOCKED


def test_a_full_database_is_a_passing_fault(tmp_path: Path) -> None:
    assert passing_fault(_full_error(tmp_path / "small.db")) is Fault.DISK_FULL


def _full_error(path: Path) -> sqlite3.Error:
    # SQLite's own page cap stands for the disk: the same SQLITE_FULL.
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("CREATE TABLE t(x)")
    connection.execute("PRAGMA max_page_count = 4")
    try:
        for _ in range(10):
            connection.execute("INSERT INTO t VALUES (randomblob(4000))")
    except sqlite3.Error as exc:
        return exc
    finally:
        connection.close()
    raise AssertionError("the page cap did not bite")


def test_a_real_error_is_not_a_passing_fault(sqlite_file: Path) -> None:
    exc = _error_from("INSERT INTO no_such_table VALUES (1)", sqlite_file)
    assert passing_fault(exc) is None


def test_probe_finds_nothing_wrong_on_a_healthy_database(sqlite_file: Path) -> None:
    assert probe(make_engine(f"sqlite:///{sqlite_file}")) is None


def test_a_deleted_or_replaced_file_is_noticed(sqlite_file: Path) -> None:
    engine = make_engine(f"sqlite:///{sqlite_file}")
    opened = DatabaseFile.of(engine)
    assert opened is not None and opened.problem() is None
    copy = sqlite_file.with_name("copy.db")
    shutil.copy(sqlite_file, copy)
    os.replace(copy, sqlite_file)
    assert (
        opened.problem()
        == f"{sqlite_file}: the database file was replaced by another one while in use"
    )
    sqlite_file.unlink()
    assert opened.problem() == f"{sqlite_file}: the database file was deleted while in use"
    opened.close()


def test_an_empty_base_made_where_the_file_was_is_not_taken_for_it(sqlite_file: Path) -> None:
    """A connection that found no file made an empty base there: whichever inode it
    got (the deleted file's number would be free but for the descriptor kept)."""
    engine = make_engine(f"sqlite:///{sqlite_file}")
    opened = DatabaseFile.of(engine)
    assert opened is not None
    for leftover in sqlite_file.parent.glob("town.db*"):
        leftover.unlink()
    with make_engine(f"sqlite:///{sqlite_file}").connect() as conn:  # WAL mode: one page
        conn.exec_driver_sql("SELECT 1")
    assert (opened.problem() or "").endswith(
        "was deleted while in use (an empty one now stands in its place)"
    )
    opened.close()


def _locked() -> DBAPIError:
    return OperationalError("UPDATE", {}, sqlite3.OperationalError("database is locked"))


def test_an_alert_waits_out_a_lock_then_goes() -> None:
    attempts: list[int] = []
    waited: list[Fault] = []
    clock = [0.0]

    def work() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise _locked()
        return "sent"

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    result = retry_while_locked(
        work,
        patience_seconds=60,
        on_wait=waited.append,
        sleep=sleep,
        monotonic=lambda: clock[0],
    )
    assert result == "sent" and len(attempts) == 3 and waited == [Fault.LOCKED] * 2


def test_patience_ends_and_a_full_disk_is_not_waited_for() -> None:
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    def always_locked() -> None:
        raise _locked()

    with pytest.raises(OperationalError):
        retry_while_locked(
            always_locked, patience_seconds=5, sleep=sleep, monotonic=lambda: clock[0]
        )
    assert clock[0] >= 5
    calls: list[int] = []

    def full() -> None:
        calls.append(1)
        raise OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full"))

    with pytest.raises(OperationalError):
        retry_while_locked(full, patience_seconds=60, sleep=sleep, monotonic=lambda: clock[0])
    assert calls == [1]


def _config(tmp_path: Path, database: Path) -> Config:
    return Config(
        database=DatabaseConfig(url=f"sqlite:///{database}"),
        privacy=PrivacyConfig(hash_key_file=str(tmp_path / "key")),
    )


def test_a_database_that_has_gone_is_never_silently_recreated(tmp_path: Path) -> None:
    database = tmp_path / "data" / "town.db"
    config = _config(tmp_path, database)
    open_engine(config).dispose()
    assert database.exists()
    for path in database.parent.glob("town.db*"):
        path.unlink()
    with pytest.raises(StartupError, match=r"has gone.*db restore.*db init"):
        open_engine(config)
    assert not database.exists()
    # `tocsin db init` is the explicit way to start afresh.
    open_engine(config, create=True).dispose()
    assert database.exists()


def test_a_side_file_left_read_only_is_mended(sqlite_file: Path, tmp_path: Path) -> None:
    shm = sqlite_file.with_name(sqlite_file.name + "-shm")
    shm.write_bytes(b"")
    sqlite_file.chmod(0o660)
    shm.chmod(0o440)
    engine = open_engine(_config(tmp_path, sqlite_file))
    try:
        assert stat.S_IMODE(shm.stat().st_mode) & 0o660 == 0o660
    finally:
        engine.dispose()


def test_status_says_why_sending_waits(sqlite_file: Path, clock: FrozenClock) -> None:
    ctx = make_context(make_engine(f"sqlite:///{sqlite_file}"), Config(), clock)
    assert queue_status(ctx)["database_fault"] is None
    holder = sqlite3.connect(sqlite_file, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        status = queue_status(ctx)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert status["database_fault"] == "locked"
    assert status["worker_alive"] is False


def test_an_engine_never_makes_again_a_file_it_opened(sqlite_file: Path) -> None:
    engine = make_engine(f"sqlite:///{sqlite_file}")
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    engine.dispose()  # the next connection is a new one
    for leftover in sqlite_file.parent.glob("town.db*"):
        leftover.unlink()
    with pytest.raises(OperationalError, match="has gone"), engine.connect():
        pass
    assert not sqlite_file.exists()
    # A new engine on a path with no file yet makes it, as a first start does.
    fresh = sqlite_file.with_name("new.db")
    with make_engine(f"sqlite:///{fresh}").connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    assert fresh.exists()
