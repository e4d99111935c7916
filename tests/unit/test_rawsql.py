"""The hand-written SQL of the sender's hot path, on the database under test."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, text

from storage.rawsql import dialect, write_cursor


@pytest.fixture
def scratch(engine: Engine) -> Iterator[str]:
    """A table of ids that the test drops again (PostgreSQL's database is shared)."""
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t_scratch (id INTEGER PRIMARY KEY)"))
    yield "t_scratch"
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE t_scratch"))


def test_placeholders_are_translated_for_psycopg_only(engine: Engine) -> None:
    db = dialect(engine)
    sql = db.sql("SELECT :a, x::text FROM t WHERE y = :b_2")
    if db.sqlite:
        assert sql == "SELECT :a, x::text FROM t WHERE y = :b_2"
    else:
        assert sql == "SELECT %(a)s, x::text FROM t WHERE y = %(b_2)s"
    assert dialect(engine) is db


def test_ids_are_one_parameter_whatever_their_number(engine: Engine, scratch: str) -> None:
    db = dialect(engine)
    with write_cursor(engine) as cursor:
        cursor.executemany(
            db.sql(f"INSERT INTO {scratch} (id) VALUES (:id)"), [{"id": i} for i in range(1, 11)]
        )
    for wanted in ([3], [2, 5, 9], list(range(1, 11)), []):
        with write_cursor(engine) as cursor:
            cursor.execute(
                db.sql(f"SELECT id FROM {scratch} WHERE {db.in_ids('id', 'ids')} ORDER BY id"),
                {"ids": db.ids(wanted)},
            )
            assert [row[0] for row in cursor.fetchall()] == wanted


def test_a_failed_transaction_leaves_nothing(engine: Engine, scratch: str) -> None:
    db = dialect(engine)
    with pytest.raises(RuntimeError), write_cursor(engine) as cursor:
        cursor.execute(db.sql(f"INSERT INTO {scratch} (id) VALUES (:id)"), {"id": 1})
        raise RuntimeError("boom")
    with engine.connect() as conn:
        assert conn.execute(text(f"SELECT count(*) FROM {scratch}")).scalar_one() == 0


def test_datetimes_are_stored_as_sqlalchemy_stores_them(engine: Engine) -> None:
    at = datetime(2026, 3, 14, 9, 0, 0, 123456, tzinfo=UTC)
    stored = dialect(engine).datetime(at)
    if dialect(engine).sqlite:
        assert stored == "2026-03-14 09:00:00.123456"
    else:
        assert stored == at
    assert dialect(engine).datetime(None) is None
