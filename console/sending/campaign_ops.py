"""What operators do to a campaign once it is queued: look, pause, resume, cancel,
resolve uncertain messages. Every change here is one transaction; a worker only
claims messages of a queued or running campaign, and gives back within a moment
what it holds of one paused or cancelled (console.sending.worker): only the provider
calls already under way finish."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, select, update
from sqlmodel import col

from console.audit import append_audit
from console.context import Context
from console.roles import Role
from console.sending.campaigns import Audience, CampaignError, state_counts
from console.sending.states import (
    ACTIVE_STATUSES,
    CLAIMABLE_STATUSES,
    FAILED,
    QUEUED,
    SENDING,
    SKIPPED,
    SUBMITTED,
    UNCERTAIN,
    CampaignStatus,
)
from console.sending.status import read_queue_status
from console.sending.workers import ALIVE_WITHIN_S, alive_workers
from storage.engine import read_session, write_session
from storage.models import Campaign, DeliveryEvent, Message


@dataclass(frozen=True)
class StopReport:
    """What a pause or a cancel did, counted in messages.

    `not_sent`: queued at the stop (cancel: now skipped; pause: held for the resume).
    `claimed`: already claimed by a worker at the stop; of those, `given_back` never
    reached the provider (skipped, or queued again), `left_after` did (the calls
    under way, and answers the worker had not recorded yet), and `in_flight` were
    still being sent when the report was made (a slow provider, or no worker alive).
    """

    change: str
    not_sent: int
    claimed: int
    given_back: int = 0
    left_after: int = 0
    in_flight: int = 0
    # The claimed messages' ids, to settle the report later (not shown).
    ids: tuple[int, ...] = field(default=(), repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "change": self.change,
            "not_sent": self.not_sent,
            "claimed": self.claimed,
            "given_back": self.given_back,
            "left_after": self.left_after,
            "in_flight": self.in_flight,
        }


@dataclass(frozen=True)
class CampaignView:
    id: int
    topic: str
    kind: str
    status: str
    status_reason: str
    text: str
    sender_id: str
    created_by: str
    created_at: datetime
    start_at: datetime
    audience: dict[str, Any]
    counts: dict[str, int]
    # The planned send it is an occurrence of (tocsin plan), or None.
    schedule_id: int | None = None
    # Set by a pause or a cancel (change_campaign), None otherwise.
    stop: StopReport | None = None

    def to_json(self) -> dict[str, Any]:
        stop = {} if self.stop is None else {"stop": self.stop.to_json()}
        return {
            "id": self.id,
            "topic": self.topic,
            "kind": self.kind,
            "status": self.status,
            "status_reason": self.status_reason,
            "text": self.text,
            "sender_id": self.sender_id,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "start_at": self.start_at.isoformat(),
            "audience": self.audience,
            "counts": self.counts,
            "total": sum(self.counts.values()),
            "schedule_id": self.schedule_id,
            **stop,
        }


def _view(campaign: Campaign, counts: dict[str, int]) -> CampaignView:
    assert campaign.id is not None
    return CampaignView(
        campaign.id,
        campaign.topic,
        campaign.kind,
        campaign.status,
        campaign.status_reason,
        campaign.text,
        campaign.sender_id,
        campaign.created_by,
        campaign.created_at,
        campaign.start_at,
        Audience.from_json(campaign.audience).to_dict(),
        counts,
        campaign.schedule_id,
    )


def list_campaigns(ctx: Context, limit: int = 50) -> list[CampaignView]:
    with read_session(ctx.engine) as session:
        campaigns = (
            session.execute(select(Campaign).order_by(col(Campaign.id).desc()).limit(limit))
            .scalars()
            .all()
        )
        counts = state_counts(session, [c.id for c in campaigns if c.id is not None])
        return [_view(c, counts[c.id]) for c in campaigns if c.id is not None]


def get_campaign(ctx: Context, campaign_id: int) -> CampaignView:
    with read_session(ctx.engine) as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise CampaignError(f"no campaign #{campaign_id}", "no_campaign", id=campaign_id)
        return _view(campaign, state_counts(session, [campaign_id])[campaign_id])


Change = Literal["pause", "resume", "cancel"]
_ALLOWED: dict[str, tuple[CampaignStatus, ...]] = {
    "pause": CLAIMABLE_STATUSES,
    "resume": (CampaignStatus.PAUSED,),
    "cancel": ACTIVE_STATUSES,
}
_NEW_STATUS = {
    "pause": CampaignStatus.PAUSED,
    "resume": CampaignStatus.RUNNING,
    "cancel": CampaignStatus.CANCELLED,
}
# How long a pause or a cancel waits, at most, for the workers to give back what they
# hold and for the calls under way to end, before it reports (usually a few tenths
# of a second: workers look every 0.1 s).
SETTLE_S = 5.0
_SETTLE_POLL_S = 0.05


def change_campaign(
    ctx: Context, campaign_id: int, change: Change, settle_s: float = SETTLE_S
) -> CampaignView:
    """Pause, resume or cancel.

    A cancel marks the messages still queued `skipped` (reason: cancelled). Messages a
    worker has claimed but not yet handed to the provider are given back by it at
    once (skipped for a cancel, queued again for a pause); only the calls under way
    finish. A pause or a cancel waits up to `settle_s` for that, then says in
    `stop` how many still left after it (0: report at once, see `settle_stop`)."""
    view = get_campaign(ctx, campaign_id)
    ctx.require(Role.ALERTER if view.kind == "emergency" else Role.OPERATOR)
    if view.status not in _ALLOWED[change]:
        raise CampaignError(
            f"campaign #{campaign_id} is {view.status}: cannot {change}",
            "campaign_change",
            id=campaign_id,
            status=view.status,
            change=change,
        )
    now = ctx.clock.now()
    # The status first, in a short transaction of its own: workers see it within
    # 50 ms and give back what they hold, while the queued messages of a big
    # campaign are skipped afterwards (on SQLite a long write would hold the workers'
    # commits, and their senders would go on with what they hold meanwhile).
    with write_session(ctx.engine) as session:
        session.execute(
            update(Campaign)
            .where(col(Campaign.id) == campaign_id, col(Campaign.status).in_(_ALLOWED[change]))
            .values(status=_NEW_STATUS[change], status_reason="")
        )
        waiting = session.execute(
            select(func.count())
            .select_from(Message)
            .where(col(Message.campaign_id) == campaign_id, col(Message.state) == QUEUED)
        ).scalar_one()
        claimed: tuple[int, ...] = ()
        if change != "resume":
            # Read after the status change, in its transaction: a worker claims
            # nothing more of this campaign, so these are all it will ever hold.
            claimed = tuple(
                session.execute(
                    select(col(Message.id)).where(
                        col(Message.campaign_id) == campaign_id, col(Message.state) == SENDING
                    )
                ).scalars()
            )
        append_audit(
            session,
            at=now,
            operator=ctx.operator,
            action=f"campaign.{change}",
            target=f"campaign:{campaign_id}",
            details={
                "cancelled": int(waiting) if change == "cancel" else 0,
                "claimed": len(claimed),
            },
        )
    # Counted once the status changed: nothing of it can be claimed any more. (For a
    # cancel, a worker's sweep may skip some of them before we do.)
    not_sent = int(waiting)
    if change == "cancel":
        # The workers' sweep (skip_cancelled) finishes this if we die half-way.
        _skip_queued(ctx, campaign_id)
    if change == "resume":
        return get_campaign(ctx, campaign_id)
    report = StopReport(change, not_sent, len(claimed), in_flight=len(claimed), ids=claimed)
    if claimed and settle_s > 0 and alive_workers(ctx.engine, now, ALIVE_WITHIN_S):
        report = settle_stop(ctx, report, settle_s)
    return replace(get_campaign(ctx, campaign_id), stop=report)


_SKIP_CHUNK = 5000


def _skip_queued(ctx: Context, campaign_id: int) -> int:
    """Skip a cancelled campaign's queued messages, a few thousand per transaction."""
    skipped = 0
    while True:
        with write_session(ctx.engine) as session:
            ids = list(
                session.execute(
                    select(col(Message.id))
                    .where(col(Message.campaign_id) == campaign_id, col(Message.state) == QUEUED)
                    .limit(_SKIP_CHUNK)
                ).scalars()
            )
            if ids:
                skipped += session.execute(
                    update(Message)
                    .where(col(Message.id).in_(ids), col(Message.state) == QUEUED)
                    .values(state=SKIPPED, reason="cancelled", updated_at=ctx.clock.now())
                ).rowcount  # type: ignore[attr-defined]
        if len(ids) < _SKIP_CHUNK:
            return skipped


