"""The audit trail: one keyed hash-chained entry per change or send, naming the operator.

Entries name contacts by id only, so erasing a resident never has to touch the
append-only trail. This module also checks both chains (the audit trail and the
consent ledger) and reads their heads, the anchors to keep outside the database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from console.errors import TocsinError
from storage.chain import (
    ChainKeys,
    ChainProblem,
    Head,
    chain_key,
    commit_link,
    read_head,
    reserve_link,
    verify_links,
)
from storage.models import AuditEntry, ConsentEvent

AUDIT_CHAIN = "audit"
CONSENT_CHAIN = "consent"
CHAINS = (AUDIT_CHAIN, CONSENT_CHAIN)


def audit_fields(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": entry.at,
        "operator": entry.operator,
        "action": entry.action,
        "target": entry.target,
        "details": entry.details,
    }


def consent_fields(event: ConsentEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "contact_id": event.contact_id,
        "topic": event.topic,
        "action": event.action,
        "source": event.source,
        "proof_ref": event.proof_ref,
        "text_version": event.text_version,
        "operator": event.operator,
        "occurred_at": event.occurred_at,
        "recorded_at": event.recorded_at,
    }


def append_audit(
    session: Session,
    *,
    at: datetime,
    operator: str,
    action: str,
    target: str = "",
    details: Mapping[str, Any] | None = None,
) -> AuditEntry:
    link = reserve_link(session, AUDIT_CHAIN)
    entry = AuditEntry(
        seq=link.seq,
        at=at,
        operator=operator,
        action=action,
        target=target,
        details=json.dumps(dict(details or {}), ensure_ascii=False, sort_keys=True),
        prev_hash=link.prev_hash,
        hash="",
    )
    entry.hash = link.hash(audit_fields(entry))
    session.add(entry)
    commit_link(session, AUDIT_CHAIN, entry.hash)
    return entry


_Chained = TypeVar("_Chained", AuditEntry, ConsentEvent)


def _rows(
    engine: Engine,
    model: type[_Chained],
    fields: Callable[[_Chained], dict[str, Any]],
    upto: int,
) -> Iterator[tuple[int, str, str, dict[str, Any]]]:
    last = 0
    while True:
        with Session(engine) as session:
            batch = (
                session.execute(
                    select(model)
                    .where(col(model.seq) > last, col(model.seq) <= upto)
                    .order_by(col(model.seq))
                    .limit(5000)
                )
                .scalars()
                .all()
            )
        if not batch:
            return
        for row in batch:
            yield row.seq, row.prev_hash, row.hash, fields(row)
        last = batch[-1].seq


@dataclass(frozen=True)
class Anchor:
    """A chain's head as recorded outside the database: `CHAIN:SEQ:HASH`."""

    chain: str
    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.chain}:{self.seq}:{self.hash}"


_ANCHOR = re.compile(r"(audit|consent):(\d{1,18}):([0-9a-f]{64})")


def parse_anchor(text: str) -> Anchor:
    match = _ANCHOR.fullmatch(text.strip().lower())
    if match is None:
        raise TocsinError(
            f"{text!r}: expected CHAIN:SEQ:HASH as `tocsin audit head` prints it "
            "(audit:1234:3f2a...)",
            "anchor_format",
        )
    return Anchor(match.group(1), int(match.group(2)), match.group(3))


