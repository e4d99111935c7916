"""Keyed hashes for the suppression list.

A plain hash of a French mobile number is reversed by trying the billion
candidates, so the hash is an HMAC with a key kept outside the database.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path


class HashKeyError(Exception):
    """A problem with the key file, already phrased as the one line the user sees."""


def load_or_create_key(path: Path) -> bytes:
    """The key in `path`, created (0600) when there is none.

    Refused, with the one line to act on: a key others may read (whoever reads it
    can forge the hash chains and reverse the suppression list), one we may not
    read, or one that is not a file.
    """
    try:
        # The mode is checked on the descriptor we read from, so the file cannot be
        # swapped in between (and a FIFO never blocks us).
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return _create_key(path)
    except OSError as exc:
        raise HashKeyError(f"{path}: cannot read the hash key: {_why(exc)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise HashKeyError(f"{path}: the hash key is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise HashKeyError(
                f"{path}: the hash key is open to other users (mode {mode:04o}); "
                f"run chmod 600 {path}"
            )
        data = os.read(fd, 4096).strip()
    except OSError as exc:
        raise HashKeyError(f"{path}: cannot read the hash key: {_why(exc)}") from None
    finally:
        os.close(fd)
    if len(data) < 32:
        raise HashKeyError(f"{path}: hash key too short (want 64 hex characters)")
    return data


def _create_key(path: Path) -> bytes:
    key = secrets.token_hex(32).encode("ascii")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key + b"\n")
    except OSError as exc:
        raise HashKeyError(f"{path}: cannot create the hash key: {_why(exc)}") from None
    return key


def _why(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied (run Tocsin as the user the key belongs to)"
    return exc.strerror or type(exc).__name__


def number_hash(key: bytes, e164: str) -> str:
    return hmac.new(key, e164.encode("ascii"), hashlib.sha256).hexdigest()


def number_hasher(key: bytes) -> Callable[[str], str]:
    """`number_hash` for many numbers: HMAC's two keyed SHA-256 states are set up once
    and copied (hashlib's, not hmac's wrappers: a third of the cost per number)."""
    block = 64
    padded = (hashlib.sha256(key).digest() if len(key) > block else key).ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))

    def digest(e164: str) -> str:
        one = inner.copy()
        one.update(e164.encode("ascii"))
        two = outer.copy()
        two.update(one.digest())
        return two.hexdigest()

    return digest


def key_fingerprint(key: bytes) -> str:
    return hmac.new(key, b"tocsin-key-fingerprint", hashlib.sha256).hexdigest()[:16]
