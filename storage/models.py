"""SQLModel tables. Times are aware datetimes, stored and returned in UTC."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Table, UniqueConstraint, text
from sqlmodel import Field, SQLModel, col


class Contact(SQLModel, table=True):
    __tablename__ = "contact"
    __table_args__ = (
        # Covers the keyset order and every search filter, so a search that matches
        # few contacts walks the index alone instead of fetching 100k rows.
        Index("ix_contact_sort", "sort_key", "id", "search_key", "number", "erased_at"),
        Index("ix_contact_zone_sort", "zone", "sort_key", "id"),
        # Live contacts only: the quartier list (a skip from zone to zone) and the
        # base's counts are read off these alone, never off the table's rows
        # (erased_at is in them so that SQLite need not read it from the table).
        Index(
            "ix_contact_live_zone",
            "zone",
            "erased_at",
            sqlite_where=text("erased_at IS NULL"),
            postgresql_where=text("erased_at IS NULL"),
        ),
        Index(
            "ix_contact_live_sendable",
            "sendable",
            "erased_at",
            sqlite_where=text("erased_at IS NULL"),
            postgresql_where=text("erased_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    # E.164; NULL once erased. Unique so one number is one contact.
    number: str | None = Field(default=None, unique=True, max_length=20)
    # phonenumbers' type name (mobile, fixed_line, fixed_line_or_mobile, voip, ...)
    number_kind: str = Field(default="unknown", max_length=32)
    sendable: bool = Field(default=False, index=True)
    name: str = Field(default="", max_length=200)
    zone: str = Field(default="", max_length=100)
    # Groups are kept denormalised as ",a,b," for display and in ContactGroup for filters.
    groups: str = Field(default="", max_length=500)
    notes: str = Field(default="", max_length=2000)
    source: str = Field(default="", max_length=100)
    # Lower-case, accent-free name for ordering; name and zone folded for search.
    sort_key: str = Field(default="", max_length=200)
    search_key: str = Field(default="", max_length=320)
    created_at: datetime
    updated_at: datetime
    erased_at: datetime | None = Field(default=None)


class ContactGroup(SQLModel, table=True):
    __tablename__ = "contact_group"
    __table_args__ = (Index("ix_contact_group_name", "name", "contact_id"),)

    contact_id: int = Field(foreign_key="contact.id", primary_key=True, ondelete="CASCADE")
    name: str = Field(primary_key=True, max_length=100)


class Topic(SQLModel, table=True):
    __tablename__ = "topic"

    key: str = Field(primary_key=True, max_length=50)
    label: str = Field(max_length=200)
    # "public_safety" (no opt-in needed, opt-out honoured) or "consent".
    legal_basis: str = Field(max_length=32)


class ConsentEvent(SQLModel, table=True):
    """Append-only and hash-chained: never updated, never deleted."""

    __tablename__ = "consent_event"

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(unique=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    topic: str = Field(max_length=50)
    action: str = Field(max_length=10)  # grant | withdraw
    source: str = Field(max_length=32)
    proof_ref: str = Field(default="", max_length=500)
    text_version: str = Field(default="", max_length=50)
    operator: str = Field(max_length=100)
    occurred_at: datetime
    recorded_at: datetime
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


# The point-in-time replay (console.consent.replay) ranks each resident's events per
# topic, latest occurred first, straight off this index: no sort of a million events.
Index(
    "ix_consent_event_replay",
    col(ConsentEvent.contact_id),
    col(ConsentEvent.topic),
    col(ConsentEvent.occurred_at).desc(),
    col(ConsentEvent.seq).desc(),
    col(ConsentEvent.recorded_at),
    col(ConsentEvent.action),
)


class ConsentState(SQLModel, table=True):
    """Current consent per contact and topic, derived from ConsentEvent."""

    __tablename__ = "consent_state"
    __table_args__ = (Index("ix_consent_state_topic", "topic", "granted", "contact_id"),)

    contact_id: int = Field(foreign_key="contact.id", primary_key=True, ondelete="CASCADE")
    topic: str = Field(primary_key=True, max_length=50)
    granted: bool
    event_id: int
    updated_at: datetime


class Suppression(SQLModel, table=True):
    """Numbers that said STOP, kept only as a keyed hash; survives erasure."""

    __tablename__ = "suppression"

    number_hash: str = Field(primary_key=True, max_length=64)
    # Indexed: an enqueue tops its copy of the list up with the entries since its last read.
    created_at: datetime = Field(index=True)
    reason: str = Field(default="", max_length=100)


class AuditEntry(SQLModel, table=True):
    """Append-only and hash-chained record of every change and send."""

    __tablename__ = "audit_entry"

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(unique=True)
    at: datetime
    operator: str = Field(max_length=100)
    action: str = Field(max_length=64)
    target: str = Field(default="", max_length=200)
    details: str = Field(default="{}")
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class ChainHead(SQLModel, table=True):
    """Serialises appends to a hash chain: a writer updates this row first.

    Its own HMAC (`mac`, over the name, seq, last hash and `keyed_from`) makes a head
    rolled back over a cut tail detectable without the key."""

    __tablename__ = "chain_head"

    name: str = Field(primary_key=True, max_length=32)
    seq: int = Field(default=0)
    last_hash: str = Field(default="", max_length=64)
    # The first entry linked by HMAC; the ones before it (chains started before
    # migration 0008) carry a plain SHA-256 link until `tocsin audit rekey`.
    keyed_from: int = Field(default=1)
    mac: str = Field(default="", max_length=64)


class Meta(SQLModel, table=True):
    __tablename__ = "meta"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(default="")


class Campaign(SQLModel, table=True):
    """One send: a text to an audience, for one topic."""

    __tablename__ = "campaign"

    id: int | None = Field(default=None, primary_key=True)
    topic: str = Field(foreign_key="topic.key", max_length=50)
    text: str
    sender_id: str = Field(max_length=11)
    kind: str = Field(max_length=16)  # emergency | planned
    priority: int = Field(default=0)
    # JSON: {"all": bool, "zones": [...], "groups": [...], "numbers": [...]}
    audience: str = Field(default="{}")
    status: str = Field(default="queued", max_length=16, index=True)
    # Why it is paused or stopped (a provider refusing our credentials...).
    status_reason: str = Field(default="", max_length=500)
    created_by: str = Field(max_length=100)
    created_at: datetime
    start_at: datetime
    # Emergency campaigns re-send uncertain messages; others hold them for the operator.
    resend_uncertain: bool = Field(default=False)
    # False while an emergency is still being enqueued in chunks: the worker sends the
    # first chunk at once and completes the rest if the console died half-way.
    enqueued: bool = Field(default=True)
    # A planned occurrence's campaign: its schedule, the end of the slot it may send
    # in (the claim never takes its messages after it; the scheduler moves it to the
    # next allowed slot's end) and the time after which it is never sent.
    schedule_id: int | None = Field(default=None, index=True)
    send_until: datetime | None = Field(default=None)
    valid_until: datetime | None = Field(default=None)


class Message(SQLModel, table=True):
    """One row per recipient of a campaign; its state only moves forward."""

    __tablename__ = "message"
    __table_args__ = (
        UniqueConstraint("campaign_id", "number", name="uq_message_campaign_number"),
        # One campaign's due messages in order (the claim, console.sending.queue), and
        # the counts per (campaign, state).
        Index("ix_message_campaign_state", "campaign_id", "state", "next_attempt_at", "id"),
        # A campaign's pages in id order, without sorting the campaign.
        Index("ix_message_campaign_id", "campaign_id", "id"),
        # Reports from providers that do not echo our id are matched on their ref.
        Index("ix_message_provider_ref", "provider_ref"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    contact_id: int | None = Field(default=None, foreign_key="contact.id")
    # E.164 at enqueue time; empty for a skipped contact without a usable number.
    number: str = Field(max_length=20)
    state: str = Field(max_length=16)
    reason: str = Field(default="", max_length=500)
    priority: int = Field(default=0)
    attempts: int = Field(default=0)
    next_attempt_at: datetime
    lease_owner: str = Field(default="", max_length=100)
    lease_expires_at: datetime | None = Field(default=None)
    provider_ref: str = Field(default="", max_length=100)
    updated_at: datetime


# The claim order, emergencies first then the oldest due, read straight off the index:
# with `priority` ascending, SQLite sorted every queued message on each claim (80 ms
# a claim with 50,000 queued).
Index(
    "ix_message_claim",
    col(Message.state),
    col(Message.priority).desc(),
    col(Message.next_attempt_at),
    col(Message.id),
)


class CampaignTally(SQLModel, table=True):
    """Messages per campaign and state, kept by triggers on `message` (migration 0012)
    in the same transaction as each change: the sum of a (campaign, state)'s rows is
    its count. SQLite keeps one row each; PostgreSQL appends deltas that the worker
    folds (console.sending.tallies). Derived data: a backup leaves it out, and the
    triggers rebuild it as a restore loads the messages."""

    __tablename__ = "campaign_tally"
    __table_args__ = (Index("ix_campaign_tally", "campaign_id", "state"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int
    state: str = Field(max_length=16)
    n: int


class DeliveryEvent(SQLModel, table=True):
    """Every answer and report about a message, applied or not: the proof of what
    happened to it."""

    __tablename__ = "delivery_event"
    # The live queue's rate and sparkline count recent send answers.
    __table_args__ = (Index("ix_delivery_event_source_at", "source", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="message.id", index=True)
    # The state it reports, and whether it moved the message (a late or repeated
    # report does not).
    state: str = Field(max_length=16)
    applied: bool
    source: str = Field(max_length=32)  # send | report | lease | operator
    detail: str = Field(default="", max_length=500)
    at: datetime


class WorkerHeartbeat(SQLModel, table=True):
    __tablename__ = "worker_heartbeat"

    owner: str = Field(primary_key=True, max_length=100)
    host: str = Field(max_length=100)
    pid: int
    provider: str = Field(max_length=32)
    started_at: datetime
    last_seen: datetime
    sent: int = Field(default=0)


class SenderLease(SQLModel, table=True):
    """On SQLite exactly one worker sends: it holds this row and renews it."""

    __tablename__ = "sender_lease"

    name: str = Field(primary_key=True, max_length=32)
    owner: str = Field(max_length=100)
    expires_at: datetime


class Event(SQLModel, table=True):
    """Something happening in town that planned sends remind residents of."""

    __tablename__ = "event"

    id: int | None = Field(default=None, primary_key=True)
    # The agenda's UID for an imported event (a re-import updates, never doubles).
    uid: str | None = Field(default=None, unique=True, max_length=500)
    name: str = Field(max_length=300)
    place: str = Field(default="", max_length=300)
    topic: str = Field(foreign_key="topic.key", max_length=50)
    # Audience JSON, as Campaign.audience.
    audience: str = Field(default="{}")
    starts_at: datetime = Field(index=True)
    status: str = Field(default="active", max_length=16)  # active | cancelled
    source: str = Field(default="", max_length=100)
    created_by: str = Field(max_length=100)
    created_at: datetime
    updated_at: datetime


class Schedule(SQLModel, table=True):
    """A planned send: once, recurring (cron) or a reminder of an event."""

    __tablename__ = "schedule"
    __table_args__ = (Index("ix_schedule_due", "status", "next_due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)  # once | cron | reminder
    topic: str = Field(foreign_key="topic.key", max_length=50)
    text: str
    sender_id: str = Field(max_length=11)
    audience: str = Field(default="{}")
    # once: the local date-time ("2026-03-14T12:15"); cron: the expression, in the
    # town's time zone, between the local dates first_day and last_day ("" = open).
    at_local: str = Field(default="", max_length=16)
    cron: str = Field(default="", max_length=100)
    first_day: str = Field(default="", max_length=10)
    last_day: str = Field(default="", max_length=10)
    event_id: int | None = Field(default=None, foreign_key="event.id", index=True)
    offset_days: int = Field(default=0)
    valid_until: datetime | None = Field(default=None)
    justification: str = Field(default="", max_length=1000)
    status: str = Field(default="active", max_length=16)  # active | done | cancelled
    # The next occurrence's time once moved to an allowed slot (UTC); NULL: none left.
    next_due_at: datetime | None = Field(default=None)
    # The last occurrence handled, by its local date-time key.
    cursor_local: str = Field(default="", max_length=16)
    created_by: str = Field(max_length=100)
    created_at: datetime
    updated_at: datetime


class Occurrence(SQLModel, table=True):
    """What became of one occurrence of a schedule. (schedule, local date-time) is
    unique: an occurrence fires once whatever the DST, restarts or workers."""

    __tablename__ = "occurrence"
    __table_args__ = (
        UniqueConstraint("schedule_id", "local_key", name="uq_occurrence_schedule_local"),
    )

    id: int | None = Field(default=None, primary_key=True)
    schedule_id: int = Field(foreign_key="schedule.id")
    local_key: str = Field(max_length=16)
    due_at: datetime
    # sent (a campaign was made) | missed (late beyond grace, waits for the operator)
    # | dropped | blocked (past its valid-until, or a rule holds it) | cancelled
    state: str = Field(max_length=16, index=True)
    reason: str = Field(default="", max_length=200)
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id")
    # Residents the fatigue cap held back when it was sent (the calendar's load).
    capped: int = Field(default=0)
    recorded_at: datetime


class InboundMessage(SQLModel, table=True):
    """An SMS a resident sent us: the proof behind a STOP, a keyword opt-in, or a
    reply an operator classifies. Erasure blanks its number and text."""

    __tablename__ = "inbound_message"
    __table_args__ = (Index("ix_inbound_message_review", "status", "received_at"),)

    id: int | None = Field(default=None, primary_key=True)
    received_at: datetime
    provider: str = Field(max_length=32)
    provider_ref: str = Field(default="", max_length=100)
    contact_id: int | None = Field(default=None, foreign_key="contact.id", index=True)
    # E.164 as received ("" when unparsable or erased).
    number: str = Field(default="", max_length=20)
    text: str = Field(default="", max_length=2000)
    # stop | keyword | reply
    kind: str = Field(max_length=16)
    # done (handled automatically), pending (waits for an operator), classified
    status: str = Field(max_length=16)
    # JSON: {"withdraw": [...topics...]} once classified; the keyword's topic.
    decision: str = Field(default="{}", max_length=500)
    classified_by: str = Field(default="", max_length=100)
    classified_at: datetime | None = Field(default=None)


class ContactList(SQLModel, table=True):
    """A rented or third-party list's provenance, recorded before its rows import."""

    __tablename__ = "contact_list"

    name: str = Field(primary_key=True, max_length=64)
    provider: str = Field(max_length=200)
    contract_ref: str = Field(max_length=200)
    # When the residents on it consented (the provider's word), in UTC.
    consented_at: datetime
    wording: str = Field(max_length=2000)
    # Comma separated topic keys the consent covers.
    topics: str = Field(max_length=500)
    proof_file: str = Field(default="", max_length=300)
    proof_sha256: str = Field(max_length=64)
    expiry_months: int
    created_by: str = Field(max_length=100)
    created_at: datetime


def _table(model: type[SQLModel]) -> Table:
    return SQLModel.metadata.tables[str(model.__tablename__)]


# The Core tables, for queries built column by column: to mypy a model's attributes
# are the Python values (`Message.state: str`), a table's columns are SQL expressions
# (`message_table.c.state`), so these need no `Any` alias and no `col()` at each use.
contact_table: Table = _table(Contact)
consent_event_table: Table = _table(ConsentEvent)
consent_state_table: Table = _table(ConsentState)
campaign_table: Table = _table(Campaign)
message_table: Table = _table(Message)
campaign_tally_table: Table = _table(CampaignTally)
delivery_event_table: Table = _table(DeliveryEvent)
contact_group_table: Table = _table(ContactGroup)
suppression_table: Table = _table(Suppression)
inbound_message_table: Table = _table(InboundMessage)
contact_list_table: Table = _table(ContactList)