def _verify(
    engine: Engine,
    chain: str,
    model: type[_Chained],
    fields: Callable[[_Chained], dict[str, Any]],
    key: bytes,
    expect: list[Anchor],
) -> tuple[int, list[ChainProblem]]:
    # The head is read first, in one statement, and the rows up to it are checked:
    # entries appended while we read (the worker keeps auditing) are left for the
    # next run. An append commits its row and the head together.
    head = read_head(engine, chain) or Head(chain, 0, "", 1, "")
    walk = verify_links(
        _rows(engine, model, fields, head.seq),
        key,
        keyed_from=head.keyed_from,
        remember=frozenset(anchor.seq for anchor in expect),
    )
    problems = walk.problems
    if head.seq != walk.count:
        # Rows cut from the end leave a chain that checks out on its own.
        problems.append(ChainProblem(head.seq, f"head says {head.seq} entries, found {walk.count}"))
    elif walk.count and head.last_hash != walk.last_hash:
        problems.append(ChainProblem(head.seq, "the head's hash is not the last entry's"))
    if head.seq and not head.authentic(key):
        problems.append(
            ChainProblem(
                head.seq,
                "the chain head is not keyed yet: run `tocsin audit rekey` once"
                if not head.mac
                else "the chain head does not match its key: rolled back or edited",
            )
        )
    legacy = min(head.keyed_from - 1, walk.count)
    if legacy > 0:
        problems.append(
            ChainProblem(
                1,
                f"entries 1 to {legacy} are linked by plain SHA-256, from before the "
                "chains were keyed: run `tocsin audit rekey` once",
            )
        )
    for anchor in expect:
        if anchor.seq == 0:
            continue  # the head of a chain still empty anchors nothing
        found = walk.seen.get(anchor.seq)
        if found is None:
            problems.append(
                ChainProblem(
                    anchor.seq,
                    f"entry {anchor.seq} of the recorded head is missing: the chain was cut",
                )
            )
        elif found != anchor.hash:
            problems.append(
                ChainProblem(anchor.seq, "differs from the recorded head: the chain was rewritten")
            )
    # Rows slipped in past the head. The highest seq is read before the head:
    # an append commits its row and the head together, so a live append cannot
    # make this fire.
    with Session(engine) as session:
        last_seq = session.execute(select(func.max(col(model.seq)))).scalar_one()
    current = read_head(engine, chain)
    if last_seq is not None and last_seq > (current.seq if current else 0):
        problems.append(ChainProblem(last_seq, "entry beyond the chain head"))
    return walk.count, problems


def verify_chains(
    engine: Engine,
    key: bytes | None = None,
    *,
    expect: list[Anchor] | None = None,
) -> dict[str, tuple[int, list[ChainProblem]]]:
    """Check both chains from their first row; returns (count, problems) per chain.

    `key` is the service's hash key (default: the one the engine's Context holds);
    `expect` the heads recorded outside, each of which must still be in its chain.
    """
    anchors = list(expect or ())

    def key_for(chain: str) -> bytes:
        return ChainKeys(key).for_chain(chain) if key is not None else chain_key(engine, chain)

    return {
        AUDIT_CHAIN: _verify(
            engine,
            AUDIT_CHAIN,
            AuditEntry,
            audit_fields,
            key_for(AUDIT_CHAIN),
            [a for a in anchors if a.chain == AUDIT_CHAIN],
        ),
        CONSENT_CHAIN: _verify(
            engine,
            CONSENT_CHAIN,
            ConsentEvent,
            consent_fields,
            key_for(CONSENT_CHAIN),
            [a for a in anchors if a.chain == CONSENT_CHAIN],
        ),
    }


@dataclass(frozen=True)
class HeadView:
    """A chain's head as `tocsin audit head` prints it."""

    chain: str
    seq: int
    hash: str
    # The head's HMAC checks out under the key (False: edited, or not keyed yet).
    keyed: bool

    @property
    def anchor(self) -> Anchor:
        return Anchor(self.chain, self.seq, self.hash)


def read_heads(engine: Engine, key: bytes) -> list[HeadView]:
    keys = ChainKeys(key)
    views = []
    for chain in CHAINS:
        head = read_head(engine, chain)
        if head is None or head.seq == 0:
            views.append(HeadView(chain, 0, "0" * 64, True))
        else:
            views.append(
                HeadView(chain, head.seq, head.last_hash, head.authentic(keys.for_chain(chain)))
            )
    return views


class ChainHeadInvalid(TocsinError):
    pass


def chain_heads(engine: Engine, key: bytes) -> dict[str, str]:
    """Each chain's head as `SEQ:HASH`, for printing on reports (the paper anchor).

    Raises ChainHeadInvalid when a head does not match its key: a report must not
    print an anchor for a head that was edited or rolled back.
    """
    heads: dict[str, str] = {}
    for view in read_heads(engine, key):
        if not view.keyed:
            raise ChainHeadInvalid(
                f"the {view.chain} chain's head does not match its key: run `tocsin audit verify`",
                "chain_head_invalid",
                chain=view.chain,
            )
        heads[view.chain] = f"{view.seq}:{view.hash}"
    return heads
