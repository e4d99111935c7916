"""What the DPO checks at a glance: consents in force without proof, consents older
than their topic's retention period, and the chains' state."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select

from console.audit import verify_chains
from console.consent.lists import add_months
from console.context import Context
from storage.engine import read_session
from storage.models import (
    consent_event_table,
    consent_state_table,
    contact_table,
)


def without_proof(ctx: Context) -> int:
    """Live residents with a consent in force whose deciding event names no proof."""
    state = consent_state_table
    event = consent_event_table
    contact = contact_table
    with read_session(ctx.engine) as session:
        return int(
            session.execute(
                select(func.count(func.distinct(state.c.contact_id)))
                .join(event, event.c.id == state.c.event_id)
                .join(contact, contact.c.id == state.c.contact_id)
                .where(
                    state.c.granted.is_(True),
                    contact.c.erased_at.is_(None),
                    or_(event.c.proof_ref == "", event.c.proof_ref.is_(None)),
                )
            ).scalar_one()
        )


def older_than_retention(ctx: Context) -> int:
    """Consents in force given longer ago than their topic's retention period."""
    state = consent_state_table
    event = consent_event_table
    now = ctx.clock.now()
    conditions = [
        and_(
            state.c.topic == key,
            event.c.occurred_at < add_months(now, -topic.retention_months),
        )
        for key, topic in ctx.config.topics.items()
    ]
    with read_session(ctx.engine) as session:
        return int(
            session.execute(
                select(func.count())
                .select_from(state)
                .join(event, event.c.id == state.c.event_id)
                .where(state.c.granted.is_(True), or_(*conditions))
            ).scalar_one()
        )


@dataclass(frozen=True)
class ChainState:
    chain: str
    verified: int  # entries checked
    broken_at: int | None  # the first problem's entry, None when sound
    what: str


def chain_states(ctx: Context) -> list[ChainState]:
    states = []
    for chain, (count, problems) in verify_chains(ctx.engine).items():
        if problems:
            first = min(problems, key=lambda p: p.seq or 0)
            states.append(ChainState(chain, count, first.seq, first.reason))
        else:
            states.append(ChainState(chain, count, None, ""))
    return states
