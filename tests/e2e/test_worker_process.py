"""`tocsin worker` as a real process: sends, serves its endpoint, stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, col, select

from console.cli import main
from console.roles import current_operator
from storage.engine import make_engine
from storage.models import ConsentState, DeliveryEvent, Message

pytestmark = pytest.mark.e2e
TOCSIN = str(Path(sys.executable).with_name("tocsin"))
TOKEN = "e2e-endpoint-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(tmp_path: Path, db_url: str, port: int, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(
        f'[database]\nurl = "{db_url}"\n'
        f'[privacy]\nhash_key_file = "{tmp_path / "key"}"\n'
        f'[roles]\nadmin = ["{current_operator()}"]\n'
        f"[provider]\nrate = 500.0\n"
        f"[provider.simulated]\nlatency_ms = 5\nfailure_rate = 0.0\nundelivered_rate = 0.0\n"
        f'[worker]\nlisten_port = {port}\npublic_url = "http://127.0.0.1:{port}"\n',
        encoding="utf-8",
    )
    return path


def _start(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [TOCSIN, "--config", str(config), "worker"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TOCSIN_ENDPOINT_TOKEN": TOKEN},
    )


def _status(config: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    capsys.readouterr()
    assert main(["--config", str(config), "status", "--json"]) == 0
    return dict(json.loads(capsys.readouterr().out))


def _wait(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.2)


def test_worker_sends_serves_stop_and_exits_cleanly(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _free_port()
    config = _config(tmp_path, db_url, port)
    for i in range(30):
        assert main(["--config", str(config), "contact", "add", f"06 80 00 00 {i:02d}"]) == 0
    worker = _start(config)
    try:
        _wait(lambda: _status(config, capsys)["worker_alive"] is True)
        assert (
            main(
                [
                    "--config",
                    str(config),
                    "send",
                    "--topic",
                    "alertes",
                    "--all",
                    "--text",
                    "Exercice d'alerte",
                    "--yes",
                ]
            )
            == 0
        )
        _wait(lambda: _status(config, capsys)["messages"]["delivered"] == 30)  # type: ignore[index]

        answer = httpx.post(
            f"http://127.0.0.1:{port}/inbound/simulated",
            params={"token": TOKEN},
            json={"from": "+33680000001", "to": "MAIRIE", "text": "Stop"},
        )
        assert answer.status_code == 200
        engine = make_engine(db_url)
        with Session(engine) as session:
            withdrawn = session.exec(
                select(ConsentState).where(col(ConsentState.granted).is_(False))
            ).all()
        engine.dispose()
        assert {s.topic for s in withdrawn} == {
            "alertes",
            "evenements",
            "travaux",
            "elections",
            "infos",
        }
        forbidden = httpx.get(
            f"http://127.0.0.1:{port}/reports/simulated", params={"token": "nope"}
        )
        assert forbidden.status_code == 403
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
    assert worker.returncode == 0, output
    assert "stopped after 30 message(s)" in output
    assert "+33680000001" not in output  # numbers are masked in the log
    assert _status(config, capsys)["worker_alive"] is False


def test_two_workers_on_postgresql_never_send_twice(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = make_engine(db_url)
    sqlite = engine.dialect.name == "sqlite"
    first = _config(tmp_path, db_url, _free_port(), "one.toml")
    second = _config(tmp_path, db_url, _free_port(), "two.toml")
    for i in range(200):
        assert (
            main(
                ["--config", str(first), "contact", "add", f"06 81 00 {i // 100:02d} {i % 100:02d}"]
            )
            == 0
        )
    assert (
        main(
            [
                "--config",
                str(first),
                "send",
                "--topic",
                "alertes",
                "--all",
                "--text",
                "Deux workers",
                "--yes",
            ]
        )
        == 0
    )
    workers = [_start(first)]
    time.sleep(1.0)
    workers.append(_start(second))
    try:
        if sqlite:
            # One sender on SQLite: the second says who holds the lease and exits.
            output, _ = workers[1].communicate(timeout=30)
            assert workers[1].returncode == 1 and "another worker" in output
        _wait(lambda: _status(first, capsys)["messages"]["delivered"] == 200)  # type: ignore[index]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                worker.communicate(timeout=30)
    with Session(engine) as session:
        sends = Counter(
            session.exec(
                select(DeliveryEvent.message_id).where(
                    col(DeliveryEvent.source) == "send", col(DeliveryEvent.state) == "submitted"
                )
            )
        )
        messages = session.exec(select(Message.id)).all()
    engine.dispose()
    assert len(messages) == 200
    assert set(sends.values()) == {1} and len(sends) == 200
