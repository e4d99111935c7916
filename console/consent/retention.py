"""Retention: nobody is kept longer than needed (RGPD art. 5(1)(e)).

Each topic keeps a resident `retention_months` (default 36) after their last
interaction: a consent decision, an SMS they sent, an edit of their record. A
resident's period is the longest among the topics that may still reach them (the
ones they consented to, and public-safety topics unless they opted out); with none,
the shortest of all. Due residents are erased through the RGPD erasure path (their
STOP kept as a keyed hash), each audit entry naming "retention"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from console.consent.ledger import may_receive
from console.consent.lists import add_months
from console.context import Context
from console.roles import Role
from storage.engine import read_session
from storage.models import (
    consent_event_table,
    consent_state_table,
    contact_table,
    inbound_message_table,
)


@dataclass(frozen=True)
class DueResident:
    contact_id: int
    name: str
    zone: str
    last_interaction: datetime
    due_at: datetime
    months: int

    def to_json(self) -> dict[str, Any]:
        return {
            "contact_id": self.contact_id,
            "name": self.name,
            "zone": self.zone,
            "last_interaction": self.last_interaction.isoformat(),
            "due_at": self.due_at.isoformat(),
            "retention_months": self.months,
        }


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _month_end(ctx: Context, now: datetime) -> datetime:
    local = now.astimezone(ZoneInfo(ctx.config.town.timezone))
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return add_months(start, 1).astimezone(UTC)


def schedule(ctx: Context, *, until: datetime | None = None) -> list[DueResident]:
    """Live residents whose retention ends by `until` (default: now), soonest first."""
    ctx.require(Role.VIEWER)
    limit = until or ctx.clock.now()
    contact = contact_table
    event = consent_event_table
    inbound = inbound_message_table
    state = consent_state_table
    last_event = (
        select(event.c.contact_id, func.max(event.c.occurred_at).label("at"))
        .group_by(event.c.contact_id)
        .subquery()
    )
    last_inbound = (
        select(inbound.c.contact_id, func.max(inbound.c.received_at).label("at"))
        .where(inbound.c.contact_id.is_not(None))
        .group_by(inbound.c.contact_id)
        .subquery()
    )
    topics = ctx.config.topics
    shortest = min(t.retention_months for t in topics.values())
    due: list[DueResident] = []
    with read_session(ctx.engine) as session:
        granted: dict[int, dict[str, bool]] = {}
        for cid, topic, is_granted in session.execute(
            select(state.c.contact_id, state.c.topic, state.c.granted)
        ):
            granted.setdefault(cid, {})[topic] = bool(is_granted)
        rows = session.execute(
            select(
                contact.c.id,
                contact.c.name,
                contact.c.zone,
                contact.c.updated_at,
                last_event.c.at,
                last_inbound.c.at,
            )
            .outerjoin(last_event, last_event.c.contact_id == contact.c.id)
            .outerjoin(last_inbound, last_inbound.c.contact_id == contact.c.id)
            .where(contact.c.erased_at.is_(None))
        )
        for cid, name, zone, updated, ev_at, in_at in rows:
            moments = [m for m in (_aware(updated), _aware(ev_at), _aware(in_at)) if m]
            last = max(moments)
            states = granted.get(cid, {})
            months = max(
                (
                    t.retention_months
                    for key, t in topics.items()
                    if may_receive(t.legal_basis, states.get(key))
                ),
                default=shortest,
            )
            ends = add_months(last, months)
            if ends <= limit:
                due.append(DueResident(cid, name, zone, last, ends, months))
    due.sort(key=lambda d: (d.due_at, d.contact_id))
    return due


@dataclass(frozen=True)
class RetentionSummary:
    due_now: int
    due_this_month: int


def summary(ctx: Context) -> RetentionSummary:
    now = ctx.clock.now()
    month = schedule(ctx, until=_month_end(ctx, now))
    return RetentionSummary(sum(1 for d in month if d.due_at <= now), len(month))


def apply_retention(ctx: Context) -> list[DueResident]:
    """Erase every resident due now, one erasure (and audit entry) each."""
    from console.contacts.service import erase_contact

    ctx.require(Role.ADMIN)
    done = []
    for resident in schedule(ctx):
        erase_contact(ctx, resident.contact_id, reason="retention")
        done.append(resident)
    return done
