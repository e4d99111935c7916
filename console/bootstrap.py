"""Builds the Context an entry point runs with: engine, schema check, topics, key, role."""

from __future__ import annotations

import re
import sqlite3
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from console import known_databases
from console.clock import Clock, SystemClock
from console.config import Config, database_url
from console.consent.suppression import key_fingerprint, load_or_create_key
from console.context import Context, hash_key_path, load_hash_key, sync_topics, wanted_topics
from console.roles import Role, current_operator, role_for, unix_groups
from console.service.identity import acting_for
from storage.engine import BUSY_TIMEOUT_S, is_sqlite, make_engine
from storage.migrate import current_revision, head_revision, upgrade

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from console.sending.status import PostgresqlDatabase


class StartupError(Exception):
    """Why Tocsin cannot start, phrased for the town's IT person."""


def open_engine(config: Config, *, migrate_sqlite: bool = True, create: bool = False) -> Engine:
    """The configured database, upgraded if it is the embedded one.

    A SQLite file this installation created and that has gone is refused, unless
    `create` (`tocsin db init`): Tocsin never silently starts an empty town."""
    from sqlalchemy.exc import OperationalError, SQLAlchemyError

    url = database_url(config)
    try:
        engine = make_engine(url)
        if is_sqlite(engine):
            database = engine.url.database
            if database and database != ":memory:" and not database.startswith("file:"):
                _check_sqlite_file(Path(database), config, create)
            if migrate_sqlite:
                # The embedded database upgrades itself; PostgreSQL waits for `db upgrade`.
                upgrade(engine)
            return engine
        current = current_revision(engine)
    except OperationalError as exc:
        # libpq puts its hint on a line of its own: the one line says both.
        said = " ".join(str(exc.orig).split())
        raise StartupError(f"database {engine_label(url)}: cannot connect: {said}") from exc
    except SQLAlchemyError as exc:
        raise StartupError(f"database {engine_label(url)}: {exc}") from exc
    if current != head_revision():
        raise StartupError(
            f"database {engine_label(url)} is at schema {current or 'none'}, "
            f"this Tocsin needs {head_revision()}: run `tocsin db upgrade`"
        )
    return engine


def _check_sqlite_file(database: Path, config: Config, create: bool) -> None:
    key_path = hash_key_path(config)
    if database.exists():
        known_databases.remember(database, key_path)
        _mend_side_files(database)
        return
    if not create and known_databases.was_created(database, key_path):
        raise StartupError(
            f"database {database} has gone (deleted or moved): Tocsin created it and "
            "will not start an empty one in its place; restore the file or a backup "
            "(`tocsin db restore FILE`), or start afresh with `tocsin db init`"
        )
    database.parent.mkdir(parents=True, exist_ok=True)
    # Written down before it exists, so a crash between the two cannot forget it.
    known_databases.remember(database, key_path)


def _mend_side_files(database: Path) -> None:
    """SQLite's -wal and -shm files must be as writable as the database: one left
    read-only (the database made read-only for a moment, a copy by another user)
    locks everybody out with "attempt to write a readonly database". Mended when it
    is ours; otherwise the one line says what to run."""
    mode = stat.S_IMODE(database.stat().st_mode)
    for suffix in ("-wal", "-shm"):
        side = database.with_name(database.name + suffix)
        try:
            side_stat = side.stat()
        except FileNotFoundError:
            continue
        if stat.S_IMODE(side_stat.st_mode) & mode == mode:
            continue
        try:
            side.chmod(stat.S_IMODE(side_stat.st_mode) | mode)
        except PermissionError:
            raise StartupError(
                f"{side} is less writable than {database.name} "
                f"({stat.filemode(side_stat.st_mode)} against {stat.filemode(mode)}): "
                f"everyone would be locked out; run `chmod {mode:o} {side}` as its owner"
            ) from None


def reading_database(config: Config) -> Engine | Path | PostgresqlDatabase:
    """The database for a verb that only reads (`tocsin status`): a SQLite file the
    URL names plainly, to read with sqlite3 itself, a PostgreSQL database the URL
    names plainly, to read through libpq itself, or an engine.

    When this start has nothing to do (the file exists, the schema is at head, the
    topics and the hash key are as configured: every start but the first after a
    change) it is checked with plain SQL, without loading SQLAlchemy (for a plain
    SQLite file; nor psycopg for PostgreSQL), the ORM, the tables' models or Alembic:
    most of such a verb's time.
    Otherwise, or if any of those checks fails, the whole start-up of `build_context`
    runs, which migrates, syncs, records or says in one line what is wrong, exactly
    as for any verb.
    """
    try:
        url = database_url(config)
        plain = _plain_sqlite_file(url)
        ready: Engine | Path | PostgresqlDatabase | None
        if plain:
            ready = _ready_file(plain, config)
        elif _PLAIN_POSTGRESQL.fullmatch(url):
            ready = _ready_postgresql(url, config)
        else:
            ready = _ready_engine(url, config)
    except Exception:  # the whole start-up meets it again and words it
        ready = None
    return ready if ready is not None else build_context(config).engine


