"""Schema migrations with Alembic, driven from code (no alembic.ini to find).

Alembic is loaded only to migrate: knowing whether a schema is at head (every start
of Tocsin asks) reads the version table and the versions folder, which costs
nothing next to loading Alembic (a tenth of a second, most of `tocsin status`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Engine

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"

# As every migration names itself and the one it follows (a merge's tuple and
# branch labels are not used here: a file written so sends head_revision to Alembic).
_REVISION = re.compile(r'^revision = "([^"]+)"$', re.MULTILINE)
_DOWN_REVISION = re.compile(r'^down_revision = (?:None|"([^"]+)")$', re.MULTILINE)


def _config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


@cache
def head_revision() -> str:
    """The newest revision: the one no other migration follows."""
    revisions: set[str] = set()
    followed: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revision = _REVISION.findall(source)
        down = _DOWN_REVISION.findall(source)
        if not revision and not down:
            continue  # __init__.py
        if len(revision) != 1 or len(down) != 1:
            return _alembic_head()
        revisions.add(revision[0])
        followed.add(down[0])
    heads = revisions - followed
    if len(heads) != 1:
        return _alembic_head()
    return heads.pop()


def _alembic_head() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {script.revision for script in ScriptDirectory.from_config(_config()).walk_revisions()}


def current_revision(engine: Engine) -> str | None:
    """The schema's revision, None for a database Alembic never migrated."""
    from sqlalchemy import inspect

    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        versions = [
            row[0] for row in conn.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}")
        ]
    if len(versions) > 1:
        # Several heads (never made here): Alembic words the error.
        from alembic.runtime.migration import MigrationContext

        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    return versions[0] if versions else None


@contextmanager
def _migration(engine: Engine) -> Iterator[Config]:
    """A config holding one connection in a transaction, committed on success.

    SQLite changes a table by copying it and dropping the old one (Alembic's batch
    mode), and with foreign keys on the drop fails while other rows point at it. So
    the keys are off for the migration, as SQLite's own procedure for schema changes
    says: outside the transaction (inside, the pragma does nothing), checked with
    `foreign_key_check` before the commit, and on again after.
    """
    cfg = _config()
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        raw = conn.connection.driver_connection
        if sqlite and raw is not None:
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                yield cfg
                if sqlite and conn.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise RuntimeError("the migration left rows pointing at missing ones")
        finally:
            if sqlite and raw is not None:
                raw.execute("PRAGMA foreign_keys=ON")


def upgrade(engine: Engine, revision: str = "head") -> None:
    if revision == "head" and current_revision(engine) == head_revision():
        # Every start of Tocsin on SQLite comes here: an up-to-date schema needs no
        # transaction, and above all no foreign-key check, which reads the whole
        # base (1.5 s of `tocsin status` at 1,000,000 residents).
        return
    from alembic import command

    with _migration(engine) as cfg:
        command.upgrade(cfg, revision)


def revision(engine: Engine, message: str) -> None:
    """Autogenerate a new migration (developer tool)."""
    from alembic import command

    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.revision(cfg, message=message, autogenerate=True)


def downgrade(engine: Engine, revision: str) -> None:
    """Back to `revision` (tests prove each migration can be undone)."""
    from alembic import command

    with _migration(engine) as cfg:
        command.downgrade(cfg, revision)
