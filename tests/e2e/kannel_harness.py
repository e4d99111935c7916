"""The real Kannel (Debian's 1.4.5) on loopback, for the end-to-end tests and .ci/run.

`running_kannel(workdir, mo_url)` writes a kannel.conf in `workdir`, picks free
loopback ports, starts bearerbox, smsbox and two fakesmsc clients, waits until
everything is on line, and stops it all (SIGTERM) on exit:

- the MT sink: `fakesmsc -m 0`, which sends nothing and logs every message it gets as
  `Got message N: <from> <to> text|ucs-2|udh ... <body>`; `Kannel.received()` parses
  those lines (and joins the parts of concatenated messages);
- the MO source: `fakesmsc -i 0 -m -1` in interactive mode, reading one message per
  line from a FIFO opened read-write (so it never sees EOF); `Kannel.send_mo()` writes
  one line and waits until fakesmsc has sent it, because fakesmsc only handles the
  first of several lines that arrive in one read.

The MO source has its own smsc group with `allowed-smsc-id`, so no MT is routed to it.
See ../shared/kannel-notes.md for what this rests on.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import missing_component

BEARERBOX = "/usr/sbin/bearerbox"
SMSBOX = "/usr/sbin/smsbox"
FAKESMSC = "/usr/lib/kannel/test/fakesmsc"

SINK_ID = "sink"
MO_ID = "mo"

# fakesmsc reads stdin with a 256-byte buffer: longer lines are cut in two.
_MO_LINE_MAX = 255
_GOT = re.compile(rb"Got message (\d+): <(.*)>\s*$")
_SENT = re.compile(rb"fakesmsc: sent message (\d+)")


def require_kannel() -> None:
    """Skip (or fail under TOCSIN_REQUIRE_ALL=1) when Kannel is not installed."""
    for path in (BEARERBOX, SMSBOX, FAKESMSC):
        if not os.access(path, os.X_OK):
            missing_component(f"{path} is missing (apt-get install kannel kannel-extras)")


def free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (held open together so none repeats)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass(frozen=True)
class ReceivedSms:
    """One message as the MT sink got it (concatenated parts joined)."""

    sender: str
    to: str
    coding: str  # "text" (7-bit), "ucs-2" or "data" (8-bit)
    body: str
    parts: int = 1


@dataclass
class _Partial:
    sender: str
    to: str
    total: int
    chunks: dict[int, bytes] = field(default_factory=dict)


def _decode(coding: str, data: bytes) -> str:
    if coding == "ucs-2":
        return data.decode("utf-16-be", errors="replace")
    return data.decode("utf-8", errors="replace")


def _url_decode(data: bytes) -> bytes:
    """Kannel's url-encoding: %XX, and '+' for a space."""
    return urllib.parse.unquote_to_bytes(data.replace(b"+", b" ").decode("ascii"))


def _concat_info(udh: bytes) -> tuple[int, int, int] | None:
    """(reference, total, sequence) from a UDH's concatenation element, if any."""
    i = 1  # udh[0] is the UDH length
    while i + 1 < len(udh):
        iei, length = udh[i], udh[i + 1]
        value = udh[i + 2 : i + 2 + length]
        if iei == 0x00 and length == 3:
            return value[0], value[1], value[2]
        if iei == 0x08 and length == 4:
            return (value[0] << 8) | value[1], value[2], value[3]
        i += 2 + length
    return None