# sqlite:///relative or sqlite:////absolute, with nothing SQLAlchemy would decode
# (a %-escape, a query string, a `file:` URI, memory).
_PLAIN_SQLITE = re.compile(r"sqlite(?:\+pysqlite)?:///([^?#%]+)")


# postgresql:// or postgresql+psycopg://, without a query string SQLAlchemy would
# read its own way: libpq reads the same URI (the driver's name taken out).
_PLAIN_POSTGRESQL = re.compile(r"postgresql(?:\+psycopg)?://([^?#]*)")


def _ready_postgresql(url: str, config: Config) -> PostgresqlDatabase | None:
    """`_ready_file` for PostgreSQL, through libpq alone (storage.libpq); the
    connection is handed on to read with."""
    from console.sending.status import PostgresqlDatabase
    from storage import libpq

    conninfo = "postgresql://" + url.split("://", 1)[1]
    key = load_or_create_key(hash_key_path(config))
    conn = libpq.connect(conninfo)
    try:
        revisions = [row[0] for row in conn.execute("SELECT version_num FROM alembic_version")]
        stored = conn.execute("SELECT value FROM meta WHERE key = 'hash_key_fingerprint'")
        topics = {
            (str(name), str(label), str(basis))
            for name, label, basis in conn.execute("SELECT key, label, legal_basis FROM topic")
        }
        ready = (
            revisions == [head_revision()]
            and stored == [(key_fingerprint(key),)]
            and wanted_topics(config) <= topics
        )
    except BaseException:
        conn.close()
        raise
    if not ready:
        conn.close()
        return None
    return PostgresqlDatabase(url, conninfo, conn)


def _plain_sqlite_file(url: str) -> Path | None:
    found = _PLAIN_SQLITE.fullmatch(url)
    if found is None or found[1] == ":memory:" or found[1].startswith("file:"):
        return None
    return Path(found[1])


def _ready_file(path: Path, config: Config) -> Path | None:
    if not path.exists():
        return None
    _check_sqlite_file(path, config, create=False)
    key = load_or_create_key(hash_key_path(config))
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        revisions = [row[0] for row in conn.execute("SELECT version_num FROM alembic_version")]
        stored = conn.execute(
            "SELECT value FROM meta WHERE key = 'hash_key_fingerprint'"
        ).fetchall()
        topics = set(conn.execute("SELECT key, label, legal_basis FROM topic").fetchall())
    finally:
        conn.close()
    ready = (
        revisions == [head_revision()]
        and stored == [(key_fingerprint(key),)]
        and wanted_topics(config) <= topics
    )
    return path if ready else None


def _ready_engine(url: str, config: Config) -> Engine | None:
    from sqlalchemy import text

    engine = make_engine(url)
    try:
        if is_sqlite(engine):
            database = engine.url.database
            if not database or database == ":memory:" or database.startswith("file:"):
                return None
            path = Path(database)
            if not path.exists():
                return None
            _check_sqlite_file(path, config, create=False)
        if current_revision(engine) != head_revision():
            return None
        key = load_or_create_key(hash_key_path(config))
        with engine.connect() as conn:
            stored = conn.execute(
                text("SELECT value FROM meta WHERE key = :key"), {"key": "hash_key_fingerprint"}
            ).scalar()
            topics = {
                (str(name), str(label), str(basis))
                for name, label, basis in conn.exec_driver_sql(
                    "SELECT key, label, legal_basis FROM topic"
                )
            }
        if stored == key_fingerprint(key) and wanted_topics(config) <= topics:
            return engine
    except BaseException:
        engine.dispose()
        raise
    engine.dispose()
    return None


def engine_label(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def build_context(
    config: Config,
    *,
    engine: Engine | None = None,
    clock: Clock | None = None,
    operator: str | None = None,
    role: Role | None = None,
) -> Context:
    engine = engine or open_engine(config)
    user = operator or acting_for(config) or current_operator()
    sync_topics(engine, config)
    key = load_hash_key(engine, hash_key_path(config))
    return Context(
        engine=engine,
        config=config,
        clock=clock or SystemClock(),
        operator=user,
        role=role if role is not None else role_for(user, unix_groups(user), config.roles),
        hash_key=key,
    )
