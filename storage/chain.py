"""Keyed hash chains for the append-only tables (consent events, audit entries).

Each row's hash is an HMAC-SHA256 over the previous row's hash and the row's
canonical content, under a sub-key of the service's hash key (one per chain), so an
edited, deleted or reordered row breaks every hash after it and nobody without the
key can recompute them. The chain's head row carries an HMAC of its own over its
last seq and hash, so cutting the tail and rolling the head back is found too; the
head printed outside the database (`tocsin audit head`) anchors against putting back
an older head as a whole.

Rows appended before the chains were keyed (migration 0008) keep a plain SHA-256
link below the head's `keyed_from` until `tocsin audit rekey` re-hashes them.

The key travels with the engine (`use_chain_key`, called by the Context), so every
session and connection of a service's engine appends keyed entries without each
caller passing the key, and an engine without one refuses to append.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Connection, Engine, Insert, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from storage.models import ChainHead

GENESIS = "0" * 64
_KEYS_OPTION = "tocsin_chain_keys"
# HKDF-SHA256 (RFC 5869): the salt of the extract step, and the label before each
# chain's name in the expand step, so each chain (and the suppression list's hashes,
# which use the key itself) has a key of its own.
_HKDF_SALT = b"tocsin hash chains"
_HKDF_LABEL = b"tocsin chain "


class ChainKeyMissing(RuntimeError):
    """An append or a check on an engine no Context gave the key to: a bug, never
    something to paper over with an unkeyed entry."""


def derive_chain_key(master: bytes, chain: str) -> bytes:
    """HKDF-SHA256 with one output block: the chain's own 32-byte key."""
    prk = hmac.new(_HKDF_SALT, master, hashlib.sha256).digest()
    return hmac.new(prk, _HKDF_LABEL + chain.encode("ascii") + b"\x01", hashlib.sha256).digest()


class ChainKeys:
    """The sub-keys of one hash key, derived once per chain."""

    __slots__ = ("_derived", "_master")

    def __init__(self, master: bytes) -> None:
        self._master = master
        self._derived: dict[str, bytes] = {}

    def for_chain(self, chain: str) -> bytes:
        key = self._derived.get(chain)
        if key is None:
            key = self._derived[chain] = derive_chain_key(self._master, chain)
        return key

    def __repr__(self) -> str:
        return "ChainKeys(***)"


def use_chain_key(engine: Engine, master: bytes) -> None:
    """Every session and connection of `engine` appends and checks under this key."""
    engine.update_execution_options(**{_KEYS_OPTION: ChainKeys(master)})


# Session or Connection: the importer appends in bulk on a Connection.
Executor = Session | Connection


def chain_key(executor: Executor | Engine, chain: str) -> bytes:
    bind = executor.get_bind() if isinstance(executor, Session) else executor
    keys = bind.get_execution_options().get(_KEYS_OPTION)
    if not isinstance(keys, ChainKeys):
        raise ChainKeyMissing(f"no key for the {chain} chain on this engine")
    return keys.for_chain(chain)


def canonical(fields: Mapping[str, Any]) -> str:
    def encode(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        return value

    return json.dumps(
        {k: encode(v) for k, v in sorted(fields.items())},
        ensure_ascii=False,
        separators=(",", ":"),
    )


@lru_cache(maxsize=16)
def _keyed(key: bytes) -> Any:
    # The keyed inner state is set up once per key and copied for each link.
    return hmac.new(key, digestmod=hashlib.sha256)


def link_mac(key: bytes, prev_hash: str, fields: Mapping[str, Any]) -> str:
    mac = _keyed(key).copy()
    mac.update((prev_hash + canonical(fields)).encode("utf-8"))
    return str(mac.hexdigest())


def legacy_link_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    """The unkeyed link of entries appended before migration 0008 (checking only)."""
    return hashlib.sha256((prev_hash + canonical(fields)).encode("utf-8")).hexdigest()


def head_mac(key: bytes, chain: str, seq: int, last_hash: str, keyed_from: int) -> str:
    message = f"head\x00{chain}\x00{seq}\x00{last_hash}\x00{keyed_from}"
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Link:
    seq: int
    prev_hash: str
    key: bytes = field(repr=False)

    def digest(self, prev_hash: str, fields: Mapping[str, Any]) -> str:
        """The hash of an entry after `prev_hash` (bulk appends chain several)."""
        return link_mac(self.key, prev_hash, fields)

    def hash(self, fields: Mapping[str, Any]) -> str:
        """The hash of the entry taking this link's place."""
        return self.digest(self.prev_hash, fields)


_HEAD = cast(Table, cast(Any, ChainHead).__table__)


def reserve_link(session: Executor, chain: str) -> Link:
    """Take the next place in a chain inside the caller's transaction."""
    return reserve_links(session, chain, 1)


def reserve_links(executor: Executor, chain: str, count: int) -> Link:
    """Take `count` consecutive places; returns the first one and the hash before it.

    The UPDATE comes first so that it takes the row lock (PostgreSQL) or the write
    lock (SQLite) before anything is read: concurrent writers queue here.
    """
    key = chain_key(executor, chain)
    if _bump(executor, chain, count) == 0:
        # The chain's first entry. Two first writers may both get here on
        # PostgreSQL: the second INSERT waits for the first to commit and then does
        # nothing, and its UPDATE takes the places after the first writer's.
        executor.execute(
            _insert_ignoring_conflict(executor).values(
                name=chain, seq=0, last_hash=GENESIS, keyed_from=1, mac=""
            )
        )
        _bump(executor, chain, count)
    seq, last_hash = executor.execute(
        select(_HEAD.c.seq, _HEAD.c.last_hash).where(_HEAD.c.name == chain)
    ).one()
    return Link(seq=int(seq) - count + 1, prev_hash=last_hash or GENESIS, key=key)


def lock_head(executor: Executor, chain: str) -> None:
    """Hold the chain's head (row lock, or SQLite's write lock) until the transaction
    ends: no append gets in meanwhile."""
    _bump(executor, chain, 0)


def _bump(executor: Executor, chain: str, count: int) -> int:
    result = executor.execute(
        update(_HEAD).where(_HEAD.c.name == chain).values(seq=_HEAD.c.seq + count)
    )
    return int(cast(Any, result).rowcount)


def _dialect(executor: Executor) -> str:
    if isinstance(executor, Session):
        return executor.get_bind().dialect.name
    return executor.dialect.name


def _insert_ignoring_conflict(executor: Executor) -> Insert:
    dialect = _dialect(executor)
    if dialect == "postgresql":
        return postgresql.insert(_HEAD).on_conflict_do_nothing(index_elements=["name"])
    if dialect == "sqlite":
        return sqlite.insert(_HEAD).on_conflict_do_nothing(index_elements=["name"])
    raise NotImplementedError(f"hash chains need SQLite or PostgreSQL, not {dialect}")


def commit_link(executor: Executor, chain: str, new_hash: str) -> None:
    """Record the chain's new last hash, with the head's HMAC over it."""
    key = chain_key(executor, chain)
    seq, keyed_from = executor.execute(
        select(_HEAD.c.seq, _HEAD.c.keyed_from).where(_HEAD.c.name == chain)
    ).one()
    executor.execute(
        update(_HEAD)
        .where(_HEAD.c.name == chain)
        .values(last_hash=new_hash, mac=head_mac(key, chain, int(seq), new_hash, int(keyed_from)))
    )


@dataclass(frozen=True)
class Head:
    name: str
    seq: int
    last_hash: str
    keyed_from: int
    mac: str

    def authentic(self, key: bytes) -> bool:
        expected = head_mac(key, self.name, self.seq, self.last_hash, self.keyed_from)
        return bool(self.mac) and hmac.compare_digest(self.mac, expected)


def read_head(executor: Executor | Engine, chain: str) -> Head | None:
    statement = select(_HEAD.c.seq, _HEAD.c.last_hash, _HEAD.c.keyed_from, _HEAD.c.mac).where(
        _HEAD.c.name == chain
    )
    if isinstance(executor, Engine):
        with executor.connect() as conn:
            row = conn.execute(statement).first()
    else:
        row = executor.execute(statement).first()
    if row is None:
        return None
    seq, last_hash, keyed_from, mac = row
    return Head(chain, int(seq), last_hash or GENESIS, int(keyed_from), mac or "")


def set_head(executor: Executor, chain: str, seq: int, last_hash: str, keyed_from: int) -> None:
    """Rewrite the head as a whole (rekey), with its HMAC."""
    key = chain_key(executor, chain)
    executor.execute(
        update(_HEAD)
        .where(_HEAD.c.name == chain)
        .values(
            seq=seq,
            last_hash=last_hash,
            keyed_from=keyed_from,
            mac=head_mac(key, chain, seq, last_hash, keyed_from),
        )
    )


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    reason: str


@dataclass
class ChainWalk:
    """What a walk through a chain found: entries, problems, the last entry."""

    count: int = 0
    problems: list[ChainProblem] = field(default_factory=list)
    last_seq: int = 0
    last_hash: str = GENESIS
    # seq -> hash of the entries asked for (an anchor recorded outside).
    seen: dict[int, str] = field(default_factory=dict)


def verify_links(
    rows: Iterable[tuple[int, str, str, Mapping[str, Any]]],
    key: bytes,
    *,
    keyed_from: int = 1,
    remember: frozenset[int] = frozenset(),
) -> ChainWalk:
    """Check (seq, prev_hash, hash, fields) rows in seq order.

    Entries from `keyed_from` on must carry the HMAC under `key`; the ones before,
    appended before the chains were keyed, a plain SHA-256 link.
    """
    walk = ChainWalk()
    expected_prev = GENESIS
    expected_seq = 1
    for seq, prev_hash, row_hash, fields in rows:
        walk.count += 1
        if seq != expected_seq:
            walk.problems.append(ChainProblem(seq, f"gap: expected seq {expected_seq}"))
        if prev_hash != expected_prev:
            walk.problems.append(ChainProblem(seq, "previous hash does not match"))
        if seq >= keyed_from:
            good = hmac.compare_digest(link_mac(key, prev_hash, fields), row_hash)
        else:
            good = legacy_link_hash(prev_hash, fields) == row_hash
        if not good:
            walk.problems.append(ChainProblem(seq, "content does not match its hash"))
        if seq in remember:
            walk.seen[seq] = row_hash
        expected_prev = row_hash
        expected_seq = seq + 1
        walk.last_seq, walk.last_hash = seq, row_hash
    return walk