def settle_stop(ctx: Context, report: StopReport, wait_s: float) -> StopReport:
    """Count again what became of the messages claimed at the stop, waiting up to
    `wait_s` for none to be `sending` any more."""
    deadline = time.monotonic() + wait_s
    while True:
        with read_session(ctx.engine) as session:
            states = list(
                session.execute(
                    select(col(Message.state)).where(col(Message.id).in_(report.ids))
                ).scalars()
            )
        in_flight = sum(1 for state in states if state == SENDING)
        if not in_flight or time.monotonic() >= deadline:
            break
        time.sleep(_SETTLE_POLL_S)
    given_back = sum(1 for state in states if state in (QUEUED, SKIPPED))
    return replace(
        report,
        given_back=given_back,
        left_after=len(states) - in_flight - given_back,
        in_flight=in_flight,
    )


Resolution = Literal["resend", "mark-sent"]


def resolve_uncertain(ctx: Context, campaign_id: int, resolution: Resolution) -> int:
    """The operator decides what uncertain messages become; returns how many."""
    view = get_campaign(ctx, campaign_id)
    ctx.require(Role.ALERTER if view.kind == "emergency" else Role.OPERATOR)
    now = ctx.clock.now()
    state = QUEUED if resolution == "resend" else SUBMITTED
    reason = "re-sent by the operator" if resolution == "resend" else "marked sent by the operator"
    with write_session(ctx.engine) as session:
        ids = list(
            session.execute(
                select(col(Message.id)).where(
                    col(Message.campaign_id) == campaign_id, col(Message.state) == UNCERTAIN
                )
            ).scalars()
        )
        if ids:
            session.execute(
                update(Message)
                .where(col(Message.id).in_(ids), col(Message.state) == UNCERTAIN)
                .values(state=state, reason=reason, next_attempt_at=now, updated_at=now)
            )
            for message_id in ids:
                session.add(
                    DeliveryEvent(
                        message_id=message_id,
                        state=state,
                        applied=True,
                        source="operator",
                        detail=reason,
                        at=now,
                    )
                )
        append_audit(
            session,
            at=now,
            operator=ctx.operator,
            action="campaign.resolve",
            target=f"campaign:{campaign_id}",
            details={"resolution": resolution, "messages": len(ids)},
        )
    return len(ids)