def parse_sink_output(raw: bytes) -> list[ReceivedSms]:
    """The messages in the MT sink's log, in arrival order of their last part."""
    done: list[ReceivedSms] = []
    partial: dict[tuple[str, str, int], _Partial] = {}
    for line in raw.splitlines():
        match = _GOT.search(line)
        if match is None:
            continue
        fields = match.group(2).split(b" ", 3)
        if len(fields) < 3:
            continue
        sender, to = fields[0].decode(), fields[1].decode()
        kind = fields[2].decode()
        rest = fields[3] if len(fields) > 3 else b""
        if kind == "text":
            done.append(ReceivedSms(sender, to, "text", _decode("text", rest)))
        elif kind in ("ucs-2", "data"):
            data = _url_decode(rest)
            done.append(ReceivedSms(sender, to, kind, _decode(kind, data)))
        elif kind == "udh":
            # "<udh> data <msgdata>", both url-encoded; the line does not say the coding.
            udh_enc, _, data_enc = rest.partition(b" data ")
            udh, data = _url_decode(udh_enc), _url_decode(data_enc)
            info = _concat_info(udh)
            if info is None:
                done.append(ReceivedSms(sender, to, "data", _decode("data", data)))
                continue
            ref, total, seq = info
            key = (sender, to, ref)
            part = partial.setdefault(key, _Partial(sender, to, total))
            part.chunks[seq] = data
            if len(part.chunks) == part.total:
                del partial[key]
                joined = b"".join(part.chunks[n] for n in sorted(part.chunks))
                # UCS-2 parts come as UTF-16BE: French text has a zero byte every
                # other byte; 7-bit parts never hold a zero byte.
                coding = "ucs-2" if b"\x00" in joined else "text"
                done.append(ReceivedSms(sender, to, coding, _decode(coding, joined), total))
    return done


class KannelError(RuntimeError):
    pass


