"""`tocsin service`: runs operators' commands on their behalf, as the service user.

Each connection is one command. The kernel names the caller (SO_PEERCRED); their
role comes from the town's config, which this process read as itself. The command
runs in a child process of ours (a fresh interpreter, so no state is shared between
operators) on the caller's own terminal, whose descriptors came with the request.
Files the command names were opened by the caller: inputs are copied into a private
folder before it runs, outputs copied back once it succeeded, so the service never
opens a path an operator chose.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import pwd
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from console.config import Config
from console.i18n import CATALOGS, Translator
from console.roles import Role, role_for, unix_groups
from console.service.files import file_args, tokened
from console.service.identity import ACTING_FOR, CONSOLE_PREFS, service_uid
from console.service.protocol import (
    LineReader,
    ProtocolError,
    Request,
    receive_request,
    send_line,
)
from console.text import visible

log = logging.getLogger("tocsin.service")

# What of the caller's environment the command sees: its terminal and language.
PASSED_ENV = (
    "TERM",
    "COLORTERM",
    "NO_COLOR",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "COLUMNS",
    "LINES",
)
# Signals a caller's terminal may pass on to their command.
FORWARDED_SIGNALS = frozenset(
    {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGWINCH}
)
EXIT_FAILED, EXIT_USAGE = 1, 2


class ServiceError(Exception):
    pass


@dataclass(frozen=True)
class Caller:
    uid: int
    pid: int
    user: str


def peer(conn: socket.socket) -> Caller:
    """Who is at the other end, as the kernel says (not as they say)."""
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", raw)
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    return Caller(uid=uid, pid=pid, user=user)


# Which role a caller has: from the town's config (replaced in tests).
RoleOf = Callable[[str], Role]


def _role_from(config: Config) -> RoleOf:
    return lambda user: role_for(user, unix_groups(user), config.roles)


def command_line(python: str = sys.executable) -> list[str]:
    """The child: `tocsin` itself, with this very interpreter."""
    return [python, "-m", "screens"]


class Service:
    def __init__(
        self,
        config: Config,
        *,
        role_of: RoleOf | None = None,
        peer_of: Callable[[socket.socket], Caller] = peer,
        audit: Callable[[Caller, Role, str], None] | None = None,
        child_env: dict[str, str] | None = None,
        parse: Callable[[list[str]], argparse.Namespace] | None = None,
    ) -> None:
        self.config = config
        # The CLI's own parser (given by the CLI), to vet a command before running it.
        self.parse = parse
        # Added to the children's environment (tests: the config file to read).
        self.child_env = dict(child_env or {})
        self.role_of = role_of or _role_from(config)
        self.peer_of = peer_of
        self.audit = audit or self._audit_refusal
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None

    # -- listening -----------------------------------------------------------------

    def bind(self) -> socket.socket:
        path = Path(self.config.service.socket)
        if path.exists():
            if _answers(path):
                raise ServiceError(f"{path}: another service already listens here")
            path.unlink()  # left by a service that died
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        # Anyone may knock: the kernel names them and their role decides.
        path.chmod(0o666)
        listener.listen(64)
        self._listener = listener
        return listener

    def serve_forever(self) -> None:
        listener = self._listener or self.bind()
        log.info("service listening on %s", self.config.service.socket)
        while not self._stopping.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                if self._stopping.is_set():
                    break
                raise
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            with contextlib.suppress(OSError):
                Path(self.config.service.socket).unlink()

    # -- one command ---------------------------------------------------------------

    def handle(self, conn: socket.socket) -> None:
        with conn:
            try:
                caller = self.peer_of(conn)
                request, fds = receive_request(conn)
            except (ProtocolError, OSError) as exc:
                log.warning("a request refused: %s", exc)
                return
            try:
                status = self._run(conn, caller, request, fds)
            except Exception:
                log.exception("the command of %s failed in the service", caller.user)
                status = EXIT_FAILED
            finally:
                for fd in fds:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            with contextlib.suppress(OSError):
                send_line(conn, {"status": status})

    def _run(self, conn: socket.socket, caller: Caller, request: Request, fds: list[int]) -> int:
        if len(fds) != 3 + len(request.files):
            raise ProtocolError("the descriptors sent do not match the request")
        stderr = fds[2]
        command = " ".join(["tocsin", *request.argv])[:500]
        t = Translator(_language(self.config, request))
        if any(a == "--config" or a.startswith("--config=") for a in request.argv):
            _say(stderr, "tocsin: " + t("cli.service_config"))
            return EXIT_USAGE
        role = self.role_of(caller.user)
        if role is Role.NONE:
            self.audit(caller, role, command)
            _say(stderr, "tocsin: " + t("cli.service_no_role", user=caller.user))
            return EXIT_FAILED
        refusal = self._vetted(request, role, t)
        if refusal is not None:
            if role < Role.ADMIN:
                self.audit(caller, role, command)
            _say(stderr, "tocsin: " + refusal)
            return EXIT_USAGE
        log.info("%s (uid %d, pid %d): %s", caller.user, caller.uid, caller.pid, command)
        with tempfile.TemporaryDirectory(prefix="tocsin-service-") as folder:
            argv, outputs = _files_into(Path(folder), request, fds[3:])
            child = subprocess.Popen(
                command_line() + argv,
                stdin=fds[0],
                stdout=fds[1],
                stderr=stderr,
                cwd=folder,
                env=self._environment(caller, request),
                start_new_session=True,
            )
            status = _wait(conn, child)
            if status == 0:
                for path, fd in outputs:
                    _copy_out(path, fd)
        return status

    def _vetted(self, request: Request, role: Role, t: Translator) -> str | None:
        """Why the command may not run here, or None. Any program may talk to the
        socket, not only our client: a file the command names must be one the
        caller handed over, or the service would open a path of their choosing."""
        if self.parse is None:
            return None
        try:
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                args = self.parse(list(request.argv))
        except SystemExit:
            return None  # bad usage or --help: the child's parser says it, touching nothing
        if getattr(args, "config_free", False) or args.command == "service":
            return t("cli.service_local", command=args.command)
        handed = {f.token for f in request.files}
        for path, _ in file_args(args):
            if path not in handed:
                return t("cli.service_file", path=visible(path))
        if args.command == "db" and args.action in ("init", "upgrade") and role < Role.ADMIN:
            return t("cli.service_admin", command=f"db {args.action}")
        return None

    def _environment(self, caller: Caller, request: Request) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_ACTING")}
        env.pop("TOCSIN_CONFIG", None)
        env.update({k: v for k, v in request.env.items() if k in PASSED_ENV})
        env.update(self.child_env)
        env[ACTING_FOR] = caller.user
        if request.console:
            import json

            env[CONSOLE_PREFS] = json.dumps(request.console)
        return env

    def _audit_refusal(self, caller: Caller, role: Role, command: str) -> None:
        from console.bootstrap import build_context

        try:
            ctx = build_context(self.config, operator=caller.user, role=role)
        except Exception as exc:  # the refusal stands; the journal says it
            log.warning("refusal of %s not audited: %s", caller.user, exc)
            return
        ctx.attempt = command
        ctx.audit_refusal(Role.VIEWER, "service")
        ctx.engine.dispose()


def _language(config: Config, request: Request) -> str:
    chosen = request.console.get("language")
    return chosen if isinstance(chosen, str) and chosen in CATALOGS else config.console.language


def _answers(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def _say(fd: int, line: str) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, (line + "\n").encode("utf-8", "replace"))


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _files_into(
    folder: Path, request: Request, fds: list[int]
) -> tuple[list[str], list[tuple[Path, int]]]:
    """argv with each file token replaced by a path in our private folder; the
    inputs copied there; the outputs to copy back (path, caller's descriptor)."""
    argv = list(request.argv)
    outputs: list[tuple[Path, int]] = []
    for index, (arg, fd) in enumerate(zip(request.files, fds, strict=True)):
        # The caller's own file name, kept: the import report and the PDF name it.
        name = _UNSAFE.sub("_", arg.name)[-100:].lstrip(".") or "fichier"
        path = folder / str(index) / name
        path.parent.mkdir()
        if arg.mode == "r":
            with os.fdopen(os.dup(fd), "rb") as source, path.open("wb") as copy:
                shutil.copyfileobj(source, copy, 1024 * 1024)
        else:
            outputs.append((path, fd))
        argv = [tokened(a, arg.token, str(path)) for a in argv]
    return argv, outputs


def _copy_out(path: Path, fd: int) -> None:
    if not path.exists():
        return
    with path.open("rb") as source, os.fdopen(os.dup(fd), "wb") as target:
        shutil.copyfileobj(source, target, 1024 * 1024)


def _wait(conn: socket.socket, child: subprocess.Popen[bytes]) -> int:
    """The child's exit status, passing on the caller's signals meanwhile; a caller
    that leaves (their SSH session dropped) takes their command with them."""
    reader = LineReader(conn)
    while child.poll() is None:
        ready, _, _ = select.select([conn], [], [], 0.1)
        if not ready:
            continue
        try:
            messages = reader.read()
        except OSError:
            messages = None
        if messages is None:
            child.send_signal(signal.SIGHUP)
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
            break
        for message in messages:
            number = message.get("signal")
            if isinstance(number, int) and number in FORWARDED_SIGNALS:
                child.send_signal(number)
    code = child.wait()
    return 128 - code if code < 0 else code


def run_service(config: Config, parse: Callable[[list[str]], argparse.Namespace]) -> None:
    """`tocsin service`, as the service user, until SIGTERM."""
    uid = service_uid(config)
    if uid is None:
        raise ServiceError(
            "key 'service.user': name the Unix user the service runs as "
            "(it must exist: useradd --system tocsin)"
        )
    if os.getuid() != uid:
        raise ServiceError(
            f"the service runs as {config.service.user} (systemctl start tocsin-console; "
            f"or sudo -u {config.service.user} tocsin service)"
        )
    service = Service(config, parse=parse)
    service.bind()
    signal.signal(signal.SIGTERM, lambda *_: service.stop())
    try:
        service.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        service.stop()
