"""Residents' and providers' text never drives the terminal of whoever runs a verb:
control characters are shown escaped on a terminal and in JSON, and files and pipes
get the data exactly."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from console.cli import main
from console.cli.terminal import json_text
from console.roles import current_operator
from storage.engine import make_engine

HOSTILE = "Élo\x1b]0;pwned\x07die\x1b[2J\x9b31m"


@pytest.fixture
def config_file(tmp_path: Path, db_url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[database]\nurl = "{db_url}"\n'
        f'[privacy]\nhash_key_file = "{tmp_path / "key"}"\n'
        f'[roles]\nadmin = ["{current_operator()}"]\n',
        encoding="utf-8",
    )
    return path


def _tocsin(config_file: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "console", "--config", str(config_file), *args]


def _on_a_terminal(command: list[str]) -> bytes:
    """What `command` shows on a terminal (a pseudo-terminal, read to the end)."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(command, stdout=follower, stderr=follower, stdin=subprocess.DEVNULL)
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the other end closed
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert process.wait(timeout=60) == 0
    return shown


def test_export_to_a_terminal_escapes_and_to_a_pipe_is_exact(config_file: Path) -> None:
    assert (
        main(["--config", str(config_file), "contact", "add", "06 12 34 56 78", "--name", HOSTILE])
        == 0
    )
    shown = _on_a_terminal(_tocsin(config_file, "export", "contacts"))
    assert b"\x1b" not in shown and b"\x07" not in shown and "\x9b".encode() not in shown
    assert b"\\x1b]0;pwned\\x07die\\x1b[2J\\x9b31m" in shown
    assert b"06 12 34 56 78" in shown
    piped = subprocess.run(
        _tocsin(config_file, "export", "contacts"), capture_output=True, check=True, timeout=60
    )
    assert HOSTILE.encode() in piped.stdout  # the CSV as it is, to re-import
    assert b"\r\n" in piped.stdout


def test_campaign_show_escapes_the_providers_reason(
    config_file: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(config_file), "contact", "add", "06 12 34 56 78"]) == 0
    capsys.readouterr()
    send = ["send", "--topic", "alertes", "--all", "--text", "Essai", "--yes", "--json"]
    assert main(["--config", str(config_file), *send]) == 0
    campaign_id = json.loads(capsys.readouterr().out)["campaign_id"]
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE campaign SET status = 'paused', status_reason = :r"),
            {"r": "twilio 20003: \x1b[2J\x1b]0;owned\x07Authenticate"},
        )
    engine.dispose()
    assert main(["--config", str(config_file), "campaign", "show", str(campaign_id)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "(twilio 20003: \\x1b[2J\\x1b]0;owned\\x07Authenticate)" in out
    assert main(["--config", str(config_file), "campaign", "show", str(campaign_id), "--json"]) == 0
    raw = capsys.readouterr().out
    assert "\x1b" not in raw
    assert json.loads(raw)["status_reason"].startswith("twilio 20003: \x1b[2J")


def test_import_json_escapes_c1_controls(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = tmp_path / "habitants.csv"
    csv_file.write_text(f"telephone;nom\n06 12 34 56 78;Ok\n06 12;{HOSTILE}\n", encoding="utf-8")
    assert main(["--config", str(config_file), "import", "contacts", str(csv_file), "--json"]) == 0
    out = capsys.readouterr().out
    assert "\x9b" not in out and "\x1b" not in out and "\x07" not in out
    report = json.loads(out)
    assert report["counts"]["rejected"] == 1


def test_json_text_round_trips_every_control() -> None:
    data = {"name": "".join(chr(c) for c in range(0, 0xA0)) + "é€"}
    shown = json_text(data)
    assert not any((0 <= ord(c) < 0x20 and c not in "\n") or 0x7F <= ord(c) <= 0x9F for c in shown)
    assert json.loads(shown) == data
    assert "é€" in shown  # ensure_ascii stays off: French reads as French
