"""Bad input and bad days at the command line: one line on stderr, the documented exit
status (1 the operation failed, 2 bad usage or configuration), never a traceback."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from console import cli
from console.cli import main
from console.consent import suppression
from console.roles import current_operator
from tests.support import missing_component


def _config(tmp_path: Path, db_url: str, **extra: str) -> Path:
    path = tmp_path / "config.toml"
    lines = [
        f'[database]\nurl = "{db_url}"',
        f'[privacy]\nhash_key_file = "{tmp_path / "key"}"',
        f'[roles]\nadmin = ["{current_operator()}"]',
        *extra.values(),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_a_key_file_open_to_others_is_refused(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, db_url)
    key = tmp_path / "key"
    key.write_text("ab" * 32 + "\n")
    key.chmod(0o644)
    assert main(["--config", str(config), "status"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line == (
        f"tocsin: {key}: the hash key is open to other users (mode 0644); run chmod 600 {key}"
    )
    key.chmod(0o600)
    assert main(["--config", str(config), "status"]) == 0


def test_an_unreadable_key_file_is_one_line(
    tmp_path: Path,
    db_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The key belongs to the service user; an operator running Tocsin as themselves
    cannot read it. (The tests run as root, who reads everything: the refusal the
    kernel would give is given here.)"""
    config = _config(tmp_path, db_url)
    key = tmp_path / "key"
    key.write_text("ab" * 32 + "\n")
    key.chmod(0o600)
    real_open = os.open

    def refusing(path: object, *args: object, **kwargs: object) -> int:
        if Path(str(path)) == key:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(suppression.os, "open", refusing)
    assert main(["--config", str(config), "status"]) == 2
    assert _one_line(capsys.readouterr().err) == (
        f"tocsin: {key}: cannot read the hash key: permission denied "
        "(run Tocsin as the user the key belongs to)"
    )


def test_a_key_that_is_a_directory(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, db_url)
    (tmp_path / "key").mkdir()
    assert main(["--config", str(config), "status"]) == 2
    assert "the hash key is not a regular file" in _one_line(capsys.readouterr().err)


