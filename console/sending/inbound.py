"""Inbound SMS: a STOP withdraws consent and puts the number on the suppression list.

Residents write STOP every way: "STOP", "stop", "Stop infos", "STOP ÉVÉNEMENTS",
"stop." — the keyword is matched on the folded first word, and a second word naming
a topic (its key or label) narrows the withdrawal to that topic.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from sqlmodel import col, select

from console.audit import append_audit
from console.consent.ledger import ConsentRequest, append_consent
from console.consent.suppression import number_hash
from console.contacts.numbers import InvalidNumber
from console.context import Context
from console.sending.providers.base import InboundSms
from console.text import fold
from storage.engine import write_session
from storage.models import Contact, Suppression

STOP_WORDS = frozenset({"stop", "arret", "arreter", "stopper", "desabonner", "unsubscribe"})
_WORDS = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class StopRequest:
    topics: tuple[str, ...]  # empty: every topic
    everything: bool


def parse_stop(ctx: Context, text: str) -> StopRequest | None:
    words = _WORDS.findall(fold(text))
    if not words or words[0] not in STOP_WORDS:
        return None
    names = {fold(key): key for key in ctx.config.topics}
    names |= {fold(topic.label): key for key, topic in ctx.config.topics.items()}
    named = tuple(dict.fromkeys(names[w] for w in words[1:] if w in names))
    return StopRequest(topics=named, everything=not named)


@dataclass(frozen=True)
class InboundOutcome:
    stop: bool
    contact_id: int | None
    topics: tuple[str, ...]


def handle_inbound(ctx: Context, sms: InboundSms, provider: str) -> InboundOutcome:
    """Record a STOP; anything else is only acknowledged (and audited as received)."""
    request = parse_stop(ctx, sms.text)
    now = ctx.clock.now()
    try:
        number = ctx.parser.parse(sms.sender).e164
    except InvalidNumber:
        number = ""
    # The proof names the inbound message without keeping its text or number.
    proof = (
        sms.provider_ref
        or hashlib.sha256(
            f"{provider}:{sms.sender}:{sms.text}:{now.isoformat()}".encode()
        ).hexdigest()[:24]
    )
    # The consent ledger and the audit trail name the same actor: the SMS.
    actor = f"sms:{provider}"
    with write_session(ctx.engine) as session:
        contact = (
            session.execute(
                select(Contact).where(col(Contact.number) == number)
            ).scalar_one_or_none()
            if number
            else None
        )
        contact_id = contact.id if contact is not None else None
        if request is None:
            append_audit(
                session,
                at=now,
                operator=actor,
                action="inbound.other",
                target=f"contact:{contact_id}" if contact_id else "unknown",
            )
            return InboundOutcome(False, contact_id, ())
        topics = request.topics or tuple(ctx.config.topics)
        if contact_id is not None:
            for topic in topics:
                append_consent(
                    session,
                    ctx,
                    ConsentRequest(
                        contact_id=contact_id,
                        topic=topic,
                        action="withdraw",
                        source="sms_keyword",
                        proof_ref=f"inbound:{provider}:{proof}",
                    ),
                    operator=actor,
                )
        details: dict[str, object] = {
            "topics": list(topics),
            "suppressed": request.everything,
            "proof": proof,
        }
        if request.everything and number:
            digest = number_hash(ctx.hash_key, number)
            if session.get(Suppression, digest) is None:
                session.add(Suppression(number_hash=digest, created_at=now, reason="STOP"))
            # The keyed hash, never the number: `audit verify` re-derives the
            # suppression list from these entries.
            details["number_hash"] = digest
        append_audit(
            session,
            at=now,
            operator=actor,
            action="inbound.stop",
            target=f"contact:{contact_id}" if contact_id else "unknown",
            details=details,
        )
    return InboundOutcome(True, contact_id, topics)
