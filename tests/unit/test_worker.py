"""The worker loop against a provider double that records what it is sent."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import httpx
import pytest
from sqlmodel import Session, select

from console.contacts.service import ContactInput, add_contact
from console.context import Context
from console.sending.campaigns import Audience, CampaignRequest, create_campaign
from console.sending.providers.base import (
    DeliveryReport,
    HttpRequest,
    InboundSms,
    OutgoingSms,
    ProviderAuthError,
    SendResult,
)
from console.sending.ratelimit import TokenBucket
from console.sending.worker import Worker, WorkerBusy
from console.sending.workers import alive_workers
from storage.models import Campaign, Message


class RecordingProvider:
    name = "recording"

    def __init__(
        self, max_batch: int = 10, fail_with: Exception | None = None, outcome: str = "submitted"
    ) -> None:
        self.max_batch = max_batch
        self.sent: Counter[int] = Counter()
        self.batches: list[int] = []
        self.fail_with = fail_with
        self.outcome = outcome

    async def send(
        self, client: httpx.AsyncClient, batch: Sequence[OutgoingSms]
    ) -> list[SendResult]:
        assert len(batch) <= self.max_batch
        self.batches.append(len(batch))
        if self.fail_with is not None:
            raise self.fail_with
        for sms in batch:
            self.sent[sms.message_id] += 1
        return [
            SendResult(
                s.message_id,
                self.outcome,
                provider_ref=f"r{s.message_id}",  # type: ignore[arg-type]
                reason="" if self.outcome == "submitted" else "refused",
            )
            for s in batch
        ]

    def parse_report(self, request: HttpRequest) -> list[DeliveryReport]:
        return []

    def parse_inbound(self, request: HttpRequest) -> InboundSms | None:
        return None


def _campaign(ctx: Context, count: int) -> int:
    for i in range(count):
        add_contact(ctx, ContactInput(number=f"06 30 00 {i // 100:02d} {i % 100:02d}"))
    return create_campaign(
        ctx,
        CampaignRequest(
            topic="alertes", text="Essai", sender_id="MAIRIE", audience=Audience(everyone=True)
        ),
    ).campaign_id


async def _run_until_idle(ctx: Context, provider: RecordingProvider, owner: str = "w1") -> Worker:
    stop = asyncio.Event()
    async with httpx.AsyncClient() as client:
        worker = Worker(ctx, provider, client, owner, stop)
        # Generous rate: this test is about the ledger, not the pace.
        worker.bucket = TokenBucket(10_000)
        # Started first: its first housekeeping may enqueue (a half-made alert), and
        # the loop below must not see an empty queue before it has run.
        with contextlib.suppress(WorkerBusy):
            await worker.start()
        task = asyncio.create_task(worker.run())
        for _ in range(200):
            await asyncio.sleep(0.02)
            with Session(ctx.engine) as session:
                busy = session.exec(
                    select(Message).where(Message.state.in_(("queued", "sending")))
                ).first()  # type: ignore[attr-defined]
                # A campaign left half enqueued is the worker's to complete first.
                unfinished = session.exec(
                    select(Campaign).where(Campaign.enqueued == False)  # noqa: E712
                ).first()
            if (busy is None and unfinished is None) or task.done():
                break
        stop.set()
        await task
    return worker


def _states(ctx: Context) -> Counter[str]:
    with Session(ctx.engine) as session:
        return Counter(m.state for m in session.exec(select(Message)))


async def test_every_message_sent_once_in_provider_sized_batches(ctx: Context) -> None:
    _campaign(ctx, 45)
    provider = RecordingProvider(max_batch=10)
    worker = await _run_until_idle(ctx, provider)
    assert _states(ctx) == Counter(submitted=45)
    assert len(provider.sent) == 45 and set(provider.sent.values()) == {1}
    assert max(provider.batches) == 10
    assert worker.stats.sent == 45


async def test_refused_credentials_pause_the_campaign(ctx: Context) -> None:
    campaign_id = _campaign(ctx, 5)
    provider = RecordingProvider(fail_with=ProviderAuthError("twilio 20003: Authenticate"))
    await _run_until_idle(ctx, provider)
    with Session(ctx.engine) as session:
        campaign = session.get(Campaign, campaign_id)
        messages = session.exec(select(Message)).all()
    assert campaign is not None and campaign.status == "paused"
    assert campaign.status_reason == "twilio 20003: Authenticate"
    # Nothing failed one by one; nothing counted as an attempt.
    assert {m.state for m in messages} == {"queued"} and {m.attempts for m in messages} == {0}


async def test_a_provider_bug_leaves_messages_uncertain(ctx: Context) -> None:
    _campaign(ctx, 3)
    await _run_until_idle(ctx, RecordingProvider(fail_with=RuntimeError("boom")))
    assert _states(ctx) == Counter(uncertain=3)


async def test_permanent_refusals_end_with_the_reason(ctx: Context) -> None:
    _campaign(ctx, 3)
    await _run_until_idle(ctx, RecordingProvider(outcome="rejected"))
    with Session(ctx.engine) as session:
        assert {(m.state, m.reason) for m in session.exec(select(Message))} == {
            ("rejected", "refused")
        }


async def test_second_worker_on_sqlite_says_who_holds_the_lease(ctx: Context) -> None:
    """On SQLite one worker sends; PostgreSQL takes several."""
    sqlite = ctx.engine.dialect.name == "sqlite"
    _campaign(ctx, 1)
    stop = asyncio.Event()
    async with httpx.AsyncClient() as client:
        first = Worker(ctx, RecordingProvider(), client, "host-a:1:aaaa", stop)
        task = asyncio.create_task(first.run())
        await asyncio.sleep(0.1)
        second_stop = asyncio.Event()
        second = Worker(ctx, RecordingProvider(), client, "host-b:2:bbbb", second_stop)
        if sqlite:
            with pytest.raises(WorkerBusy, match="host-a:1:aaaa"):
                await second.run()
            expected = ["host-a:1:aaaa"]
        else:
            second_task = asyncio.create_task(second.run())
            await asyncio.sleep(0.1)
            expected = ["host-a:1:aaaa", "host-b:2:bbbb"]
        assert [w.owner for w in alive_workers(ctx.engine, ctx.clock.now(), 60)] == expected
        stop.set()
        second_stop.set()
        await task
        if not sqlite:
            await second_task
    assert alive_workers(ctx.engine, ctx.clock.now(), 60) == []


async def test_token_bucket_paces_batches() -> None:
    now = [0.0]
    bucket = TokenBucket(10, monotonic=lambda: now[0])
    assert bucket.delay_for(10) == 0
    await bucket.take(10)
    assert bucket.delay_for(5) == pytest.approx(0.5)
    now[0] += 1.0
    assert bucket.delay_for(10) == 0


def test_a_dead_holder_on_this_host_frees_the_sqlite_lease(ctx: Context) -> None:
    import socket
    import subprocess
    import sys

    from console.sending.workers import acquire_sender_lease

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead_owner = f"{socket.gethostname()}:{gone.pid}:dead00"
    alive_owner = f"{socket.gethostname()}:{os.getpid()}:alive0"
    now = ctx.clock.now()
    assert acquire_sender_lease(ctx.engine, dead_owner, now, 60) is None
    assert acquire_sender_lease(ctx.engine, "me:1:x", now, 60) is None  # taken over
    assert acquire_sender_lease(ctx.engine, alive_owner, now, 60) is not None


async def test_what_is_held_in_memory_fits_in_half_a_lease(ctx: Context) -> None:
    """Claimed messages wait their turn: none may see its lease expire before its call."""
    config = ctx.config.model_copy(
        update={
            "provider": ctx.config.provider.model_copy(update={"rate": 2.0}),
            "worker": ctx.config.worker.model_copy(update={"lease_seconds": 30}),
        }
    )
    async with httpx.AsyncClient() as client:
        worker = Worker(
            replace(ctx, config=config), RecordingProvider(), client, "w1", asyncio.Event()
        )
    assert worker.claim_size + worker.refill_below <= 2.0 * 30 / 2
    assert worker.claim_size >= 1


async def test_a_stop_sends_and_records_what_is_already_claimed(ctx: Context) -> None:
    _campaign(ctx, 30)
    provider = RecordingProvider(max_batch=1)
    stop = asyncio.Event()
    async with httpx.AsyncClient() as client:
        worker = Worker(ctx, provider, client, "w1", stop)
        worker.bucket = TokenBucket(10_000)
        await worker.start()
        claimed = await worker.tick()
        stop.set()
        await worker.run()
    # Nothing more is claimed after the stop, and nothing claimed is left `sending`.
    assert claimed == 30
    assert _states(ctx) == Counter(submitted=30)
    assert len(provider.sent) == 30 and worker.stats.sent == 30


async def test_the_worker_completes_an_enqueue_its_console_left(
    ctx: Context, clock, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from console.sending import campaigns
    from console.sending.queue import claim_batch, finish_campaigns, record_results

    monkeypatch.setattr(campaigns, "FIRST_CHUNK", 4)
    monkeypatch.setattr(campaigns, "CHUNK", 5)
    for i in range(12):
        add_contact(ctx, ContactInput(number=f"06 31 00 00 {i:02d}"))
    real_chunk = campaigns._enqueue_chunk
    calls = 0

    def console_dies(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt  # SIGHUP: the SSH session dropped
        return real_chunk(*args, **kwargs)

    monkeypatch.setattr(campaigns, "_enqueue_chunk", console_dies)
    with pytest.raises(KeyboardInterrupt):
        create_campaign(
            ctx,
            CampaignRequest(
                topic="alertes",
                text="Crue",
                sender_id="MAIRIE",
                audience=Audience(everyone=True),
                kind="emergency",
            ),
        )
    monkeypatch.setattr(campaigns, "_enqueue_chunk", real_chunk)
    # The first chunk goes out, but the campaign is not done: the rest is missing.
    claimed = claim_batch(ctx.engine, "w0", clock.now(), 60, 10)
    record_results(
        ctx.engine,
        "w0",
        claimed,
        [SendResult(c.message_id, "submitted") for c in claimed],
        clock.now(),
        5,
    )
    assert len(claimed) == 4 and finish_campaigns(ctx.engine) == 0
    clock.advance(timedelta(minutes=1))
    provider = RecordingProvider()
    await _run_until_idle(ctx, provider)
    assert _states(ctx) == Counter(submitted=12)
    assert len(provider.sent) == 8 and set(provider.sent.values()) == {1}
    with Session(ctx.engine) as session:
        campaign = session.exec(select(Campaign)).one()
    assert campaign.enqueued
