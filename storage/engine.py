"""Engine factory: SQLite (WAL, busy timeout, foreign keys) or PostgreSQL by URL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # SQLAlchemy is loaded with the first engine, the ORM with the first session:
    # `tocsin status` reads a SQLite file without either (console.bootstrap).
    from sqlalchemy import Engine
    from sqlmodel import Session

# How long a SQLite connection waits for another one's write lock before it fails.
BUSY_TIMEOUT_S = 10


def normalise_url(url: str) -> str:
    """Let towns write postgresql:// and still get the psycopg 3 driver."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        return str(parsed.set(drivername="postgresql+psycopg").render_as_string(False))
    return url


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, echo: bool = False) -> Engine:
    from sqlalchemy import create_engine

    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, echo=echo, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S}
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True)


def _configure_sqlite(engine: Engine) -> None:
    from sqlalchemy import event

    from storage.waiting_writers import waiting_writers

    # pysqlite's own transaction handling defers BEGIN and ignores our choice of
    # lock mode; take it over so writers can BEGIN IMMEDIATE (see write_session).
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    waiters = waiting_writers(engine)
    _never_made_again(engine)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode == "DEFERRED" or waiters is None:
            conn.exec_driver_sql(f"BEGIN {mode}")
            return
        # A writer waiting for the lock says so (see storage.waiting_writers).
        with waiters.waiting():
            conn.exec_driver_sql(f"BEGIN {mode}")


def _never_made_again(engine: Engine) -> None:
    """A connection to a file this engine has opened before, and that has gone, is
    refused instead of making an empty base in its place: the worker's next pooled
    connection did, and a deleted town could then come back empty, migrated by the
    next start. (The first connection may make it: `tocsin db init`, a first start.)"""
    import sqlite3
    from pathlib import Path

    from sqlalchemy import event

    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    opened: list[bool] = []

    @event.listens_for(engine, "do_connect")
    def _refuse_a_new_file(_dialect: Any, _record: Any, _args: Any, _params: Any) -> None:
        if opened and not path.exists():
            raise sqlite3.OperationalError(f"unable to open database file: {path} has gone")

    @event.listens_for(engine, "connect")
    def _opened(_connection: Any, _record: Any) -> None:
        if not opened:
            opened.append(True)


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session for a read-then-write transaction, committed on success.

    On SQLite the write lock is taken at BEGIN, so two writers queue on the busy
    timeout instead of one failing when it upgrades its read snapshot.
    """
    from sqlmodel import Session

    bind = engine.execution_options(sqlite_begin="IMMEDIATE") if is_sqlite(engine) else engine
    with Session(bind, expire_on_commit=False) as session:
        yield session
        session.commit()


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    from sqlmodel import Session

    with Session(engine, expire_on_commit=False) as session:
        yield session


# The contact tables an import writes, and whose statistics its readers plan by.
CONTACT_TABLES = ("contact", "contact_group", "consent_state")


def refresh_statistics(engine: Engine, tables: tuple[str, ...], changed: int) -> bool:
    """After a bulk write, what autovacuum would do a minute later (or never, where it
    is off), done at once on PostgreSQL when autovacuum would do it (a table never
    analyzed, or more than 50 rows and 10% of it changed): VACUUM (ANALYZE).

    The statistics: without them a million fresh contacts are planned as a few
    hundred, and the Contacts screen's first page sorted the whole base (0.36 s at
    1,000,000 against 0.002 s). The visibility map: with the statistics the planner
    counts and searches on the indexes alone, which without it read every row they
    pass anyway (a search for a common name 0.74 s against 0.06 s). Whether it ran;
    SQLite (planned without statistics) is left as it is."""
    from sqlalchemy import text

    if is_sqlite(engine) or changed <= 0:
        return False
    with engine.connect() as conn:
        known = conn.execute(
            text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)"), {"t": tables[0]}
        ).scalar()
    if known is not None and known >= 0 and changed <= 50 + 0.1 * known:
        return False
    # VACUUM runs outside any transaction; a table another role owns is skipped with
    # a warning, not an error.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"VACUUM (ANALYZE) {', '.join(tables)}"))
    return True
