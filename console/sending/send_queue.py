"""The live send queue (Envois): what every active, scheduled and recent campaign is
doing, read in a few aggregate queries so a poll costs the same for 50 or 50,000
messages. Nothing here loads messages one by one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Integer, and_, cast, func, or_, select
from sqlalchemy.sql import ColumnElement
from sqlmodel import Session, col

from console.context import Context
from console.sending.campaigns import state_counts
from console.sending.states import (
    ACTIVE_STATUSES,
    CLAIMABLE_STATUSES,
    QUEUED,
    SENDING,
    SUBMITTED,
    UNCERTAIN,
    CampaignStatus,
)
from console.sending.status import silent_database_fault
from console.sending.workers import ALIVE_WITHIN_S, alive_workers
from storage.engine import read_session
from storage.faults import Fault
from storage.models import (
    Campaign,
    DeliveryEvent,
    Message,
    WorkerHeartbeat,
    campaign_table,
    delivery_event_table,
)

# Campaigns that ended this long ago still show, so the operator sees how they ended.
RECENT = timedelta(hours=24)
MAX_CAMPAIGNS = 50
RATE_WINDOW_S = 30
HEALTH_WINDOW_S = 60
SPARK_BUCKET_S = 30
SPARK_BUCKETS = 20

Health = Literal["ok", "degraded", "failing", "idle"]


@dataclass(frozen=True)
class CampaignProgress:
    id: int
    topic: str
    kind: str
    status: str
    status_reason: str
    text: str
    created_by: str
    created_at: datetime
    start_at: datetime
    enqueued: bool
    counts: dict[str, int]
    # Provider answers per second for this campaign over the last RATE_WINDOW_S.
    rate: float

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def waiting(self) -> int:
        """Still to be handed to the provider."""
        return self.counts[QUEUED] + self.counts[SENDING]

    @property
    def handled(self) -> int:
        """Messages the provider answered for, or that were settled without it."""
        return self.total - self.waiting - self.counts[UNCERTAIN]

    @property
    def fraction(self) -> float:
        return self.handled / self.total if self.total else 1.0

    @property
    def eta_seconds(self) -> float | None:
        if self.status not in CLAIMABLE_STATUSES:
            return None
        if self.waiting == 0:
            return 0.0
        if self.rate <= 0 or self.status == CampaignStatus.PAUSED:
            return None
        return self.waiting / self.rate

    def is_scheduled(self, now: datetime) -> bool:
        return self.status == CampaignStatus.QUEUED and self.start_at > now


@dataclass(frozen=True)
class ProviderHealth:
    status: Health
    answers: int
    accepted: int
    # The provider's last reason for refusing or failing, shown as the operator's clue.
    last_problem: str = ""


@dataclass(frozen=True)
class QueueSnapshot:
    now: datetime
    campaigns: list[CampaignProgress]
    workers: list[WorkerHeartbeat]
    heartbeat_age_s: float | None
    rate: float
    # Provider answers in each SPARK_BUCKET_S bucket, oldest first, the last one now.
    sparkline: list[int]
    health: ProviderHealth
    # Why the database refuses writes while the worker is silent (sending paused).
    database_fault: Fault | None = None

    @property
    def worker_alive(self) -> bool:
        return bool(self.workers)


def _bucket_index(column: Any, start: datetime, dialect: str) -> ColumnElement[Any]:
    """Which SPARK_BUCKET_S bucket after `start` a time falls in; buckets are closed on
    the right, so an answer at `now` counts in the last one."""
    if dialect == "postgresql":
        seconds: Any = func.extract("epoch", column) - start.timestamp()
        return cast(func.ceil(seconds / SPARK_BUCKET_S), Integer) - 1
    # SQLite: julianday keeps fractions of a second (to some 40 µs, hence the 1 ms
    # margin); CAST truncates, which for positive values is floor, and needs no math
    # extension.
    seconds = (func.julianday(column) - 2440587.5) * 86400.0 - start.timestamp()
    return cast((seconds - 0.001) / SPARK_BUCKET_S, Integer)


def _campaigns(session: Session, now: datetime) -> list[Campaign]:
    campaign = campaign_table.c
    return list(
        session.execute(
            select(Campaign)
            .where(or_(campaign.status.in_(ACTIVE_STATUSES), campaign.created_at >= now - RECENT))
            # Emergencies first, then the newest.
            .order_by(campaign.priority.desc(), campaign.id.desc())
            .limit(MAX_CAMPAIGNS)
        ).scalars()
    )


def _rates(session: Session, ids: list[int], now: datetime) -> dict[int, float]:
    if not ids:
        return {}
    since = now - timedelta(seconds=RATE_WINDOW_S)
    found = session.execute(
        select(col(Message.campaign_id), func.count())
        .select_from(DeliveryEvent)
        .join(Message, col(Message.id) == col(DeliveryEvent.message_id))
        .where(
            col(DeliveryEvent.source) == "send",
            col(DeliveryEvent.at) >= since,
            col(Message.campaign_id).in_(ids),
        )
        .group_by(col(Message.campaign_id))
    )
    return {campaign_id: int(count) / RATE_WINDOW_S for campaign_id, count in found}


def _sparkline(session: Session, now: datetime) -> list[int]:
    start = now - timedelta(seconds=SPARK_BUCKET_S * SPARK_BUCKETS)
    bucket = _bucket_index(col(DeliveryEvent.at), start, session.get_bind().dialect.name)
    buckets = [0] * SPARK_BUCKETS
    for index, count in session.execute(
        select(bucket, func.count())
        .where(
            col(DeliveryEvent.source) == "send",
            col(DeliveryEvent.at) > start,
            col(DeliveryEvent.at) <= now,
        )
        .group_by(bucket)
    ):
        if index is not None and 0 <= int(index) < SPARK_BUCKETS:
            buckets[int(index)] += int(count)
    return buckets


def _health(session: Session, now: datetime, paused_reason: str) -> ProviderHealth:
    since = now - timedelta(seconds=HEALTH_WINDOW_S)
    event = delivery_event_table.c
    recent = and_(event.source == "send", event.at >= since)
    answers, accepted = session.execute(
        select(func.count(), func.count().filter(event.state == SUBMITTED)).where(recent)
    ).one()
    last_problem = (
        session.execute(
            select(event.detail)
            .where(recent, event.state != SUBMITTED)
            .order_by(event.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        or ""
    )
    answers, accepted = int(answers), int(accepted)
    status: Health
    if paused_reason:
        # A provider that refused our credentials paused the campaign: that is the news.
        status, last_problem = "failing", paused_reason
    elif answers == 0:
        status = "idle"
    elif accepted == 0:
        status = "failing"
    elif accepted < answers * 0.9:
        status = "degraded"
    else:
        status = "ok"
    return ProviderHealth(status, answers, accepted, last_problem)


def _progress(c: Campaign, counts: dict[str, int], rate: float) -> CampaignProgress:
    assert c.id is not None
    return CampaignProgress(
        id=c.id,
        topic=c.topic,
        kind=c.kind,
        status=c.status,
        status_reason=c.status_reason,
        text=c.text,
        created_by=c.created_by,
        created_at=c.created_at,
        start_at=c.start_at,
        enqueued=c.enqueued,
        counts=counts,
        rate=rate,
    )


def queue_snapshot(ctx: Context) -> QueueSnapshot:
    now = ctx.clock.now()
    with read_session(ctx.engine) as session:
        campaigns = _campaigns(session, now)
        ids = [c.id for c in campaigns if c.id is not None]
        counts = state_counts(session, ids)
        rates = _rates(session, ids, now)
        sparkline = _sparkline(session, now)
        paused_reason = next(
            (
                c.status_reason
                for c in campaigns
                if c.status == CampaignStatus.PAUSED and c.status_reason
            ),
            "",
        )
        health = _health(session, now, paused_reason)
    workers = alive_workers(ctx.engine, now, ALIVE_WITHIN_S)
    age = min(((now - w.last_seen).total_seconds() for w in workers), default=None)
    progress = [
        _progress(c, counts[c.id], rates.get(c.id, 0.0)) for c in campaigns if c.id is not None
    ]
    return QueueSnapshot(
        now=now,
        campaigns=progress,
        workers=workers,
        heartbeat_age_s=age,
        rate=sum(rates.values()),
        sparkline=sparkline,
        health=health,
        database_fault=silent_database_fault(ctx.engine, workers, now),
    )


def campaign_progress(ctx: Context, campaign_id: int) -> CampaignProgress | None:
    """One campaign's figures, for its own view."""
    now = ctx.clock.now()
    with read_session(ctx.engine) as session:
        c = session.get(Campaign, campaign_id)
        if c is None or c.id is None:
            return None
        counts = state_counts(session, [c.id])[c.id]
        rates = _rates(session, [c.id], now)
        return _progress(c, counts, rates.get(c.id, 0.0))
