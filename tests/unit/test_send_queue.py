"""The live queue's read model: counts, rates, sparkline, health, messages, retries."""

from __future__ import annotations

from datetime import timedelta

import pytest

from console.clock import FrozenClock
from console.contacts.service import ContactInput, add_contact
from console.context import Context
from console.roles import Role
from console.sending.campaign_messages import page_messages
from console.sending.campaign_ops import get_campaign, retry_failed
from console.sending.campaigns import Audience, CampaignError, CampaignRequest, create_campaign
from console.sending.providers.base import SendResult
from console.sending.queue import claim_batch, finish_campaigns, record_results
from console.sending.send_queue import RATE_WINDOW_S, SPARK_BUCKET_S, SPARK_BUCKETS, queue_snapshot
from console.sending.workers import beat
from tests.conftest import make_context


def _residents(ctx: Context, count: int) -> None:
    for i in range(count):
        add_contact(
            ctx,
            ContactInput(
                number=f"06 70 00 {i // 100:02d} {i % 100:02d}", name=f"Résident {i}", zone="Centre"
            ),
        )


def _send(ctx: Context, kind: str = "planned") -> int:
    return create_campaign(
        ctx,
        CampaignRequest(
            topic="alertes",
            text="Crue de la Sèvre",
            sender_id="MAIRIE",
            audience=Audience(everyone=True),
            kind=kind,
        ),
    ).campaign_id  # type: ignore[arg-type]


def _answer(ctx: Context, count: int, outcome: str, reason: str = "") -> None:
    claimed = claim_batch(ctx.engine, "w1", ctx.clock.now(), 60, count)
    record_results(
        ctx.engine,
        "w1",
        claimed,
        [
            SendResult(c.message_id, outcome, reason=reason)  # type: ignore[arg-type]
            for c in claimed
        ],
        ctx.clock.now(),
        5,
    )


def test_empty_queue(ctx: Context) -> None:
    snapshot = queue_snapshot(ctx)
    assert snapshot.campaigns == [] and not snapshot.worker_alive
    assert snapshot.sparkline == [0] * SPARK_BUCKETS
    assert snapshot.health.status == "idle" and snapshot.rate == 0


def test_progress_rate_eta_and_sparkline(ctx: Context, clock: FrozenClock) -> None:
    _residents(ctx, 30)
    # Two minutes ago: both sent, 10 answers. Now: 6 more, within the rate window.
    clock.advance(timedelta(minutes=-2))
    planned = _send(ctx)
    emergency = _send(ctx, "emergency")
    _answer(ctx, 10, "submitted")
    clock.advance(timedelta(minutes=2))
    _answer(ctx, 6, "submitted")
    beat(ctx.engine, "w1", "simulated", clock.now(), 16)
    snapshot = queue_snapshot(ctx)
    # Emergencies first, whatever their age.
    assert [c.id for c in snapshot.campaigns] == [emergency, planned]
    first = snapshot.campaigns[0]
    assert first.counts["submitted"] == 16 and first.counts["queued"] == 14
    assert first.total == 30 and first.fraction == pytest.approx(16 / 30)
    assert first.rate == pytest.approx(6 / RATE_WINDOW_S)
    assert first.eta_seconds == pytest.approx(14 / (6 / RATE_WINDOW_S))
    assert snapshot.campaigns[1].rate == 0 and snapshot.campaigns[1].eta_seconds is None
    assert sum(snapshot.sparkline) == 16
    assert snapshot.sparkline[-1] == 6
    assert snapshot.sparkline[-1 - (120 // SPARK_BUCKET_S)] == 10
    assert snapshot.worker_alive and snapshot.heartbeat_age_s == 0
    assert snapshot.health.status == "ok"


def test_health_names_the_providers_reason(ctx: Context) -> None:
    _residents(ctx, 10)
    _send(ctx)
    _answer(ctx, 2, "submitted")
    _answer(ctx, 8, "failed", reason="21211: Invalid 'To' Phone Number")
    health = queue_snapshot(ctx).health
    assert health.status == "degraded" and health.answers == 10 and health.accepted == 2
    assert health.last_problem == "21211: Invalid 'To' Phone Number"


def test_old_finished_campaigns_drop_out(ctx: Context, clock: FrozenClock) -> None:
    _residents(ctx, 2)
    _send(ctx)
    _answer(ctx, 2, "submitted")
    finish_campaigns(ctx.engine)
    assert queue_snapshot(ctx).campaigns[0].status == "done"
    clock.advance(timedelta(days=2))
    assert queue_snapshot(ctx).campaigns == []


def test_messages_page_by_keyset_and_filter_by_state(ctx: Context) -> None:
    _residents(ctx, 25)
    cid = _send(ctx)
    _answer(ctx, 5, "failed", reason="Kannel: 3: Queued for later delivery refused")
    first = page_messages(ctx, cid, limit=10)
    second = page_messages(ctx, cid, after_id=first[-1].id, limit=10)
    third = page_messages(ctx, cid, after_id=second[-1].id, limit=10)
    assert [len(first), len(second), len(third)] == [10, 10, 5]
    assert first[0].name == "Résident 0" and first[0].number == "+33670000000"
    failed = page_messages(ctx, cid, state="failed")
    assert len(failed) == 5 and {m.reason for m in failed} == {
        "Kannel: 3: Queued for later delivery refused"
    }


def test_retry_failed_requeues_and_reopens_the_campaign(ctx: Context) -> None:
    _residents(ctx, 4)
    cid = _send(ctx)
    _answer(ctx, 4, "failed", reason="no credit")
    finish_campaigns(ctx.engine)
    assert get_campaign(ctx, cid).status == "done"
    assert retry_failed(ctx, cid) == 4
    view = get_campaign(ctx, cid)
    assert view.status == "running" and view.counts["queued"] == 4
    # They are claimable again, with a fresh count of attempts.
    claimed = claim_batch(ctx.engine, "w1", ctx.clock.now(), 60, 10)
    assert len(claimed) == 4 and {c.attempts for c in claimed} == {1}
    assert retry_failed(ctx, cid) == 0


def test_retry_needs_the_role(ctx: Context, engine, config, clock) -> None:  # type: ignore[no-untyped-def]
    _residents(ctx, 1)
    cid = _send(ctx)
    viewer = make_context(engine, config, clock, role=Role.VIEWER)
    with pytest.raises(Exception, match="operator"):
        retry_failed(viewer, cid)
    with pytest.raises(CampaignError):
        retry_failed(ctx, 999)