class Kannel:
    """One bearerbox + smsbox + two fakesmsc, configured in `workdir`."""

    def __init__(
        self,
        workdir: Path,
        mo_url: str,
        *,
        username: str = "tocsin",
        password: str = "kannel-secret",
        max_messages: int = 10,
        immediate_sendsms_reply: bool = True,
    ) -> None:
        self.workdir = workdir
        self.mo_url = mo_url
        self.username = username
        self.password = password
        self.max_messages = max_messages
        self.immediate_sendsms_reply = immediate_sendsms_reply
        self.admin_password = "admin-secret"
        (self.admin_port, self.smsbox_port, self.sendsms_port, self.sink_port, self.mo_port) = (
            free_ports(5)
        )
        self.config_path = workdir / "kannel.conf"
        self.sendsms_url = f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms"
        self.status_url = (
            f"http://127.0.0.1:{self.admin_port}/status.txt?password={self.admin_password}"
        )
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._mo_fifo = workdir / "mo.fifo"
        self._mo_fd: int | None = None
        self._mo_writer: int | None = None
        self._mo_sent = 0

    # ---- configuration ---------------------------------------------------------

    def config_text(self) -> str:
        d = self.workdir
        return f"""\
# Written by tests/e2e/kannel_harness.py: Kannel on loopback for the tests.
group = core
admin-port = {self.admin_port}
admin-interface = 127.0.0.1
admin-password = {self.admin_password}
smsbox-port = {self.smsbox_port}
smsbox-interface = 127.0.0.1
dlr-storage = internal
box-allow-ip = "127.0.0.1"
log-file = "{d / "bearerbox.log"}"
log-level = 1
access-log = "{d / "access.log"}"

# The MT sink: every MT goes here.
group = smsc
smsc = fake
smsc-id = {SINK_ID}
port = {self.sink_port}
our-host = 127.0.0.1
connect-allow-ip = 127.0.0.1

# The MO source: it only feeds MOs in; allowed-smsc-id keeps MTs away from it.
group = smsc
smsc = fake
smsc-id = {MO_ID}
allowed-smsc-id = {MO_ID}
port = {self.mo_port}
our-host = 127.0.0.1
connect-allow-ip = 127.0.0.1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {self.smsbox_port}
sendsms-port = {self.sendsms_port}
sendsms-interface = 127.0.0.1
mo-recode = true
http-request-retry = 3
http-queue-delay = 1
# Answer sendsms at once instead of after bearerbox's ack (~40 ms per request).
immediate-sendsms-reply = {str(self.immediate_sendsms_reply).lower()}
log-file = "{d / "smsbox.log"}"
log-level = 1

group = sendsms-user
username = {self.username}
password = {self.password}
# The default (1) silently truncates longer texts to one SMS.
max-messages = {self.max_messages}
concatenation = true

# Every MO goes to our endpoint; max-messages = 0: never text the answer back.
group = sms-service
keyword = default
catch-all = true
max-messages = 0
get-url = "{self.mo_url}"
"""

    # ---- processes -------------------------------------------------------------

    def _spawn(self, name: str, argv: list[str], stdin: int | None = None) -> None:
        log = open(self.workdir / f"{name}.out", "ab")  # noqa: SIM115 (owned by the child)
        try:
            self._procs[name] = subprocess.Popen(
                argv,
                stdin=stdin if stdin is not None else subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
            )
        finally:
            log.close()

    def _spawn_sink(self) -> None:
        self._spawn(
            "sink",
            [FAKESMSC, "-H", "127.0.0.1", "-r", str(self.sink_port), "-m", "0", "0 0 text unused"],
        )

    def _spawn_mo(self) -> None:
        assert self._mo_fd is not None
        self._spawn(
            "mo",
            [FAKESMSC, "-H", "127.0.0.1", "-r", str(self.mo_port), "-i", "0", "-m", "-1"],
            stdin=self._mo_fd,
        )

    def start(self, timeout: float = 20.0) -> None:
        self.config_path.write_text(self.config_text(), encoding="utf-8")
        os.mkfifo(self._mo_fifo)
        # Read-write: the FIFO then always has a writer, so fakesmsc never reads EOF.
        self._mo_fd = os.open(self._mo_fifo, os.O_RDWR)
        self._mo_writer = os.open(self._mo_fifo, os.O_WRONLY)
        self._spawn("bearerbox", [BEARERBOX, "-v", "2", str(self.config_path)])
        self._wait(lambda: self.status() is not None, timeout, "bearerbox's admin port")
        self._spawn("smsbox", [SMSBOX, "-v", "2", str(self.config_path)])
        self._spawn_sink()
        self._spawn_mo()
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                raise KannelError(f"Kannel not ready in {timeout} s:\n{self.diagnostics()}")
            # fakesmsc gives up at once if bearerbox's fake SMSC is not listening yet.
            for name, spawn in (("sink", self._spawn_sink), ("mo", self._spawn_mo)):
                if self._procs[name].poll() is not None:
                    spawn()
            for name in ("bearerbox", "smsbox"):
                if self._procs[name].poll() is not None:
                    raise KannelError(f"{name} exited:\n{self.diagnostics()}")
            time.sleep(0.1)

    def _wait(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise KannelError(f"{what} not up in {timeout} s:\n{self.diagnostics()}")
            time.sleep(0.05)

    def status(self) -> str | None:
        try:
            with urllib.request.urlopen(self.status_url, timeout=2) as answer:
                return bytes(answer.read()).decode("utf-8", errors="replace")
        except (OSError, urllib.error.URLError):
            return None

    def ready(self) -> bool:
        status = self.status()
        if status is None:
            return False
        for smsc in (SINK_ID, MO_ID):
            line = next((x for x in status.splitlines() if x.strip().startswith(smsc)), "")
            if "(online" not in line:
                return False
        if "on-line" not in status.split("Box connections:")[-1]:
            return False
        # smsbox answers sendsms: without credentials, 403.
        try:
            urllib.request.urlopen(self.sendsms_url, timeout=2).close()
        except urllib.error.HTTPError as exc:
            return exc.code == 403
        except OSError:
            return False
        return False

    def _terminate(self, name: str, grace: float = 5.0) -> None:
        """SIGTERM; a second SIGTERM if it lingers (bearerbox then stops without
        waiting for its queues: reports for a stopped smsbox would hold it forever);
        SIGKILL as the last resort."""
        proc = self._procs.get(name)
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in (
            (signal.SIGTERM, grace),
            (signal.SIGTERM, grace),
            (signal.SIGKILL, grace),
        ):
            proc.send_signal(sig)
            try:
                proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def stop_smsbox(self) -> None:
        self._terminate("smsbox")

    def stop_sink(self) -> None:
        self._terminate("sink")

    def stop(self) -> None:
        # The MO source first (it may abort on EOF), then bearerbox: smsbox and the
        # sink end when it goes away (stopping smsbox first could leave bearerbox
        # waiting for reports it can no longer hand over).
        self._terminate("mo", grace=2.0)
        self._terminate("bearerbox", grace=2.0)
        for name in ("smsbox", "sink"):
            self._terminate(name, grace=2.0)
        for fd in (self._mo_writer, self._mo_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._mo_fd = self._mo_writer = None

    def diagnostics(self) -> str:
        parts = []
        for name in ("bearerbox", "smsbox", "sink", "mo"):
            path = self.workdir / f"{name}.out"
            if path.exists():
                tail = path.read_bytes()[-2000:].decode("utf-8", errors="replace")
                parts.append(f"--- {name}.out\n{tail}")
        parts.append(f"--- status\n{self.status()}")
        return "\n".join(parts)

    # ---- messages --------------------------------------------------------------

    def received(self) -> list[ReceivedSms]:
        """Every MT the sink got so far."""
        path = self.workdir / "sink.out"
        return parse_sink_output(path.read_bytes() if path.exists() else b"")

    def wait_received(self, count: int, timeout: float = 30.0) -> list[ReceivedSms]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.received()
            if len(got) >= count or time.monotonic() > deadline:
                return got
            time.sleep(0.1)

    def send_mo(self, from_: str, to: str, text: str, timeout: float = 10.0) -> None:
        """A handset `from_` texts `text` to `to`: 7-bit if ASCII, else UCS-2."""
        if self._mo_writer is None:
            raise KannelError("Kannel is not running")
        if any(c.isspace() for c in from_ + to) or not from_ or not to:
            raise ValueError("numbers must be non-empty, without spaces")
        if "\n" in text or "\r" in text:
            raise ValueError("fakesmsc reads one message per line")
        if text.isascii():
            line = f"{from_} {to} text {text}\n".encode()
        else:
            body = urllib.parse.quote_from_bytes(text.encode("utf-16-be"), safe="")
            line = f"{from_} {to} ucs2 {body}\n".encode()
        if len(line) > _MO_LINE_MAX:
            raise ValueError(f"fakesmsc's line buffer holds {_MO_LINE_MAX} bytes")
        os.write(self._mo_writer, line)
        self._mo_sent += 1
        # One line at a time: wait until fakesmsc says it sent this one.
        deadline = time.monotonic() + timeout
        while self._mo_sent_count() < self._mo_sent:
            if time.monotonic() > deadline:
                raise KannelError(f"fakesmsc did not send the MO:\n{self.diagnostics()}")
            time.sleep(0.05)

    def _mo_sent_count(self) -> int:
        path = self.workdir / "mo.out"
        counts = [int(m.group(1)) for m in _SENT.finditer(path.read_bytes())]
        return max(counts, default=0)


@contextlib.contextmanager
def running_kannel(
    workdir: Path,
    mo_url: str,
    *,
    username: str = "tocsin",
    password: str = "kannel-secret",
    max_messages: int = 10,
    immediate_sendsms_reply: bool = True,
) -> Iterator[Kannel]:
    """Kannel started in `workdir` with MOs going to `mo_url`; stopped on exit.
    Skips (fails under TOCSIN_REQUIRE_ALL=1) when Kannel is not installed."""
    require_kannel()
    for attempt in range(1, 4):
        # A fresh directory and fresh ports each time: a port picked free may have
        # been taken by someone else before bearerbox bound it.
        rundir = workdir / f"run{attempt}"
        rundir.mkdir(parents=True)
        kannel = Kannel(
            rundir,
            mo_url,
            username=username,
            password=password,
            max_messages=max_messages,
            immediate_sendsms_reply=immediate_sendsms_reply,
        )
        try:
            kannel.start()
        except KannelError:
            kannel.stop()
            if attempt == 3:
                raise
            continue
        try:
            yield kannel
        finally:
            kannel.stop()
        return
