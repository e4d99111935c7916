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
from typing import Any

from sqlalchemy import select, update
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


def reserve_link(session: Session, chain: str) -> Link:
    """Take the next place in a chain inside the caller's transaction.

    The UPDATE comes first so that it takes the row lock (PostgreSQL) or the write
    lock (SQLite) before anything is read: concurrent writers queue here.
    """
    result = session.execute(
        update(ChainHead).where(ChainHead.name == chain).values(seq=ChainHead.seq + 1)  # type: ignore[arg-type]
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        session.add(ChainHead(name=chain, seq=1, last_hash=GENESIS))
        session.flush()
    head = session.execute(select(ChainHead).where(ChainHead.name == chain)).scalar_one()  # type: ignore[arg-type]
    return Link(seq=head.seq, prev_hash=head.last_hash or GENESIS)


def commit_link(session: Session, chain: str, new_hash: str) -> None:
    session.execute(
        update(ChainHead).where(ChainHead.name == chain).values(last_hash=new_hash)  # type: ignore[arg-type]
    )


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
