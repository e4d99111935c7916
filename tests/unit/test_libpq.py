"""storage.libpq: `tocsin status`'s reads through libpq itself. What it cannot read
it refuses with LibpqError, and the command then reads through the engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from storage import libpq


def _conninfo(db_url: str) -> str:
    return "postgresql://" + db_url.split("://", 1)[1]


def test_a_server_that_does_not_answer_is_refused() -> None:
    with pytest.raises(libpq.LibpqError):
        libpq.connect("postgresql://postgres@127.0.0.1:1/tocsin?connect_timeout=2")


@pytest.mark.postgresql
def test_values_read_as_psycopg_reads_them(db_url: str) -> None:
    at = datetime(2026, 3, 14, 9, 0, 0, 123456, tzinfo=UTC)
    with libpq.connect(_conninfo(db_url)) as conn:
        [row] = conn.execute(
            "SELECT 1::int2, 2::int4, 3::int8, sum(x), 'Cœur'::text, 'v'::varchar, true, "
            "false, NULL::text, $1::timestamptz, 1.5::numeric, 2.5::float8 "
            "FROM (VALUES (40), (2)) AS t(x)",
            [at],
        )
        assert row == (1, 2, 3, 42, "Cœur", "v", True, False, None, at, Decimal("1.5"), 2.5)
        # Parameters as text, typed by the server from where they stand.
        assert conn.execute(
            "SELECT $1::int + 1, $2 || '!', $3::text IS NULL, $4::timestamptz > $5::timestamptz",
            [41, "é", None, at, at - timedelta(seconds=1)],
        ) == [(42, "é!", True, True)]
        # Times come back aware, whatever the session's zone.
        conn.execute("SET TIME ZONE 'Indian/Reunion'")
        [(seen,)] = conn.execute("SELECT $1::timestamptz", [at])
        assert seen == at and seen.utcoffset() == timezone(timedelta(hours=4)).utcoffset(None)
        assert conn.execute("SELECT 1 WHERE false") == []


@pytest.mark.postgresql
def test_what_it_cannot_read_is_refused(db_url: str) -> None:
    with libpq.connect(_conninfo(db_url)) as conn:
        with pytest.raises(libpq.LibpqError, match="no_such_table"):
            conn.execute("SELECT * FROM no_such_table")
        with pytest.raises(libpq.LibpqError, match="type oid"):
            conn.execute("SELECT ARRAY[1, 2]")
        with pytest.raises(libpq.LibpqError, match="unreadable"):
            conn.execute("SELECT 'infinity'::timestamptz")
        # Still usable after a refusal.
        assert conn.execute("SELECT 1") == [(1,)]
    with pytest.raises(libpq.LibpqError, match="closed"):
        conn.execute("SELECT 1")
    # Times in another date style than ISO would not read back: refused at once.
    german = _conninfo(db_url) + "?options=-c%20DateStyle%3DGerman"
    with pytest.raises(libpq.LibpqError, match="date style"):
        libpq.connect(german)
    other_database = _conninfo(db_url).rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(libpq.LibpqError, match="no_such_database"):
        libpq.connect(other_database)
