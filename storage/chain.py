"""Hash chains for the append-only tables (consent events, audit entries).

Each row's hash covers its canonical content and the previous row's hash, so an
edited, deleted or reordered row breaks every hash after it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Insert, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from storage.models import ChainHead

GENESIS = "0" * 64


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


def link_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical(fields)).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Link:
    seq: int
    prev_hash: str


# Session or Connection: the importer appends in bulk on a Connection.
Executor = Session | Connection
_HEAD = cast(Table, cast(Any, ChainHead).__table__)


def reserve_link(session: Executor, chain: str) -> Link:
    """Take the next place in a chain inside the caller's transaction."""
    return reserve_links(session, chain, 1)


def reserve_links(executor: Executor, chain: str, count: int) -> Link:
    """Take `count` consecutive places; returns the first one and the hash before it.

    The UPDATE comes first so that it takes the row lock (PostgreSQL) or the write
    lock (SQLite) before anything is read: concurrent writers queue here.
    """
    if _bump(executor, chain, count) == 0:
        # The chain's first entry. Two first writers may both get here on
        # PostgreSQL: the second INSERT waits for the first to commit and then does
        # nothing, and its UPDATE takes the places after the first writer's.
        executor.execute(
            _insert_ignoring_conflict(executor).values(name=chain, seq=0, last_hash=GENESIS)
        )
        _bump(executor, chain, count)
    seq, last_hash = executor.execute(
        select(_HEAD.c.seq, _HEAD.c.last_hash).where(_HEAD.c.name == chain)
    ).one()
    return Link(seq=int(seq) - count + 1, prev_hash=last_hash or GENESIS)


def _bump(executor: Executor, chain: str, count: int) -> int:
    result = executor.execute(
        update(_HEAD).where(_HEAD.c.name == chain).values(seq=_HEAD.c.seq + count)
    )
    return int(cast(Any, result).rowcount)


def _insert_ignoring_conflict(executor: Executor) -> Insert:
    dialect = (
        executor.get_bind().dialect.name
        if isinstance(executor, Session)
        else (executor.dialect.name)
    )
    if dialect == "postgresql":
        return postgresql.insert(_HEAD).on_conflict_do_nothing(index_elements=["name"])
    if dialect == "sqlite":
        return sqlite.insert(_HEAD).on_conflict_do_nothing(index_elements=["name"])
    raise NotImplementedError(f"hash chains need SQLite or PostgreSQL, not {dialect}")


def commit_link(executor: Executor, chain: str, new_hash: str) -> None:
    executor.execute(update(_HEAD).where(_HEAD.c.name == chain).values(last_hash=new_hash))


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    reason: str


def verify_links(
    rows: Iterable[tuple[int, str, str, Mapping[str, Any]]],
) -> tuple[int, list[ChainProblem]]:
    """Check (seq, prev_hash, hash, fields) rows in seq order; return count and problems."""
    problems: list[ChainProblem] = []
    expected_prev = GENESIS
    expected_seq = 1
    count = 0
    for seq, prev_hash, row_hash, fields in rows:
        count += 1
        if seq != expected_seq:
            problems.append(ChainProblem(seq, f"gap: expected seq {expected_seq}"))
        if prev_hash != expected_prev:
            problems.append(ChainProblem(seq, "previous hash does not match"))
        if link_hash(prev_hash, fields) != row_hash:
            problems.append(ChainProblem(seq, "content does not match its hash"))
        expected_prev = row_hash
        expected_seq = seq + 1
    return count, problems
