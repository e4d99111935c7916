"""Fixtures: a migrated database (SQLite file or PostgreSQL), a frozen clock, a context.

The suite runs on SQLite by default; TOCSIN_TEST_DATABASE=postgresql://... runs the
very same tests on PostgreSQL (scripts/test does both).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from console.clock import FrozenClock
from console.config import Config
from console.context import Context, sync_topics
from console.roles import Role
from storage.engine import make_engine
from storage.migrate import upgrade
from tests.support import missing_component

# 14 March 2026, 10:00 in Paris: a Saturday morning outside quiet hours.
FROZEN_AT = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)
TEST_KEY = b"0123456789abcdef" * 4


def _test_database() -> str:
    return os.environ.get("TOCSIN_TEST_DATABASE", "sqlite")


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database made once per session: a file to copy, or a PG database."""
    wanted = _test_database()
    if wanted == "sqlite":
        path = tmp_path_factory.mktemp("template") / "template.db"
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)
        engine.dispose()
        yield str(path)
        return
    url = make_url(make_engine(wanted).url)
    name = f"tocsin_test_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url.render_as_string(False))
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        missing_component(f"PostgreSQL at {url.host}:{url.port} unusable: {exc}")
    test_url = url.set(database=name).render_as_string(False)
    engine = make_engine(test_url)
    upgrade(engine)
    engine.dispose()
    yield test_url
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def db_url(_template: str, tmp_path: Path) -> Iterator[str]:
    if _test_database() == "sqlite":
        path = tmp_path / "tocsin.db"
        shutil.copy(_template, path)
        yield f"sqlite:///{path}"
        return
    engine = make_engine(_template)
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    yield _template


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(FROZEN_AT)


@pytest.fixture
def config() -> Config:
    return Config()


def make_context(
    engine: Engine,
    config: Config,
    clock: FrozenClock,
    role: Role = Role.ADMIN,
    operator: str = "secretariat",
) -> Context:
    sync_topics(engine, config)
    return Context(
        engine=engine, config=config, clock=clock, operator=operator, role=role, hash_key=TEST_KEY
    )


@pytest.fixture
def ctx(engine: Engine, config: Config, clock: FrozenClock) -> Context:
    return make_context(engine, config, clock)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of the SQLite file's own faults (deleted, full disk) make their own file:
    the PostgreSQL pass would only run them twice. Tests of PostgreSQL's row locks
    have nothing to test on SQLite (one writer at a time)."""
    other = "postgresql" if _test_database() == "sqlite" else "sqlite_file"
    kept = [item for item in items if item.get_closest_marker(other) is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept
