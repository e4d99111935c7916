"""The whole path through the real Kannel: `tocsin send` to 1,000 residents, the
worker process sends through smsbox, fakesmsc receives each message exactly once,
every delivery report reaches the worker's endpoint and settles the ledger, and an
MO "STOP" typed on a handset withdraws consent."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from console.cli import main
from console.contacts.service import is_suppressed
from console.roles import current_operator
from console.sending.providers.kannel import sms_service_get_url
from console.sending.providers.registry import inbound_url
from storage.engine import make_engine
from storage.models import ConsentState, Contact, Message
from tests.conftest import TEST_KEY, make_context
from tests.e2e.kannel_harness import running_kannel

pytestmark = pytest.mark.e2e
TOCSIN = str(Path(sys.executable).with_name("tocsin"))
TOKEN = "kannel-e2e-token"
RESIDENTS = 1000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(predicate, timeout: float = 90.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.25)


def test_thousand_residents_through_kannel(tmp_path: Path, db_url: str) -> None:
    port = _free_port()
    public = f"http://127.0.0.1:{port}"
    mo_url = sms_service_get_url(inbound_url(public, "kannel", TOKEN))
    with running_kannel(tmp_path / "kannel", mo_url) as kannel:
        key = tmp_path / "key"
        key.write_bytes(TEST_KEY + b"\n")
        key.chmod(0o600)
        config = tmp_path / "config.toml"
        config.write_text(
            f'[database]\nurl = "{db_url}"\n'
            f'[privacy]\nhash_key_file = "{key}"\n'
            f'[roles]\nadmin = ["{current_operator()}"]\n'
            f'[provider]\nname = "kannel"\nrate = 1000.0\nconcurrency = 4\n'
            f'[provider.kannel]\nurl = "{kannel.sendsms_url}"\n'
            f'username = "{kannel.username}"\n'
            f'[worker]\nlisten_port = {port}\npublic_url = "{public}"\n',
            encoding="utf-8",
        )
        csv_path = tmp_path / "habitants.csv"
        csv_path.write_text(
            "telephone;nom\n"
            + "".join(
                f"06 7{i // 100000} {i // 1000 % 100:02d} {i // 10 % 100:02d} {i % 10}0;Hab {i}\n"
                for i in range(RESIDENTS)
            ),
            encoding="utf-8",
        )
        assert main(["--config", str(config), "import", "contacts", str(csv_path)]) == 0
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
                    "Exercice : crue de la Moselle, évacuez les berges",
                    "--yes",
                ]
            )
            == 0
        )
        worker = subprocess.Popen(
            [TOCSIN, "--config", str(config), "worker"],
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "worker.log").open("w"),
            env={
                **os.environ,
                "TOCSIN_KANNEL_PASSWORD": kannel.password,
                "TOCSIN_ENDPOINT_TOKEN": TOKEN,
            },
        )
        engine = make_engine(db_url)
        try:

            def states() -> Counter[str]:
                with Session(engine) as session:
                    return Counter(session.exec(select(Message.state)))

            try:
                _wait(lambda: states()["delivered"] == RESIDENTS)
            except AssertionError:
                log = (tmp_path / "worker.log").read_text()[-3000:]
                raise AssertionError(f"ledger {dict(states())}; worker log:\n{log}") from None
            received = kannel.wait_received(RESIDENTS)
            per_number = Counter(sms.to for sms in received)
            assert len(per_number) == RESIDENTS and set(per_number.values()) == {1}
            assert {sms.body for sms in received} == {
                "Exercice : crue de la Moselle, évacuez les berges"
            }

            # A resident answers STOP from their handset.
            with Session(engine) as session:
                resident = session.exec(select(Contact).where(col(Contact.name) == "Hab 7")).one()
            kannel.send_mo(resident.number or "", "MAIRIE", "Stop")

            def withdrawn() -> bool:
                with Session(engine) as session:
                    return session.get(ConsentState, (resident.id, "alertes")) is not None

            _wait(withdrawn, timeout=30)
            with Session(engine) as session:
                state = session.get(ConsentState, (resident.id, "alertes"))
                assert state is not None and state.granted is False
                from console.config import Config

                ctx = make_context(engine, Config(), None)  # type: ignore[arg-type]
                assert is_suppressed(session, ctx, resident.number or "")
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
            engine.dispose()
    assert worker.returncode == 0
    # The log never holds a secret, a full number or the message body.
    log = (tmp_path / "worker.log").read_text()
    assert "kannel-secret" not in log and TOKEN not in log
    assert "+3367" not in log and "%2B3367" not in log and "Moselle" not in log
