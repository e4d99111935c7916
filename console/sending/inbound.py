"""Inbound SMS: a STOP withdraws consent and puts the number on the suppression list;
a topic's keyword ("OUI TRAVAUX") records an opt-in; anything else waits in the
review queue for an operator (console.consent.review). Every inbound is kept as the
proof of what it decided.

Residents write STOP every way: "STOP", "stop", "Stop infos", "STOP ÉVÉNEMENTS",
"stop." — the keyword is matched on the folded first word, and a second word naming
a topic (its key or label) narrows the withdrawal to that topic.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from sqlmodel import col, select

from console.audit import append_audit
from console.consent.keywords import match_keyword
from console.consent.ledger import ConsentRequest, append_consent
from console.consent.suppression import number_hash
from console.contacts.numbers import InvalidNumber
from console.context import Context
from console.sending.providers.base import InboundSms
from console.text import fold
from storage.engine import write_session
from storage.models import Contact, InboundMessage, Suppression

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
    # The topic a keyword opted in to ("" when none), and the inbound's row.
    keyword: str = ""
    inbound_id: int | None = None
    review: bool = False


def _inbound_row(
    ctx: Context, sms: InboundSms, provider: str, number: str, contact_id: int | None, kind: str
) -> InboundMessage:
    return InboundMessage(
        received_at=ctx.clock.now(),
        provider=provider[:32],
        provider_ref=sms.provider_ref[:100],
        contact_id=contact_id,
        number=number,
        text=sms.text[:2000],
        kind=kind,
        status="pending" if kind == "reply" else "done",
    )


def handle_inbound(ctx: Context, sms: InboundSms, provider: str) -> InboundOutcome:
    """Record a STOP or a keyword opt-in; queue anything else for review."""
    outcome = _handle(ctx, sms, provider)
    if outcome.keyword and ctx.config.consent.confirm_keyword and outcome.contact_id:
        _confirm(ctx, outcome.keyword, sms, provider)
    return outcome


def _confirm(ctx: Context, topic: str, sms: InboundSms, provider: str) -> None:
    """The confirmation goes through the send ledger like any message (consent and
    calendar rules included): a campaign of one."""
    from console.sending.campaigns import Audience, CampaignError, CampaignRequest, create_campaign

    label = ctx.config.topics[topic].label
    text = ctx.config.consent.confirmation_text.replace("{sujet}", label)
    try:
        number = ctx.parser.parse(sms.sender).e164
        create_campaign(
            ctx,
            CampaignRequest(
                topic=topic,
                text=text,
                sender_id=ctx.config.town.sender_id,
                audience=Audience(numbers=(number,)),
            ),
        )
    except (CampaignError, InvalidNumber):
        # The consent stands; a confirmation that cannot be queued is not worth
        # refusing the provider's callback over.
        return


def _handle(ctx: Context, sms: InboundSms, provider: str) -> InboundOutcome:
    request = parse_stop(ctx, sms.text)
    keyword = match_keyword(ctx.config, sms.text) if request is None else None
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
        if keyword is not None and contact is None and number:
            # A newcomer opting in by SMS becomes a contact with only their number.
            parsed = ctx.parser.parse(number)
            contact = Contact(
                number=parsed.e164,
                number_kind=parsed.kind,
                sendable=parsed.sendable,
                source="sms_keyword",
                created_at=now,
                updated_at=now,
            )
            session.add(contact)
            session.flush()
        contact_id = contact.id if contact is not None else None
        if request is None:
            kind = "keyword" if keyword is not None and contact_id else "reply"
            row = _inbound_row(ctx, sms, provider, number, contact_id, kind)
            if kind == "keyword":
                row.decision = json.dumps({"grant": [keyword]})
            session.add(row)
            session.flush()
            details: dict[str, object] = {"inbound": row.id}
            if keyword is not None and kind == "keyword" and contact_id is not None:
                event = append_consent(
                    session,
                    ctx,
                    ConsentRequest(
                        contact_id=contact_id,
                        topic=keyword,
                        action="grant",
                        source="sms_keyword",
                        proof_ref=f"inbound:{row.id}",
                    ),
                    operator=actor,
                )
                details |= {"topic": keyword, "consent_seq": event.seq}
            append_audit(
                session,
                at=now,
                operator=actor,
                action="inbound.keyword" if kind == "keyword" else "inbound.other",
                target=f"contact:{contact_id}" if contact_id else "unknown",
                details=details,
            )
            if kind == "keyword":
                assert keyword is not None
                return InboundOutcome(False, contact_id, (keyword,), keyword, row.id)
            return InboundOutcome(False, contact_id, (), "", row.id, review=True)
        row = _inbound_row(ctx, sms, provider, number, contact_id, "stop")
        session.add(row)
        session.flush()
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
                        source="sms_stop",
                        proof_ref=f"inbound:{row.id}:{provider}:{proof}"[:500],
                    ),
                    operator=actor,
                )
        row.decision = json.dumps({"withdraw": list(topics)})
        details = {
            "inbound": row.id,
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
    return InboundOutcome(True, contact_id, topics, "", row.id)
