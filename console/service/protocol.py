"""What a client and the service say to each other on the socket.

The client's first message is a length-prefixed JSON request, sent with the file
descriptors it hands over (its terminal, then the files its command names). Then
each side sends one JSON object per line: the client the signals its terminal got
(`{"signal": 28}`), the service the command's exit status (`{"status": 0}`).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

MAX_REQUEST = 1024 * 1024  # a command line, however long its text
MAX_FDS = 16
_LENGTH = struct.Struct("!I")


class ProtocolError(Exception):
    pass


@dataclass(frozen=True)
class FileArg:
    """A file the command names: `token` stands for it in argv; the client opened it
    (`mode` "r" to read, "w" to write) and sent its descriptor."""

    token: str
    mode: str
    name: str


@dataclass(frozen=True)
class Request:
    argv: list[str]
    env: dict[str, str]
    files: list[FileArg] = field(default_factory=list)
    console: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> bytes:
        body = json.dumps(
            {
                "argv": self.argv,
                "env": self.env,
                "files": [f.__dict__ for f in self.files],
                "console": self.console,
            }
        ).encode()
        return _LENGTH.pack(len(body)) + body

    @classmethod
    def decode(cls, body: bytes) -> Request:
        try:
            raw = json.loads(body)
            argv = [str(a) for a in raw["argv"]]
            env = {str(k): str(v) for k, v in raw["env"].items()}
            files = [FileArg(str(f["token"]), str(f["mode"]), str(f["name"])) for f in raw["files"]]
            console = dict(raw.get("console") or {})
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ProtocolError(f"malformed request: {exc}") from exc
        if any(f.mode not in ("r", "w") for f in files):
            raise ProtocolError("malformed request: a file's mode is r or w")
        return cls(argv, env, files, console)


def send_request(sock: socket.socket, request: Request, fds: list[int]) -> None:
    data = request.encode()
    sent = socket.send_fds(sock, [data], fds)
    if sent < len(data):
        sock.sendall(data[sent:])


def receive_request(sock: socket.socket) -> tuple[Request, list[int]]:
    data, fds, _, _ = socket.recv_fds(sock, 65536, MAX_FDS)
    if len(data) < _LENGTH.size:
        _close(fds)
        raise ProtocolError("the client said nothing")
    (length,) = _LENGTH.unpack_from(data)
    if length > MAX_REQUEST:
        _close(fds)
        raise ProtocolError(f"request of {length} bytes refused (at most {MAX_REQUEST})")
    body = bytearray(data[_LENGTH.size :])
    while len(body) < length:
        more = sock.recv(length - len(body))
        if not more:
            _close(fds)
            raise ProtocolError("the client left mid-request")
        body += more
    try:
        return Request.decode(bytes(body[:length])), list(fds)
    except ProtocolError:
        _close(fds)
        raise


def send_line(sock: socket.socket, message: dict[str, int | str]) -> None:
    sock.sendall(json.dumps(message).encode() + b"\n")


class LineReader:
    """JSON objects, one per line, from a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = b""

    def read(self) -> list[dict[str, Any]] | None:
        """What has arrived (after one recv), or None once the other side left."""
        chunk = self._sock.recv(4096)
        if not chunk:
            return None
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        messages: list[dict[str, Any]] = []
        for line in lines:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict):
                messages.append(message)
        return messages


def _close(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
