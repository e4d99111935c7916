"""Keyed hashes for the suppression list.

A plain hash of a French mobile number is reversed by trying the billion
candidates, so the hash is an HMAC with a key kept outside the database.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from pathlib import Path


class HashKeyError(Exception):
    pass


def load_or_create_key(path: Path) -> bytes:
    if path.exists():
        data = path.read_bytes().strip()
        if len(data) < 32:
            raise HashKeyError(f"{path}: hash key too short (want 64 hex characters)")
        return data
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode("ascii")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    return key


def number_hash(key: bytes, e164: str) -> str:
    return hmac.new(key, e164.encode("ascii"), hashlib.sha256).hexdigest()


def number_hasher(key: bytes) -> Callable[[str], str]:
    """`number_hash` for many numbers: the keyed state is set up once and copied."""
    keyed = hmac.new(key, digestmod=hashlib.sha256)

    def digest(e164: str) -> str:
        one = keyed.copy()
        one.update(e164.encode("ascii"))
        return one.hexdigest()

    return digest


def key_fingerprint(key: bytes) -> str:
    return hmac.new(key, b"tocsin-key-fingerprint", hashlib.sha256).hexdigest()[:16]
