"""Replies to review: inbound SMS that are neither a clear STOP nor a keyword
("arrêtez svp", "Merci, stop", "S T O P"). An operator classifies each: withdraw
some topics (every topic also puts the number on the suppression list, as a STOP
does), or nothing. The message is the proof of the withdrawal."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select

from console.audit import append_audit
from console.consent.ledger import ConsentError, ConsentRequest, append_consent
from console.consent.suppression import number_hash
from console.context import Context
from console.roles import Role
from storage.engine import read_session, write_session
from storage.models import Contact, InboundMessage, Suppression


@dataclass(frozen=True)
class Reply:
    id: int
    received_at: datetime
    contact_id: int | None
    name: str
    number: str
    text: str
    status: str
    decision: dict[str, list[str]]
    classified_by: str


def _reply(row: InboundMessage, name: str) -> Reply:
    assert row.id is not None
    try:
        decision = json.loads(row.decision or "{}")
    except ValueError:
        decision = {}
    return Reply(
        row.id,
        row.received_at,
        row.contact_id,
        name,
        row.number,
        row.text,
        row.status,
        decision if isinstance(decision, dict) else {},
        row.classified_by,
    )


def pending_count(ctx: Context) -> int:
    with read_session(ctx.engine) as session:
        return int(
            session.execute(
                select(func.count())
                .select_from(InboundMessage)
                .where(col(InboundMessage.status) == "pending")
            ).scalar_one()
        )


def replies(
    ctx: Context, *, pending_only: bool = True, limit: int = 100, before_id: int | None = None
) -> list[Reply]:
    """Oldest pending first (the queue), or every reply newest first."""
    query = select(InboundMessage, Contact.name).outerjoin(
        Contact, col(Contact.id) == col(InboundMessage.contact_id)
    )
    if pending_only:
        query = query.where(col(InboundMessage.status) == "pending").order_by(
            col(InboundMessage.received_at), col(InboundMessage.id)
        )
    else:
        query = query.where(col(InboundMessage.kind) == "reply").order_by(
            col(InboundMessage.id).desc()
        )
        if before_id is not None:
            query = query.where(col(InboundMessage.id) < before_id)
    with read_session(ctx.engine) as session:
        rows = session.execute(query.limit(limit)).all()
    return [_reply(row, name or "") for row, name in rows]


class ReviewError(ConsentError):
    pass


def classify(ctx: Context, inbound_id: int, withdraw: Sequence[str]) -> Reply:
    """Withdraw `withdraw` (topic keys; empty: nothing) for the reply's sender."""
    ctx.require(Role.OPERATOR)
    topics = tuple(dict.fromkeys(withdraw))
    for topic in topics:
        if topic not in ctx.config.topics:
            raise ReviewError(
                f"unknown topic {topic!r} (known: {', '.join(ctx.topics)})",
                "consent_topic",
                topic=topic,
            )
    now = ctx.clock.now()
    with write_session(ctx.engine) as session:
        row = session.get(InboundMessage, inbound_id)
        if row is None or row.kind != "reply":
            raise ReviewError(f"no reply #{inbound_id} to review", "review_missing", id=inbound_id)
        if row.status != "pending":
            raise ReviewError(
                f"reply #{inbound_id} was already classified by {row.classified_by}",
                "review_done",
                id=inbound_id,
                operator=row.classified_by,
            )
        contact = session.get(Contact, row.contact_id) if row.contact_id else None
        live = contact is not None and contact.erased_at is None
        seqs: list[int] = []
        if live and row.contact_id is not None:
            for topic in topics:
                event = append_consent(
                    session,
                    ctx,
                    ConsentRequest(
                        contact_id=row.contact_id,
                        topic=topic,
                        action="withdraw",
                        source="operator",
                        proof_ref=f"inbound:{inbound_id}",
                    ),
                )
                seqs.append(event.seq)
        everything = bool(topics) and set(topics) == set(ctx.config.topics)
        details: dict[str, object] = {
            "inbound": inbound_id,
            "topics": list(topics),
            "consent_seqs": seqs,
            "suppressed": False,
        }
        if everything and row.number:
            digest = number_hash(ctx.hash_key, row.number)
            if session.get(Suppression, digest) is None:
                session.add(Suppression(number_hash=digest, created_at=now, reason="review"))
            # `audit verify` re-derives the suppression list from these details.
            details |= {"suppressed": True, "number_hash": digest}
        row.status = "classified"
        row.decision = json.dumps({"withdraw": list(topics)})
        row.classified_by = ctx.operator[:100]
        row.classified_at = now
        session.add(row)
        append_audit(
            session,
            at=now,
            operator=ctx.operator,
            action="inbound.stop" if everything else "inbound.review",
            target=f"contact:{row.contact_id}" if row.contact_id else "unknown",
            details=details,
        )
        name = contact.name if contact is not None else ""
        return _reply(row, name)
