"""Builds the Context an entry point runs with: engine, schema check, topics, key, role."""

from __future__ import annotations

import stat
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from console import known_databases
from console.clock import Clock, SystemClock
from console.config import Config, database_url
from console.context import Context, hash_key_path, load_hash_key, sync_topics
from console.roles import Role, current_operator, role_for, unix_groups
from console.service.identity import acting_for
from storage.engine import is_sqlite, make_engine
from storage.migrate import current_revision, head_revision, upgrade


class StartupError(Exception):
    """Why Tocsin cannot start, phrased for the town's IT person."""


def open_engine(config: Config, *, migrate_sqlite: bool = True, create: bool = False) -> Engine:
    """The configured database, upgraded if it is the embedded one.

    A SQLite file this installation created and that has gone is refused, unless
    `create` (`tocsin db init`): Tocsin never silently starts an empty town."""
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
        raise StartupError(f"database {engine_label(url)}: cannot connect: {exc.orig}") from exc
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


def engine_label(url: str) -> str:
    """The URL without its password, for messages."""
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
