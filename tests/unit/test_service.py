"""`tocsin service` and an operator's `tocsin` talking over its socket, in one Unix
account: the command runs in the service's child, on the caller's behalf, with the
caller's descriptors and files. (tests/e2e/test_unix_roles.py does it across real
Unix users.)"""

from __future__ import annotations

import argparse
import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from console.cli import _parser
from console.config import parse_config
from console.roles import Role, current_operator
from console.service.client import Target, forward, without_config
from console.service.files import file_args, tokened
from console.service.protocol import FileArg, LineReader, ProtocolError, Request, send_request
from console.service.server import Caller, Service
from storage.engine import make_engine
from storage.models import AuditEntry, Contact


def _parse(argv: list[str]) -> argparse.Namespace:
    return _parser().parse_args(argv)


def _config_text(tmp_path: Path, roles: str) -> str:
    return (
        f'[database]\nurl = "sqlite:///{tmp_path / "town.db"}"\n'
        f'[privacy]\nhash_key_file = "{tmp_path / "key"}"\n'
        f'[service]\nuser = "{current_operator()}"\nsocket = "{tmp_path / "console.sock"}"\n'
        f"[roles]\n{roles}\n"
    )


@pytest.fixture
def town(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        _config_text(tmp_path, 'viewer = []\noperator = []\nalerter = []\nadmin = ["*"]')
    )
    return path


def _running(service: Service) -> Iterator[Target]:
    service.bind()
    thread = threading.Thread(target=service.serve_forever, daemon=True)
    thread.start()
    try:
        yield Target(socket=service.config.service.socket, user=current_operator())
    finally:
        service.stop()
        thread.join(timeout=5)


@pytest.fixture
def served(town: Path) -> Iterator[Target]:
    config = parse_config(town.read_text(), str(town))
    yield from _running(Service(config, child_env={"TOCSIN_CONFIG": str(town)}, parse=_parse))


def _audit(tmp_path: Path) -> list[AuditEntry]:
    engine = make_engine(f"sqlite:///{tmp_path / 'town.db'}")
    with Session(engine) as session:
        entries = list(session.exec(select(AuditEntry).order_by(AuditEntry.seq)).all())
    engine.dispose()
    return entries


