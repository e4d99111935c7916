"""What operators do to a campaign once it is queued: look, pause, resume, cancel,
resolve uncertain messages. Each acts between batches: a worker only claims messages
of a queued or running campaign, and every change here is one transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, select, update
from sqlmodel import col

from console.audit import append_audit
from console.context import Context
from console.roles import Role
from console.sending.campaigns import CampaignError, _counts
from console.sending.states import FAILED, QUEUED, SKIPPED, STATES, SUBMITTED, UNCERTAIN
from console.sending.workers import ALIVE_WITHIN_S, alive_workers
from storage.engine import read_session, write_session
from storage.models import Campaign, DeliveryEvent, Message


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

    def to_json(self) -> dict[str, Any]:
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
        json.loads(campaign.audience or "{}"),
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
        return [_view(c, _counts(session, c.id or 0)) for c in campaigns]


def get_campaign(ctx: Context, campaign_id: int) -> CampaignView:
    with read_session(ctx.engine) as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise CampaignError(f"no campaign #{campaign_id}", "no_campaign", id=campaign_id)
        return _view(campaign, _counts(session, campaign_id))


Change = Literal["pause", "resume", "cancel"]
_ALLOWED: dict[str, tuple[str, ...]] = {
    "pause": ("queued", "running"),
    "resume": ("paused",),
    "cancel": ("queued", "running", "paused"),
}
_NEW_STATUS = {"pause": "paused", "resume": "running", "cancel": "cancelled"}


def change_campaign(ctx: Context, campaign_id: int, change: Change) -> CampaignView:
    """Pause, resume or cancel. Messages already handed to a worker finish their call;
    a cancel marks the ones still queued `skipped` (reason: cancelled)."""
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
    with write_session(ctx.engine) as session:
        session.execute(
            update(Campaign)
            .where(col(Campaign.id) == campaign_id, col(Campaign.status).in_(_ALLOWED[change]))
            .values(status=_NEW_STATUS[change], status_reason="")
        )
        cancelled = 0
        if change == "cancel":
            cancelled = session.execute(
                update(Message)
                .where(col(Message.campaign_id) == campaign_id, col(Message.state) == QUEUED)
                .values(state=SKIPPED, reason="cancelled", updated_at=now)
            ).rowcount  # type: ignore[attr-defined]
        append_audit(
            session,
            at=now,
            operator=ctx.operator,
            action=f"campaign.{change}",
            target=f"campaign:{campaign_id}",
            details={"cancelled": cancelled},
        )
    return get_campaign(ctx, campaign_id)


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
    if view.status == "cancelled":
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
                .where(col(Campaign.id) == campaign_id, col(Campaign.status) == "done")
                .values(status="running")
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
    now = ctx.clock.now()
    with read_session(ctx.engine) as session:
        by_state = {
            state: count
            for state, count in session.execute(
                select(col(Message.state), func.count()).group_by(col(Message.state))
            )
        }
        minute_ago = now - timedelta(minutes=1)
        last_minute = session.execute(
            select(func.count())
            .select_from(DeliveryEvent)
            .where(
                col(DeliveryEvent.source) == "send",
                col(DeliveryEvent.state) == SUBMITTED,
                col(DeliveryEvent.at) >= minute_ago,
            )
        ).scalar_one()
        # Submitted long ago and never reported on: the provider's silence is shown.
        report_deadline = now - timedelta(minutes=ctx.config.worker.report_timeout_minutes)
        no_report = session.execute(
            select(func.count())
            .select_from(Message)
            .where(col(Message.state) == SUBMITTED, col(Message.updated_at) < report_deadline)
        ).scalar_one()
        active = session.execute(
            select(func.count())
            .select_from(Campaign)
            .where(col(Campaign.status).in_(("queued", "running", "paused")))
        ).scalar_one()
    workers = alive_workers(ctx.engine, now, ALIVE_WITHIN_S)
    return {
        "messages": {state: int(by_state.get(state, 0)) for state in STATES},
        "in_flight": int(by_state.get("sending", 0)),
        "no_report": int(no_report),
        "rate_per_second": round(int(last_minute) / 60, 2),
        "active_campaigns": int(active),
        "worker_alive": bool(workers),
        "workers": [
            {
                "owner": w.owner,
                "host": w.host,
                "provider": w.provider,
                "last_seen": w.last_seen.isoformat(),
                "sent": w.sent,
            }
            for w in workers
        ],
    }
