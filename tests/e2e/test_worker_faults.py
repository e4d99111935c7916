"""`tocsin worker` on a server's bad days: a write lock held 15 s by someone else, a
full disk, the database file deleted under it. It waits out what passes, says why,
loses nothing, and stops loudly on what does not pass."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from console.cli import main
from console.roles import current_operator
from storage.engine import make_engine
from storage.models import Message
from tests.support import missing_component

pytestmark = [pytest.mark.e2e, pytest.mark.sqlite_file]
TOCSIN = str(Path(sys.executable).with_name("tocsin"))
FINAL = {"delivered", "undelivered", "failed", "rejected", "expired", "skipped"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _town(folder: Path, residents: int, rate: float) -> Path:
    """A town on `folder`: config, key, residents, and one alert to all of them queued."""
    port = _free_port()
    config = folder / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{folder / "town.db"}"\n'
        f'[privacy]\nhash_key_file = "{folder / "key"}"\n'
        f'[roles]\nadmin = ["{current_operator()}"]\n'
        f"[provider]\nrate = {rate}\n"
        f"[provider.simulated]\nlatency_ms = 5\nfailure_rate = 0.0\nundelivered_rate = 0.0\n"
        f'[worker]\nlisten_port = {port}\npublic_url = "http://127.0.0.1:{port}"\n',
        encoding="utf-8",
    )
    csv = folder / "habitants.csv"
    csv.write_text(
        "telephone;nom\n"
        + "".join(f"06 81 {i // 100:02d} {i % 100:02d} 00;Hab {i}\n" for i in range(residents)),
        encoding="utf-8",
    )
    assert main(["--config", str(config), "import", "contacts", str(csv)]) == 0
    csv.unlink()
    send = ["send", "--topic", "alertes", "--all", "--emergency", "--yes"]
    text = ["--text", "Exercice : crue, évacuez les berges"]
    assert main(["--config", str(config), *send, *text]) == 0
    return config


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [TOCSIN, "--config", str(config), "worker"],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        env={**os.environ, "TOCSIN_ENDPOINT_TOKEN": "faults-token"},
    )


def _states(database: Path) -> Counter[str]:
    engine = make_engine(f"sqlite:///{database}")
    try:
        with Session(engine) as session:
            return Counter(session.exec(select(Message.state)))
    finally:
        engine.dispose()


def _wait(predicate: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.2)


def _status(config: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    capsys.readouterr()
    code = main(["--config", str(config), "status", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return dict(json.loads(out))


def _stop(worker: subprocess.Popen[bytes]) -> int:
    worker.send_signal(signal.SIGTERM)
    return worker.wait(timeout=30)


def test_worker_waits_out_a_lock_held_15_s(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _town(tmp_path, residents=200, rate=20.0)
    database = tmp_path / "town.db"
    log = tmp_path / "worker.log"
    worker = _start(config, log)
    try:
        _wait(lambda: _states(database)["delivered"] >= 20)
        holder = sqlite3.connect(database, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            time.sleep(12)
            # Read-only verbs still answer, and say why nothing moves.
            assert _status(config, capsys)["database_fault"] == "locked"
            time.sleep(3)
            assert worker.poll() is None, log.read_text()
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        _wait(lambda: _states(database)["delivered"] == 200)
        assert worker.poll() is None
        assert sum(_states(database).values()) == 200
    finally:
        code = _stop(worker)
    text = log.read_text()
    assert "sending paused" in text and "sending resumed" in text
    assert "Traceback" not in text
    assert code == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MB filesystem of its own, to fill."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        missing_component("the full-disk test mounts a small tmpfs: run it as root (CI does)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        missing_component(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        # Big blocks, then small ones for whatever is left below a big one.
        for size in (256 * 1024, 4096, 512):
            with contextlib.suppress(OSError):
                while True:
                    os.write(descriptor, b"\0" * size)
    finally:
        os.close(descriptor)
    return filler


def test_worker_pauses_on_a_full_disk_and_resumes_losing_nothing(
    small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _town(small_disk, residents=300, rate=30.0)
    database = small_disk / "town.db"
    log = small_disk.parent / "worker.log"
    worker = _start(config, log)
    try:
        _wait(lambda: _states(database)["delivered"] >= 30)
        filler = _fill(small_disk)
        with pytest.raises(OSError) as full:
            (small_disk / "one-more").write_bytes(b"x" * 65536)
        assert full.value.errno == errno.ENOSPC
        time.sleep(6)
        assert worker.poll() is None, log.read_text()
        assert _status(config, capsys)["database_fault"] == "disk_full"
        filler.unlink()
        _wait(lambda: _states(database)["delivered"] == 300)
        assert worker.poll() is None
        assert sum(_states(database).values()) == 300
    finally:
        code = _stop(worker)
    text = log.read_text()
    assert "disk_full" in text and "sending resumed" in text
    assert code == 0


def test_worker_stops_loudly_when_its_database_is_deleted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _town(tmp_path, residents=50, rate=5.0)
    database = tmp_path / "town.db"
    log = tmp_path / "worker.log"
    worker = _start(config, log)
    try:
        _wait(lambda: _states(database)["delivered"] >= 1)
        for path in tmp_path.glob("town.db*"):
            path.unlink()
        code = worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert code != 0
    assert "was deleted while in use" in log.read_text()
    # And nothing recreates an empty town in its place.
    capsys.readouterr()
    assert main(["--config", str(config), "status"]) == 1
    assert "has gone" in capsys.readouterr().err
    assert not database.exists()
