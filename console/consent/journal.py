"""The consent journal (every decision, newest first, filterable) and one resident's
history: their decisions per topic with proofs, and the messages sent to them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from console.context import Context
from storage.engine import read_session
from storage.models import (
    ConsentEvent,
    Contact,
    InboundMessage,
    campaign_table,
    consent_event_table,
    contact_table,
    inbound_message_table,
    message_table,
)


@dataclass(frozen=True)
class JournalFilter:
    topic: str | None = None
    source: str | None = None
    # Occurred on or after `since` and before `until` (UTC instants).
    since: datetime | None = None
    until: datetime | None = None
    contact_id: int | None = None


@dataclass(frozen=True)
class JournalLine:
    seq: int
    occurred_at: datetime
    recorded_at: datetime
    contact_id: int
    name: str
    erased: bool
    topic: str
    action: str
    source: str
    proof_ref: str
    text_version: str
    operator: str

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "occurred_at": self.occurred_at.isoformat(),
            "recorded_at": self.recorded_at.isoformat(),
            "contact_id": self.contact_id,
            "topic": self.topic,
            "action": self.action,
            "source": self.source,
            "proof_ref": self.proof_ref,
            "text_version": self.text_version,
            "operator": self.operator,
        }


def _filtered(query: Any, where: JournalFilter) -> Any:
    event = consent_event_table
    if where.topic:
        query = query.where(event.c.topic == where.topic)
    if where.source:
        query = query.where(event.c.source == where.source)
    if where.since is not None:
        query = query.where(event.c.occurred_at >= where.since)
    if where.until is not None:
        query = query.where(event.c.occurred_at < where.until)
    if where.contact_id is not None:
        query = query.where(event.c.contact_id == where.contact_id)
    return query


def journal(
    ctx: Context,
    where: JournalFilter | None = None,
    *,
    before_seq: int | None = None,
    limit: int = 100,
    newest_first: bool = True,
) -> list[JournalLine]:
    """A page of the journal, keyed on the chain's seq (newest first by default)."""
    event = consent_event_table
    contact = contact_table
    # The ORM entity, filtered and ordered on its table's columns (the same columns).
    query = select(ConsentEvent, contact.c.name, contact.c.erased_at).join(
        contact, contact.c.id == event.c.contact_id
    )
    query = _filtered(query, where or JournalFilter())
    if before_seq is not None:
        query = query.where(event.c.seq < before_seq if newest_first else event.c.seq > before_seq)
    query = query.order_by(event.c.seq.desc() if newest_first else event.c.seq).limit(limit)
    with read_session(ctx.engine) as session:
        rows = session.execute(query).all()
    return [_line(row, name, erased) for row, name, erased in rows]


def _line(event: ConsentEvent, name: str, erased: datetime | None) -> JournalLine:
    return JournalLine(
        event.seq,
        event.occurred_at,
        event.recorded_at,
        event.contact_id,
        name or "",
        erased is not None,
        event.topic,
        event.action,
        event.source,
        event.proof_ref,
        event.text_version,
        event.operator,
    )


@dataclass(frozen=True)
class SentMessage:
    id: int
    campaign_id: int
    topic: str
    created_at: datetime
    updated_at: datetime
    state: str
    reason: str
    text: str


@dataclass(frozen=True)
class History:
    contact: Contact
    decisions: list[JournalLine]
    messages: list[SentMessage]
    inbound: list[InboundMessage]


class NoSuchContact(Exception):
    pass


def resident_history(ctx: Context, contact_id: int, *, message_limit: int = 500) -> History:
    """Everything about one resident's consent (oldest decision first), the messages
    sent to them (newest first, up to `message_limit`) and what they wrote to us."""
    message = message_table
    campaign = campaign_table
    inbound = inbound_message_table
    with read_session(ctx.engine) as session:
        contact = session.get(Contact, contact_id)
        if contact is None:
            raise NoSuchContact(contact_id)
        session.expunge(contact)
        rows = session.execute(
            select(
                message.c.id,
                message.c.campaign_id,
                campaign.c.topic,
                campaign.c.created_at,
                message.c.updated_at,
                message.c.state,
                message.c.reason,
                campaign.c.text,
            )
            .join(campaign, campaign.c.id == message.c.campaign_id)
            .where(message.c.contact_id == contact_id)
            .order_by(message.c.id.desc())
            .limit(message_limit)
        ).all()
        received = list(
            session.execute(
                select(InboundMessage)
                .where(inbound.c.contact_id == contact_id)
                .order_by(inbound.c.id)
            ).scalars()
        )
        for row in received:
            session.expunge(row)
    decisions = journal(
        ctx, JournalFilter(contact_id=contact_id), limit=100_000, newest_first=False
    )
    messages = [SentMessage(*row) for row in rows]
    return History(contact, decisions, messages, received)


class FilterError(ValueError):
    pass


def parse_day(text: str, timezone: str) -> datetime:
    """DD/MM/YYYY (or ISO YYYY-MM-DD): that day's midnight in the town, in UTC."""
    from datetime import UTC
    from zoneinfo import ZoneInfo

    text = text.strip()
    for fmt in ("%d/%m/%Y", "%Y-%m-%d", "%d/%m/%y"):
        try:
            day = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return day.replace(tzinfo=ZoneInfo(timezone)).astimezone(UTC)
    raise FilterError(text)


_KEYS = {
    "theme": "topic",
    "topic": "topic",
    "origine": "source",
    "source": "source",
    "du": "since",
    "from": "since",
    "depuis": "since",
    "since": "since",
    "au": "until",
    "to": "until",
    "until": "until",
}


def parse_filter(ctx: Context, text: str) -> JournalFilter:
    """`thème=infos origine=sms_stop du=01/09/2026 au=30/09/2026` (or topic= source=
    from= to=), each optional; topics and sources by key or label, accents and case
    ignored. `au` includes that whole day."""
    from datetime import timedelta

    from console.consent.ledger import SOURCES
    from console.i18n import Translator
    from console.text import fold

    t = Translator(ctx.config.console.language)
    topics = {fold(k): k for k in ctx.config.topics}
    topics |= {fold(v.label): k for k, v in ctx.config.topics.items()}
    sources = {fold(s): s for s in SOURCES} | {fold(t(f"source.{s}")): s for s in SOURCES}
    values: dict[str, Any] = {}
    for part in text.split():
        name, sep, value = part.partition("=")
        key = _KEYS.get(fold(name))
        if not sep or key is None or not value:
            raise FilterError(part)
        value = value.replace("_", " ") if key in ("topic", "source") else value
        found: object
        if key == "topic":
            found = topics.get(fold(value))
        elif key == "source":
            found = sources.get(fold(value)) or sources.get(fold(value).replace(" ", "_"))
        else:
            day = parse_day(value, ctx.config.town.timezone)
            found = day + timedelta(days=1) if key == "until" else day
        if found is None:
            raise FilterError(part)
        values[key] = found
    return JournalFilter(**values)
