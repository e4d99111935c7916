"""The town every benchmark starts from: a migrated database and its residents,
imported the way a town imports them (a CSV through the importer)."""

from __future__ import annotations

from pathlib import Path

from console.clock import SystemClock
from console.config import Config, DatabaseConfig, PrivacyConfig
from console.contacts.importer import ImportOptions, import_contacts
from console.context import Context, load_hash_key, sync_topics
from console.demo import resident_rows
from console.roles import Role
from storage.engine import make_engine
from storage.migrate import upgrade


def bench_context(folder: Path, url: str, config: Config | None = None) -> Context:
    """An admin's context on a migrated database; the hash key lives in `folder`."""
    base = config or Config()
    config = base.model_copy(
        update={
            "database": DatabaseConfig(url=url),
            "privacy": PrivacyConfig(hash_key_file=str(folder / "key")),
        }
    )
    engine = make_engine(url)
    upgrade(engine)
    sync_topics(engine, config)
    return Context(
        engine=engine,
        config=config,
        clock=SystemClock(),
        operator="bench",
        role=Role.ADMIN,
        hash_key=load_hash_key(engine, folder / "key"),
    )


def import_residents(ctx: Context, folder: Path, count: int, zones: int = 0) -> None:
    """`count` demo residents (seeded: the same every run), in `zones` quartiers."""
    csv_path = folder / "residents.csv"
    csv_path.write_text(
        "nom;telephone;quartier\n"
        + "".join(
            f"{name};{number};{f'Zone {i % zones}' if zones else ''}\n"
            for i, (name, number, *_) in enumerate(resident_rows(count, 7))
        ),
        encoding="utf-8",
    )
    import_contacts(ctx, csv_path, ImportOptions())