def retry_failed(ctx: Context, campaign_id: int) -> int:
    """Send the failed messages again (after the operator fixed the cause: credit,
    credentials...); returns how many. Attempts start again from zero."""
    view = get_campaign(ctx, campaign_id)
    ctx.require(Role.ALERTER if view.kind == "emergency" else Role.OPERATOR)
    if view.status == CampaignStatus.CANCELLED:
        raise CampaignError(
            f"campaign #{campaign_id} is cancelled: cannot retry",
            "campaign_change",
            id=campaign_id,
            status=view.status,
            change="retry",
        )
    now = ctx.clock.now()
    reason = "retried by the operator"
    with write_session(ctx.engine) as session:
        ids = list(
            session.execute(
                select(col(Message.id)).where(
                    col(Message.campaign_id) == campaign_id, col(Message.state) == FAILED
                )
            ).scalars()
        )
        if ids:
            session.execute(
                update(Message)
                .where(col(Message.id).in_(ids), col(Message.state) == FAILED)
                .values(
                    state=QUEUED,
                    reason=reason,
                    attempts=0,
                    next_attempt_at=now,
                    lease_owner="",
                    updated_at=now,
                )
            )
            session.add_all(
                DeliveryEvent(
                    message_id=message_id,
                    state=QUEUED,
                    applied=True,
                    source="operator",
                    detail=reason,
                    at=now,
                )
                for message_id in ids
            )
            # A finished campaign runs again for these messages.
            session.execute(
                update(Campaign)
                .where(col(Campaign.id) == campaign_id, col(Campaign.status) == CampaignStatus.DONE)
                .values(status=CampaignStatus.RUNNING)
            )
        append_audit(
            session,
            at=now,
            operator=ctx.operator,
            action="campaign.retry",
            target=f"campaign:{campaign_id}",
            details={"messages": len(ids)},
        )
    return len(ids)


def queue_status(ctx: Context) -> dict[str, Any]:
    """The `tocsin status` figures: messages per state, in flight, rate, workers."""
    return read_queue_status(ctx.engine, ctx.clock.now(), ctx.config.worker.report_timeout_minutes)
