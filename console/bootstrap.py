"""Builds the Context an entry point runs with: engine, schema check, topics, key, role."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from console.clock import Clock, SystemClock
from console.config import Config, database_url
from console.context import Context, hash_key_path, load_hash_key, sync_topics
from console.roles import Role, current_operator, role_for, unix_groups
from storage.engine import is_sqlite, make_engine
from storage.migrate import current_revision, head_revision, upgrade


class StartupError(Exception):
    """Why Tocsin cannot start, phrased for the town's IT person."""


def open_engine(config: Config, *, migrate_sqlite: bool = True) -> Engine:
    url = database_url(config)
    try:
        engine = make_engine(url)
        if is_sqlite(engine):
            database = engine.url.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
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
    user = operator or current_operator()
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
