"""The audit trail: one hash-chained entry per change or send, naming the operator.

Entries name contacts by id only, so erasing a resident never has to touch the
append-only trail.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from storage.chain import ChainProblem, commit_link, link_hash, reserve_link, verify_links
from storage.models import AuditEntry, ChainHead, ConsentEvent

AUDIT_CHAIN = "audit"
CONSENT_CHAIN = "consent"


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
    entry.hash = link_hash(link.prev_hash, audit_fields(entry))
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


def _head_seq(engine: Engine, chain: str) -> int:
    with Session(engine) as session:
        head = session.get(ChainHead, chain)
        return head.seq if head else 0


def _verify(
    engine: Engine,
    chain: str,
    model: type[_Chained],
    fields: Callable[[_Chained], dict[str, Any]],
) -> tuple[int, list[ChainProblem]]:
    # The head is read first and the rows up to it are checked: entries appended
    # while we read (the worker keeps auditing) are left for the next run.
    head_seq = _head_seq(engine, chain)
    count, problems = verify_links(_rows(engine, model, fields, head_seq))
    if head_seq != count:
        # Rows cut from the end leave a chain that checks out on its own.
        problems.append(ChainProblem(head_seq, f"head says {head_seq} entries, found {count}"))
    # Rows slipped in past the head. The highest seq is read before the head:
    # an append commits its row and the head together, so a live append cannot
    # make this fire.
    with Session(engine) as session:
        last_seq = session.execute(select(func.max(col(model.seq)))).scalar_one()
    if last_seq is not None and last_seq > _head_seq(engine, chain):
        problems.append(ChainProblem(last_seq, "entry beyond the chain head"))
    return count, problems


def verify_chains(engine: Engine) -> dict[str, tuple[int, list[ChainProblem]]]:
    """Check both chains from their first row; returns (count, problems) per chain."""
    return {
        AUDIT_CHAIN: _verify(engine, AUDIT_CHAIN, AuditEntry, audit_fields),
        CONSENT_CHAIN: _verify(engine, CONSENT_CHAIN, ConsentEvent, consent_fields),
    }
