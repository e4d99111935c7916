"""The audit trail: one hash-chained entry per change or send, naming the operator.

Entries name contacts by id only, so erasing a resident never has to touch the
append-only trail.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session

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


def _rows(
    engine: Engine, model: Any, fields: Any
) -> Iterator[tuple[int, str, str, dict[str, Any]]]:
    last = 0
    while True:
        with Session(engine) as session:
            batch = (
                session.execute(
                    select(model).where(model.seq > last).order_by(model.seq).limit(5000)
                )
                .scalars()
                .all()
            )
        if not batch:
            return
        for row in batch:
            yield row.seq, row.prev_hash, row.hash, fields(row)
        last = batch[-1].seq


def verify_chains(engine: Engine) -> dict[str, tuple[int, list[ChainProblem]]]:
    """Check both chains from their first row; returns (count, problems) per chain."""
    results: dict[str, tuple[int, list[ChainProblem]]] = {}
    for chain, model, fields in (
        (AUDIT_CHAIN, AuditEntry, audit_fields),
        (CONSENT_CHAIN, ConsentEvent, consent_fields),
    ):
        count, problems = verify_links(_rows(engine, model, fields))
        with Session(engine) as session:
            head = session.get(ChainHead, chain)
        head_seq = head.seq if head else 0
        if head_seq != count:
            # Rows cut from the end leave a chain that checks out on its own.
            problems.append(ChainProblem(head_seq, f"head says {head_seq} entries, found {count}"))
        results[chain] = (count, problems)
    return results
