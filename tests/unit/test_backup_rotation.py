"""contrib/tocsin-backup, as the systemd timer runs it: a whole backup per run, the
KEEP newest kept, nothing removed when tonight's backup failed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from console.roles import current_operator

SCRIPT = Path(__file__).resolve().parents[2] / "contrib" / "tocsin-backup"


@pytest.fixture
def tocsin(tmp_path: Path, db_url: str) -> Path:
    """A `tocsin` command on this test's town, as $TOCSIN."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n[privacy]\nhash_key_file = "{tmp_path / "key"}"\n'
        f'[roles]\nadmin = ["{current_operator()}"]\n'
    )
    wrapper = tmp_path / "tocsin"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m console --config "{config}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def _run(tocsin: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(SCRIPT), *args],
        env={"TOCSIN": str(tocsin), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )


def test_each_run_writes_a_backup_and_keeps_the_newest(tocsin: Path, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    made: set[str] = set()
    for run in range(4):
        done = _run(tocsin, str(backups), "2")
        assert done.returncode == 0, done.stderr
        if run == 0:
            # Created private: the backups hold every resident's number.
            assert backups.stat().st_mode & 0o777 == 0o700
            (backups / "notes.txt").write_text("not ours: never removed")
        made |= {p.name for p in backups.glob("*.tocsin-backup")}
    assert len(made) == 4
    kept = sorted(p.name for p in backups.glob("*.tocsin-backup"))
    assert kept == sorted(made)[-2:]
    assert (backups / "notes.txt").exists()


def test_a_failed_backup_removes_nothing(tocsin: Path, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    assert _run(tocsin, str(backups), "1").returncode == 0
    first = sorted(backups.glob("*.tocsin-backup"))
    (tmp_path / "key").chmod(0o644)  # the key refused: the backup cannot be made
    done = _run(tocsin, str(backups), "1")
    assert done.returncode == 2
    assert "open to other users" in done.stderr
    assert sorted(backups.glob("*.tocsin-backup")) == first


@pytest.mark.parametrize("keep", ["0", "x", "-1"])
def test_keep_must_be_a_positive_number(tocsin: Path, tmp_path: Path, keep: str) -> None:
    done = _run(tocsin, str(tmp_path / "backups"), keep)
    assert done.returncode == 2 and "KEEP must be" in done.stderr
