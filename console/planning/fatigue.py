"""The fatigue cap: at most so many messages per resident, across topics.

Counted on the town's calendar: the day of the send, the 7 days ending with it, the
30 days ending with it. Every message that was not skipped counts, alerts included
(alerts are never capped themselves). A message counts on its campaign's start.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import Engine, case, func, select
from sqlmodel import col

from console.config import Config
from console.planning.rules import localize, send_rules
from console.sending.states import SKIPPED
from storage.engine import read_session
from storage.models import Campaign, Message


def capped_contacts(engine: Engine, config: Config, at: datetime) -> frozenset[int]:
    """The residents who may get no more planned messages on `at`'s day."""
    rules = send_rules(config)
    cap = config.planning.fatigue
    day = at.astimezone(rules.zone).date()
    day_start = localize(datetime.combine(day, time()), rules.zone)
    week_start = localize(datetime.combine(day - timedelta(days=6), time()), rules.zone)
    month_start = localize(datetime.combine(day - timedelta(days=29), time()), rules.zone)
    day_end = localize(datetime.combine(day + timedelta(days=1), time()), rules.zone)
    start = col(Campaign.start_at)
    in_day = func.sum(case((start >= day_start, 1), else_=0))
    in_week = func.sum(case((start >= week_start, 1), else_=0))
    in_month = func.count()
    query = (
        select(col(Message.contact_id))
        .join(Campaign, col(Campaign.id) == col(Message.campaign_id))
        .where(
            start >= month_start,
            start < day_end,
            col(Message.state) != SKIPPED,
            col(Message.contact_id).is_not(None),
        )
        .group_by(col(Message.contact_id))
        .having(
            (in_day >= cap.per_day) | (in_week >= cap.per_7_days) | (in_month >= cap.per_30_days)
        )
    )
    with read_session(engine) as session:
        return frozenset(int(found) for found in session.execute(query).scalars())


def day_load(engine: Engine, config: Config, start: datetime, end: datetime) -> dict[str, int]:
    """Messages (not skipped) and residents capped in [start, end): the calendar's load."""
    begin, stop = col(Campaign.start_at) >= start, col(Campaign.start_at) < end
    with read_session(engine) as session:
        sent = session.execute(
            select(func.count())
            .select_from(Message)
            .join(Campaign, col(Campaign.id) == col(Message.campaign_id))
            .where(begin, stop, col(Message.state) != SKIPPED)
        ).scalar_one()
        capped = session.execute(
            select(func.count())
            .select_from(Message)
            .join(Campaign, col(Campaign.id) == col(Message.campaign_id))
            .where(begin, stop, col(Message.reason) == "fatigue_cap")
        ).scalar_one()
    return {"messages": int(sent), "capped": int(capped)}