def test_a_command_runs_in_the_service_on_the_callers_behalf(
    served: Target, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    hostile = "[b]Zoé[/b] \x1b]0;pwn\x07"
    status = forward(served, ["contact", "add", "06 12 34 56 78", "--name", hostile], _parser())
    out, err = capfd.readouterr()
    assert status == 0, err
    assert "+33612345678" in out
    engine = make_engine(f"sqlite:///{tmp_path / 'town.db'}")
    with Session(engine) as session:
        (contact,) = session.exec(select(Contact)).all()
    engine.dispose()
    assert contact.name.startswith("[b]Zoé[/b]")
    (added,) = [e for e in _audit(tmp_path) if e.action == "contact.add"]
    assert added.operator == current_operator()


def test_a_refusal_through_the_service_is_audited(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    town = tmp_path / "config.toml"
    town.write_text(
        _config_text(tmp_path, 'viewer = ["*"]\noperator = []\nalerter = []\nadmin = []')
    )
    config = parse_config(town.read_text(), str(town))
    for target in _running(Service(config, child_env={"TOCSIN_CONFIG": str(town)})):
        status = forward(target, ["contact", "add", "06 12 34 56 78"], _parser())
    err = capfd.readouterr().err
    assert status == 1
    assert "n'a pas le rôle opérateur" in err
    (refused,) = [e for e in _audit(tmp_path) if e.action == "refused"]
    assert refused.operator == current_operator()
    assert json.loads(refused.details)["command"] == "tocsin contact add '06 12 34 56 78'"


def test_files_named_by_the_command_go_by_descriptor(
    served: Target, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "operateur"
    mine.mkdir()
    csv = mine / "habitants.csv"
    csv.write_text("numero;nom\n06 12 34 56 78;Anne\npas un numéro;Bob\n", encoding="utf-8")
    rejects = mine / "rejets.csv"
    status = forward(served, ["import", "contacts", str(csv), f"--rejects={rejects}"], _parser())
    out, err = capfd.readouterr()
    assert status == 0, err
    assert "1 importée" in out
    assert "Bob" in rejects.read_text(encoding="utf-8")
    # A command that fails leaves no empty file where it would have written.
    missing = mine / "absent.csv"
    assert forward(served, ["import", "contacts", str(missing)], _parser()) == 1
    assert "absent.csv" in capfd.readouterr().err


def test_nobody_without_a_role_gets_past_the_door(town: Path) -> None:
    config = parse_config(town.read_text(), str(town))
    audited: list[tuple[str, Role, str]] = []
    service = Service(
        config,
        role_of=lambda user: Role.NONE,
        peer_of=lambda conn: Caller(uid=4242, pid=1, user="intrus"),
        audit=lambda caller, role, command: audited.append((caller.user, role, command)),
    )
    for target in _running(service):
        status, said = _raw(target, ["status", "--json"])
    assert status == 1
    assert "intrus n'a aucun rôle" in said
    assert audited == [("intrus", Role.NONE, "tocsin status --json")]


def test_the_towns_config_is_not_the_callers_to_choose(served: Target) -> None:
    status, said = _raw(served, ["--config", "/etc/autre.toml", "status"])
    assert status == 2
    assert "--config" in said


def _raw(target: Target, argv: list[str]) -> tuple[int, str]:
    """A request as any program could send it, bypassing our client."""
    read_err, write_err = os.pipe()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(target.socket)
    with sock, open(os.devnull, "rb") as stdin, open(os.devnull, "wb") as stdout:
        send_request(sock, Request(argv=argv, env={}), [stdin.fileno(), stdout.fileno(), write_err])
        os.close(write_err)
        reader = LineReader(sock)
        status = -1
        while status < 0:
            messages = reader.read()
            assert messages is not None
            status = next((m["status"] for m in messages if "status" in m), -1)
    with os.fdopen(read_err, "r") as err:
        return status, err.read()


def test_what_the_client_hands_over() -> None:
    assert without_config(["--config", "me.toml", "status"]) == (["status"], "me.toml")
    assert without_config(["--config=me.toml", "status"]) == (["status"], "me.toml")
    parser = _parser()
    assert file_args(parser.parse_args(["db", "backup", "b.db"])) == [("b.db", "w")]
    assert file_args(parser.parse_args(["db", "restore", "b.db"])) == [("b.db", "r")]
    assert file_args(parser.parse_args(["import", "contacts", "a.csv", "--rejects", "r.csv"])) == [
        ("a.csv", "r"),
        ("r.csv", "w"),
    ]


def test_a_file_is_handed_over_to_be_read_or_written() -> None:
    request = Request(argv=["import", "contacts", "@f@"], env={}, files=[FileArg("@f@", "x", "a")])
    with pytest.raises(ProtocolError, match="r or w"):
        Request.decode(request.encode()[4:])


def test_a_file_the_caller_did_not_hand_over_is_refused(served: Target, tmp_path: Path) -> None:
    """A program other than our client names a path for the service to write: the
    service would write it as itself (over its own database)."""
    assert forward(served, ["contact", "add", "06 12 34 56 78"], _parser()) == 0
    target = tmp_path / "town.db"
    before = target.read_bytes()
    status, said = _raw(served, ["export", "contacts", "-o", str(target)])
    assert status == 2
    assert "n'a pas été transmis au service" in said
    status, said = _raw(served, ["export", "contacts", f"-o{target}"])
    assert status == 2
    assert target.read_bytes() == before


def test_what_runs_locally_is_refused_by_the_service(served: Target, tmp_path: Path) -> None:
    status, said = _raw(served, ["demo", "--no-tui", "--dir", str(tmp_path / "d")])
    assert status == 2
    assert "ne passe pas par le service" in said
    assert not (tmp_path / "d").exists()


def test_an_output_glued_to_its_option_goes_by_descriptor(
    served: Target, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert forward(served, ["contact", "add", "06 12 34 56 78", "--name", "Anne"], _parser()) == 0
    out = tmp_path / "mine" / "export.csv"
    out.parent.mkdir()
    assert forward(served, ["export", "contacts", f"-o{out}"], _parser()) == 0, capfd.readouterr()
    assert "Anne" in out.read_text(encoding="utf-8")


def test_tokens_replace_paths_however_they_are_written() -> None:
    assert tokened("/a/b.csv", "/a/b.csv", "@t@") == "@t@"
    assert tokened("--output=/a/b.csv", "/a/b.csv", "@t@") == "--output=@t@"
    assert tokened("-o/a/b.csv", "/a/b.csv", "@t@") == "-o@t@"
    assert tokened("x/a/b.csv", "/a/b.csv", "@t@") == "x/a/b.csv"
