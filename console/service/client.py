"""An operator's `tocsin` on a town's server: hands the command to the service.

Once the town's config names a service user, the database, the key and the
credentials are that user's alone; anyone else's `tocsin` (the console as well as
every verb) sends its command line, its terminal and the files it names to the
service's socket and waits for the exit status. Root and the service user run
commands themselves.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import signal
import socket
import sys
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.config import system_config, trusted, user_config_file
from console.i18n import CATALOGS, Translator
from console.service.files import file_args, tokened
from console.service.protocol import FileArg, LineReader, Request, send_line, send_request
from console.service.server import FORWARDED_SIGNALS, PASSED_ENV

EXIT_FAILED = 1


@dataclass(frozen=True)
class Target:
    socket: str
    user: str
    language: str = "fr"


def service_target(environ: Mapping[str, str] | None = None) -> Target | None:
    """The service to hand commands to, or None to run them here."""
    environ = os.environ if environ is None else environ
    path = system_config(environ)
    try:
        if not path.is_file() or not trusted(path):
            return None  # the local path says what is wrong with it
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    service = raw.get("service")
    if not isinstance(service, dict) or not service.get("user"):
        return None
    user = str(service["user"])
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        return None
    if os.geteuid() in (0, uid):
        return None
    console = raw.get("console")
    language = console.get("language") if isinstance(console, dict) else None
    return Target(
        socket=str(service.get("socket") or "/run/tocsin/console.sock"),
        user=user,
        language=language if isinstance(language, str) and language in CATALOGS else "fr",
    )


def without_config(argv: Sequence[str]) -> tuple[list[str], str | None]:
    """argv without --config (the service reads the town's), and the file it named."""
    kept: list[str] = []
    named: str | None = None
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == "--config":
            named = argv[i + 1] if i + 1 < len(argv) else None
            skip = True
        elif arg.startswith("--config="):
            named = arg.removeprefix("--config=")
        else:
            kept.append(arg)
    return kept, named


def console_prefs(named: str | None, environ: Mapping[str, str]) -> dict[str, Any]:
    """The [console] table of the operator's own config: all a user may set."""
    candidates = [named, environ.get("TOCSIN_CONFIG"), str(user_config_file())]
    for candidate in candidates:
        if not candidate:
            continue
        try:
            raw = tomllib.loads(Path(candidate).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        table = raw.get("console")
        return dict(table) if isinstance(table, dict) else {}
    return {}


def forward(
    target: Target,
    argv: Sequence[str],
    parser: argparse.ArgumentParser,
    environ: Mapping[str, str] | None = None,
) -> int:
    environ = os.environ if environ is None else environ
    argv, named = without_config(argv)
    # Usage errors and --help are answered here, as without a service.
    args = parser.parse_args(argv)
    files: list[FileArg] = []
    fds: list[int] = []
    created: list[str] = []
    try:
        for index, (path, mode) in enumerate(file_args(args)):
            token = f"@tocsin-file-{index}@"
            fds.append(_open(path, mode, created))
            files.append(FileArg(token=token, mode=mode, name=Path(path).name))
            argv = [tokened(a, path, token) for a in argv]
        request = Request(
            argv=list(argv),
            env={k: v for k, v in environ.items() if k in PASSED_ENV},
            files=files,
            console=console_prefs(named, environ),
        )
        status = _exchange(target, request, fds)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"tocsin: {where}{exc.strerror or exc}", file=sys.stderr)
        status = EXIT_FAILED
    finally:
        for fd in fds:
            os.close(fd)
    if status != 0:
        for path in created:  # nothing written: no empty file left behind
            with contextlib.suppress(OSError):
                if os.path.getsize(path) == 0:
                    os.unlink(path)
    return status


def _open(path: str, mode: str, created: list[str]) -> int:
    if mode == "r":
        return os.open(path, os.O_RDONLY)
    existed = os.path.exists(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    if not existed:
        created.append(path)
    return fd


def _exchange(target: Target, request: Request, fds: list[int]) -> int:
    chosen = request.console.get("language")
    language = chosen if isinstance(chosen, str) and chosen in CATALOGS else target.language
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(target.socket)
    except OSError as exc:
        sock.close()
        said = Translator(language)("cli.service_down", socket=target.socket, error=exc.strerror)
        print(f"tocsin: {said}", file=sys.stderr)
        return EXIT_FAILED
    with sock:
        send_request(sock, request, [0, 1, 2, *fds])
        previous = {
            number: signal.signal(number, lambda n, _: _pass_on(sock, n))
            for number in FORWARDED_SIGNALS
        }
        try:
            return _status(sock, Translator(language))
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)


def _pass_on(sock: socket.socket, number: int) -> None:
    with contextlib.suppress(OSError):
        send_line(sock, {"signal": int(number)})


def _status(sock: socket.socket, t: Translator) -> int:
    reader = LineReader(sock)
    while True:
        try:
            messages = reader.read()
        except InterruptedError:
            continue
        if messages is None:
            print("tocsin: " + t("cli.service_left"), file=sys.stderr)
            return EXIT_FAILED
        for message in messages:
            status = message.get("status")
            if isinstance(status, int):
                return status
