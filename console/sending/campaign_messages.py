"""A campaign's messages, paged from the database for the drill-in view."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from console.context import Context
from storage.engine import read_session
from storage.models import contact_table, message_table


@dataclass(frozen=True)
class MessageRow:
    id: int
    number: str
    name: str
    state: str
    attempts: int
    # The provider's reason for a failure, or why the message was skipped.
    reason: str
    updated_at: datetime


def page_messages(
    ctx: Context, campaign_id: int, *, state: str | None = None, after_id: int = 0, limit: int = 100
) -> list[MessageRow]:
    """The next `limit` messages after `after_id` (keyset: the index does the work)."""
    message, contact = message_table.c, contact_table.c
    stmt = (
        select(
            message.id,
            message.number,
            func.coalesce(contact.name, ""),
            message.state,
            message.attempts,
            message.reason,
            message.updated_at,
        )
        .outerjoin(contact_table, contact.id == message.contact_id)
        .where(message.campaign_id == campaign_id, message.id > after_id)
        .order_by(message.id)
        .limit(limit)
    )
    if state:
        stmt = stmt.where(message.state == state)
    with read_session(ctx.engine) as session:
        return [MessageRow(*row) for row in session.execute(stmt)]
