"""PostgreSQL plans by the statistics ANALYZE gathers: an import gathers the contact
tables' own when autovacuum would, rather than a minute later (or never, where it is
off). SQLite plans without them and is left as it is."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text

import console.contacts.importer as importer
from console.contacts.importer import ImportOptions, import_contacts
from console.context import Context
from storage.engine import CONTACT_TABLES, is_sqlite, refresh_statistics


def _town(tmp_path: Path, rows: int) -> Path:
    path = tmp_path / "habitants.csv"
    lines = [
        "Nom;Téléphone",
        *(f"Habitant {i};06 12 34 {i // 100:02d} {i % 100:02d}" for i in range(rows)),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_an_import_gathers_the_contact_tables_statistics(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[tuple[str, ...], int]] = []
    monkeypatch.setattr(
        importer,
        "refresh_statistics",
        lambda _engine, tables, changed: asked.append((tables, changed)),
    )
    import_contacts(ctx, _town(tmp_path, 12), ImportOptions())
    assert asked == [(CONTACT_TABLES, 12)]
    # A dry run writes nothing, and asks nothing.
    import_contacts(ctx, _town(tmp_path, 3), ImportOptions(dry_run=True))
    assert len(asked) == 1


def _reltuples(engine: Engine) -> float:
    with engine.connect() as conn:
        return float(
            conn.execute(
                text("SELECT reltuples FROM pg_class WHERE relname = 'contact'")
            ).scalar_one()
        )


def test_statistics_are_gathered_when_autovacuum_would(ctx: Context, tmp_path: Path) -> None:
    engine = ctx.engine
    if is_sqlite(engine):
        assert refresh_statistics(engine, CONTACT_TABLES, 1_000_000) is False
        return
    import_contacts(ctx, _town(tmp_path, 120), ImportOptions())
    # Gathered by the import: 120 rows where there were none known.
    assert _reltuples(engine) == 120
    # 50 rows and 10% of the table: not yet; nothing written: never.
    assert refresh_statistics(engine, CONTACT_TABLES, 62) is False
    assert refresh_statistics(engine, CONTACT_TABLES, 0) is False
    assert refresh_statistics(engine, CONTACT_TABLES, 63) is True
