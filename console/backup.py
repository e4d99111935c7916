"""`tocsin db backup` and `tocsin db restore`: everything of the town in one file, and
back into an empty database, only with the key it was made with.

The backup names the hash key's fingerprint: without that very key the suppression
list can no longer be matched and the chains no longer verify, so a restore with
another key is refused before anything is written (back the key file up with the
backups, elsewhere). A restore goes into an empty database only (a new SQLite file,
or a PostgreSQL database just created, with or without `db upgrade`): it never
merges into a town's data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, func, inspect, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import col

from console.audit import append_audit, read_heads
from console.clock import Clock, SystemClock
from console.config import Config, database_url
from console.consent.suppression import HashKeyError, key_fingerprint, load_or_create_key
from console.context import Context, hash_key_path
from console.errors import TocsinError
from console.roles import Role, current_operator, role_for, unix_groups
from storage.backup import (
    START_TABLES,
    BackupError,
    Written,
    data_tables,
    load_backup,
    read_header,
    reset_sequences,
    write_backup,
)
from storage.engine import is_sqlite, make_engine, write_session
from storage.migrate import current_revision, head_revision, known_revisions, upgrade
from storage.models import Meta

FINGERPRINT_META = "hash_key_fingerprint"


class RestoreRefused(TocsinError):
    pass


def backup_database(
    ctx: Context, path: Path, *, on_snapshot: Callable[[Connection], None] | None = None
) -> Written:
    """Write the backup, then audit it (after the snapshot: the entry is not in it)."""
    ctx.require(Role.ADMIN)
    heads = {h.chain: str(h.anchor) for h in read_heads(ctx.engine, ctx.hash_key)}
    try:
        written = write_backup(
            ctx.engine,
            path,
            key=ctx.hash_key,
            schema=head_revision(),
            header={"key_fingerprint": key_fingerprint(ctx.hash_key), "made_by": ctx.operator},
            now=ctx.clock.now(),
            on_snapshot=on_snapshot,
        )
    except OSError as exc:
        exc.filename = exc.filename or str(path)
        raise
    with write_session(ctx.engine) as session:
        append_audit(
            session,
            at=ctx.clock.now(),
            operator=ctx.operator,
            action="db.backup",
            target=f"file:{written.path.name}",
            details={"counts": written.counts, "heads": heads},
        )
    return written


@dataclass(frozen=True)
class Restored:
    counts: dict[str, int]
    schema: str
    created_at: str
    engine: str


def restore_database(
    config: Config,
    path: Path,
    *,
    engine: Engine | None = None,
    clock: Clock | None = None,
    operator: str | None = None,
    role: Role | None = None,
) -> Restored:
    """Load `path` into the configured database, which must be empty."""
    user = operator or current_operator()
    granted = role if role is not None else role_for(user, unix_groups(user), config.roles)
    if granted < Role.ADMIN:
        raise RestoreRefused(f"{user} needs the admin role to restore a backup", "permission")
    header = read_header(path)
    key = _existing_key(config, header.fields.get("key_fingerprint"))
    engine = engine or _target_engine(config)
    try:
        current = current_revision(engine)
        if current is not None:
            _check_empty(engine, key)
            if current != header.schema:
                raise RestoreRefused(
                    f"the backup is at schema {header.schema} and the database at {current}: "
                    "restore into a database with no schema at all (drop and create it, or a "
                    "new SQLite file); Tocsin builds its schema and upgrades it after",
                    "restore_schema",
                )
        elif header.schema not in known_revisions():
            raise RestoreRefused(
                f"the backup is at schema {header.schema}, which this Tocsin does not know: "
                "restore it with the version of Tocsin that made it",
                "restore_schema",
            )
        else:
            upgrade(engine, header.schema)
        with engine.begin() as conn:
            # What a start of Tocsin wrote (topics, the key's fingerprint) gives way to
            # the backup's own.
            for name in START_TABLES:
                conn.execute(text(f'DELETE FROM "{name}"'))
            counts = load_backup(conn, path, key=key)
            reset_sequences(conn)
        upgrade(engine)
    except SQLAlchemyError as exc:
        raise RestoreRefused(f"the database refused the restore: {exc}", "restore_db") from exc
    ctx = Context(
        engine=engine,
        config=config,
        clock=clock or SystemClock(),
        operator=user,
        role=granted,
        hash_key=key,
    )
    with write_session(engine) as session:
        append_audit(
            session,
            at=ctx.clock.now(),
            operator=user,
            action="db.restore",
            target=f"file:{path.name}",
            details={"made_at": header.created_at, "from": header.engine, "counts": counts},
        )
    return Restored(counts, header.schema, header.created_at, header.engine)


def _existing_key(config: Config, wanted: object) -> bytes:
    """The configured key, which must exist (a restore never makes a new one) and be
    the one the backup was made with."""
    path = hash_key_path(config)
    if not path.exists():
        raise RestoreRefused(
            f"{path}: no hash key: put back the key file this backup was made with "
            f"(fingerprint {wanted}) first",
            "restore_key",
        )
    try:
        key = load_or_create_key(path)
    except HashKeyError as exc:
        raise RestoreRefused(str(exc), "restore_key") from exc
    if key_fingerprint(key) != wanted:
        raise RestoreRefused(
            f"{path}: this is not the key the backup was made with (fingerprint "
            f"{key_fingerprint(key)}, the backup's {wanted}): put back the right key file",
            "restore_key",
        )
    return key


def _target_engine(config: Config) -> Engine:
    engine = make_engine(database_url(config))
    if is_sqlite(engine):
        database = engine.url.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    return engine


def _check_empty(engine: Engine, key: bytes) -> None:
    with engine.connect() as conn:
        found = _rows(conn)
        if found:
            listed = ", ".join(f"{count} {name}" for name, count in sorted(found.items()))
            raise RestoreRefused(
                f"the database is not empty ({listed}): a backup is restored only into an "
                "empty database, never over a town's data",
                "restore_not_empty",
            )
        stored = conn.execute(
            select(col(Meta.value)).where(col(Meta.key) == FINGERPRINT_META)
        ).scalar_one_or_none()
    if stored is not None and stored != key_fingerprint(key):
        raise RestoreRefused(
            "the database was started with another hash key: restore into a new database",
            "restore_key",
        )


def _rows(conn: Connection) -> dict[str, int]:
    existing = set(inspect(conn).get_table_names())
    found = {}
    for table in data_tables():
        if table.name in START_TABLES or table.name not in existing:
            continue
        count = int(conn.execute(select(func.count()).select_from(table)).scalar_one())
        if count:
            found[table.name] = count
    return found


__all__ = ["BackupError", "RestoreRefused", "backup_database", "restore_database"]
