"""The import contracts live in pyproject.toml and `lint-imports` checks them in
scripts/test. This checks what they cannot see: what the `tocsin` command loads at
run time before it knows it will open the console."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_command_loads_no_ui_until_the_console_opens() -> None:
    script = textwrap.dedent(
        """
        import sys
        import screens.entry, console.sending.worker_main, console.cli, console.demo
        loaded = sorted(m for m in sys.modules if m.split(".")[0] == "textual"
                        or m in {"screens.app"})
        assert not loaded, loaded[:5]
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# What `tocsin status` needs none of once a SQLite database is set up: SQLAlchemy
# and the ORM, the tables' models, Alembic, the PostgreSQL driver, the UI, phone
# numbers and the providers' HTTP client (it reads the file with sqlite3).
NOT_FOR_STATUS = (
    "sqlalchemy",
    "sqlmodel",
    "alembic",
    "psycopg",
    "textual",
    "phonenumbers",
    "httpx",
)
NOT_FOR_STATUS_MODULES = ("sqlalchemy.orm", "storage.models", "storage.chain", "console.audit")

STATUS = f"""
import contextlib, io, json, sys
from screens.entry import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(["--config", sys.argv[1], "status", "--json"])
loaded = sorted(
    m for m in sys.modules
    if m.split(".")[0] in {set(NOT_FOR_STATUS)} or m in {set(NOT_FOR_STATUS_MODULES)}
)
print(json.dumps({{"code": code, "status": json.loads(out.getvalue()), "loaded": loaded}}))
"""


def _status(config: Path) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", STATUS, str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answer: dict[str, object] = json.loads(result.stdout)
    return answer


def test_status_loads_only_what_it_reads_with(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "tocsin.db"}"\n'
        f'[privacy]\nhash_key_file = "{tmp_path / "key"}"\n',
        encoding="utf-8",
    )
    # The first start makes the database (the whole start-up, the ORM and Alembic).
    first = _status(config)
    assert first["code"] == 0
    assert "alembic" in first["loaded"]  # type: ignore[operator]
    # From then on, nothing to set up: the same figures, read without them.
    again = _status(config)
    assert again["code"] == 0
    assert again["loaded"] == []
    assert again["status"] == first["status"]
    # A topic renamed in the config: the whole start-up syncs it, then reads lean again.
    config.write_text(
        config.read_text(encoding="utf-8") + '[topics.alertes]\nlabel = "Alertes urgentes"\n',
        encoding="utf-8",
    )
    assert "sqlmodel" in _status(config)["loaded"]  # type: ignore[operator]
    assert _status(config)["loaded"] == []


@pytest.mark.postgresql
def test_status_reads_postgresql_without_sqlalchemy_or_psycopg(tmp_path: Path, db_url: str) -> None:
    """On PostgreSQL too, once set up: read through libpq itself (storage.libpq), with
    neither SQLAlchemy nor psycopg loaded (importing psycopg was a third of the run)."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n[privacy]\nhash_key_file = "{tmp_path / "key"}"\n',
        encoding="utf-8",
    )
    # The first start records the key and the topics (the whole start-up).
    first = _status(config)
    assert first["code"] == 0
    assert "sqlmodel" in first["loaded"]  # type: ignore[operator]
    again = _status(config)
    assert again["code"] == 0
    assert again["loaded"] == []
    assert again["status"] == first["status"]