def test_a_credentials_file_open_to_others_is_a_configuration_error(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    credentials = tmp_path / "credentials.toml"
    credentials.write_text('[kannel]\npassword = "x"\n[endpoint]\ntoken = "abc"\n')
    credentials.chmod(0o644)
    config = _config(
        tmp_path,
        db_url,
        provider=f'[provider]\nname = "kannel"\ncredentials_file = "{credentials}"',
    )
    assert main(["--config", str(config), "worker"]) == 2
    assert _one_line(capsys.readouterr().err) == (
        f"tocsin: {credentials}: the credentials file is open to other users (mode 0644); "
        f"run chmod 600 {credentials}"
    )


def test_an_argument_that_is_not_utf8(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, db_url)
    # What Python makes of the bytes b"Andr\xe9" (Latin-1) typed in a UTF-8 terminal.
    name = b"Andr\xe9".decode("utf-8", "surrogateescape")
    code = main(["--config", str(config), "contact", "add", "06 12 34 56 78", "--name", name])
    assert code == 2
    assert _one_line(capsys.readouterr().err) == (
        "tocsin: Andr\\xe9 : pas de l'UTF-8 valide (vérifiez l'encodage du terminal)"
    )
    # In the configured language, though the arguments were never parsed.
    english = _config(tmp_path, db_url, console='[console]\nlanguage = "en"')
    code = main(["--config", str(english), "contact", "add", "06 12 34 56 78", "--name", name])
    assert code == 2
    assert _one_line(capsys.readouterr().err) == (
        "tocsin: Andr\\xe9: not valid UTF-8 (check the terminal's encoding)"
    )


def test_an_argument_that_is_not_utf8_from_a_real_shell(tmp_path: Path, db_url: str) -> None:
    config = _config(tmp_path, db_url)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "console",
            "--config",
            str(config),
            "contact",
            "add",
            b"\xff\x1b[2J",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    # The escape sequence in the argument is shown, not played.
    assert _one_line(done.stderr) == (
        "tocsin: \\xff\\x1b[2J : pas de l'UTF-8 valide (vérifiez l'encodage du terminal)"
    )


def test_export_to_a_full_disk(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if not Path("/dev/full").exists():
        missing_component("/dev/full (a device whose writes fail with ENOSPC)")
    config = _config(tmp_path, db_url)
    assert main(["--config", str(config), "contact", "add", "06 12 34 56 78"]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "export", "contacts", "-o", "/dev/full"]) == 1
    assert _one_line(capsys.readouterr().err) == (
        "tocsin: /dev/full: plus de place sur le disque ; rien de plus n'a été écrit"
    )


def test_standard_output_to_a_full_disk(tmp_path: Path, db_url: str) -> None:
    if not Path("/dev/full").exists():
        missing_component("/dev/full (a device whose writes fail with ENOSPC)")
    config = _config(tmp_path, db_url)
    command = [sys.executable, "-m", "console", "--config", str(config)]
    subprocess.run([*command, "contact", "add", "06 12 34 56 78"], check=True, timeout=60)
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [*command, "export", "contacts"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert "plus de place sur le disque" in _one_line(done.stderr)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs of our own, to fill up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        missing_component(f"a tmpfs to fill (mount needs root): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_database_on_a_full_disk(
    tmp_path: Path, small_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """SQLite only: the disk under the database fills up. The write is refused in one
    line, and what was there is all there once space returns."""
    config = _config(tmp_path, f"sqlite:///{small_disk / 'tocsin.db'}")
    assert main(["--config", str(config), "contact", "add", "06 12 34 56 78"]) == 0
    filler = small_disk / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    capsys.readouterr()
    notes = "x" * 1500
    for i in range(40):  # until a page no longer fits
        code = main(
            ["--config", str(config), "contact", "add", f"06 12 34 56 {i:02d}", "--notes", notes]
        )
        if code != 0:
            break
    assert code == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("tocsin: base de données : ") and "full" in line
    filler.unlink()
    assert main(["--config", str(config), "contact", "add", "06 98 76 54 32"]) == 0
    assert main(["--config", str(config), "audit", "verify"]) == 0


def test_status_on_a_postgresql_server_that_is_down_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`status` reads PostgreSQL through libpq itself; refused there, the whole start-up
    meets the refusal again and says what it is, libpq's hint on the same line."""
    config = _config(tmp_path, "postgresql://postgres@127.0.0.1:1/tocsin")
    assert main(["--config", str(config), "status", "--json"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(
        "tocsin: database postgresql://postgres@127.0.0.1:1/tocsin: cannot connect"
    )
    assert "Connection refused Is the server running" in line


@pytest.mark.parametrize(
    "argv",
    [
        ["status"],
        ["--config", "t.toml", "status", "--json"],
        ["--config=t.toml", "campaign", "show", "3", "--json"],
        ["send", "--topic", "alertes", "--all", "--text", "Crue", "--yes"],
        ["db", "upgrade"],
    ],
)
def test_a_verb_is_parsed_by_its_own_parser_as_by_the_whole_one(argv: list[str]) -> None:
    """Only the named verb's parser is built (the others were 0.01 s of `status`):
    what it makes of the line is what the whole parser makes of it."""
    assert cli._arguments(argv) == cli._parser().parse_args(argv)


@pytest.mark.parametrize(
    "argv",
    [["statut"], ["status", "--jsn"], ["--conf", "t.toml", "status", "extra"], ["--help"], []],
)
def test_what_one_verb_cannot_parse_the_whole_parser_answers(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A verb that does not exist, an argument nobody takes, an abbreviated option,
    --help, no verb: the whole parser's answer, every verb in its usage."""

    def answer(parse: Callable[[], object]) -> tuple[object, str, str]:
        try:
            result = parse()
        except SystemExit as exc:
            result = ("exit", exc.code)
        out = capsys.readouterr()
        return result, out.out, out.err

    alone = answer(lambda: cli._arguments(argv))
    assert alone == answer(lambda: cli._parser().parse_args(argv))
    if argv and argv != ["--help"]:
        assert alone[0] == ("exit", 2) and "{demo,import," in alone[2]
