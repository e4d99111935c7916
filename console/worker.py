"""The sender: claim, send through the provider, commit the answer; repeat.

The database is the only shared state: a worker killed at any instant loses nothing
(see console.queue), and a dropped SSH session never stops a send because the worker
is its own process. Database calls run in a thread so the event loop keeps serving
the delivery-report endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from sqlalchemy import update
from sqlmodel import col

from console.context import Context
from console.numbers import mask
from console.providers.base import OutgoingSms, Provider, ProviderAuthError, SendResult
from console.queue import (
    Claimed,
    apply_report,
    claim_batch,
    expire_leases,
    finish_campaigns,
    record_results,
    release,
)
from console.ratelimit import TokenBucket
from console.workers import acquire_sender_lease, beat, forget, release_sender_lease
from storage.engine import is_sqlite, write_session
from storage.models import Campaign

log = logging.getLogger("tocsin.worker")

IDLE_POLL_S = 0.2
RECORD_LINGER_S = 0.01
# Heartbeat, lease renewal and the lease sweep run this often.
HOUSEKEEPING_S = 2.0


class WorkerBusy(Exception):
    """Another worker holds the SQLite sender lease."""


@dataclass
class WorkerStats:
    sent: int = 0
    batches: int = 0


class Worker:
    def __init__(self, ctx: Context, provider: Provider, client: httpx.AsyncClient,
                 owner: str, stop: asyncio.Event) -> None:
        self.ctx = ctx
        self.provider = provider
        self.client = client
        self.owner = owner
        self.stop = stop
        settings = ctx.config.worker
        self.lease_seconds = settings.lease_seconds
        self.batch_size = settings.batch_size
        self.max_attempts = settings.max_attempts
        self.bucket = TokenBucket(ctx.config.provider.rate)
        # Never claim more than the rate lets us send in half a lease: a message
        # waiting its turn must not see its lease run out before its call.
        self.claim_size = max(1, min(self.batch_size,
                                     int(ctx.config.provider.rate * self.lease_seconds / 2)))
        self.refill_below = ctx.config.provider.concurrency * 2
        self.slots = asyncio.Semaphore(ctx.config.provider.concurrency)
        self.stats = WorkerStats()
        self._unreported = 0
        self._last_housekeeping = -1e9
        self._started = False
        self._pending: list[tuple[Sequence[Claimed], Sequence[SendResult],
                                  asyncio.Future[dict[int, str]]]] = []
        self._wake = asyncio.Event()
        self._closing = False

    async def start(self) -> None:
        """Take the sender lease (SQLite) and announce ourselves; raises WorkerBusy."""
        await self._housekeeping(first=True)
        self._started = True

    async def run(self) -> None:
        if not self._started:
            await self.start()
        recorder = asyncio.create_task(self._recorder())
        inflight: set[asyncio.Task[None]] = set()
        try:
            while not self.stop.is_set():
                # Claim the next batch while the last few calls are still out, so the
                # provider never waits on our database round trip.
                if len(inflight) <= self.refill_below:
                    claimed = await self.tick(inflight)
                    if claimed:
                        continue
                    if not inflight:
                        await self._idle()
                        continue
                done, _ = await asyncio.wait(inflight, timeout=IDLE_POLL_S,
                                             return_when=asyncio.FIRST_COMPLETED)
                inflight -= done
                for task in done:
                    task.result()
        finally:
            # Stop claiming; the calls in flight finish and are recorded.
            if inflight:
                await asyncio.gather(*inflight, return_exceptions=True)
            self._closing = True
            self._wake.set()
            await recorder
            await asyncio.to_thread(self.leave)

    async def _record(self, chunk: Sequence[Claimed],
                      results: Sequence[SendResult]) -> dict[int, str]:
        """Hand answers to the recorder; returns once they are committed."""
        done: asyncio.Future[dict[int, str]] = asyncio.get_running_loop().create_future()
        self._pending.append((chunk, results, done))
        self._wake.set()
        return await done

    async def _recorder(self) -> None:
        """The one writer of answers: what arrived while a commit ran goes in the next.

        Answers are committed within milliseconds of the provider's reply, in few
        transactions, and the send tasks never queue on SQLite's write lock.
        """
        while True:
            await self._wake.wait()
            if not self._closing:
                # Let answers that are a few milliseconds apart share one commit.
                await asyncio.sleep(RECORD_LINGER_S)
            self._wake.clear()
            batch, self._pending = self._pending, []
            if not batch:
                if self._closing:
                    return
                continue
            claimed = [c for chunk, _, _ in batch for c in chunk]
            results = [r for _, answers, _ in batch for r in answers]
            try:
                states = await asyncio.to_thread(
                    record_results, self.ctx.engine, self.owner, claimed, results,
                    self.ctx.clock.now(), self.max_attempts)
            except Exception as exc:
                for _, _, done in batch:
                    done.set_exception(exc)
                continue
            for chunk, _, done in batch:
                ids = {c.message_id for c in chunk}
                done.set_result({m: s for m, s in states.items() if m in ids})

    async def _idle(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), timeout=IDLE_POLL_S)

    def leave(self) -> None:
        """Give the lease back and drop our heartbeat."""
        if is_sqlite(self.ctx.engine):
            release_sender_lease(self.ctx.engine, self.owner)
        forget(self.ctx.engine, self.owner)

    async def _housekeeping(self, first: bool = False) -> None:
        loop = asyncio.get_running_loop()
        if not first and loop.time() - self._last_housekeeping < HOUSEKEEPING_S:
            return
        self._last_housekeeping = loop.time()
        engine, now = self.ctx.engine, self.ctx.clock.now()
        if is_sqlite(engine):
            holder = await asyncio.to_thread(
                acquire_sender_lease, engine, self.owner, now, self.lease_seconds)
            if holder is not None:
                raise WorkerBusy(
                    f"another worker ({holder.owner}) is sending on this SQLite database "
                    f"until {holder.expires_at:%H:%M:%S} UTC; use PostgreSQL for several")
        await asyncio.to_thread(beat, engine, self.owner, self.provider.name, now,
                                self._unreported)
        self._unreported = 0
        expired = await asyncio.to_thread(expire_leases, engine, now)
        if expired:
            log.warning("%d message(s) left sending past their lease: now uncertain", expired)
        await self._poll_reports()
        await asyncio.to_thread(finish_campaigns, engine)

    async def _poll_reports(self) -> None:
        """Providers without a callback (the simulated one) hand reports over here."""
        pending = getattr(self.provider, "pending_reports", None)
        if pending is None:
            return
        loop = asyncio.get_running_loop()
        for report in pending(loop.time()):
            await asyncio.to_thread(apply_report, self.ctx.engine, report, self.ctx.clock.now())

    async def tick(self, inflight: set[asyncio.Task[None]]) -> int:
        """Claim a batch and start sending it; returns how many were claimed."""
        await self._housekeeping()
        claimed = await asyncio.to_thread(
            claim_batch, self.ctx.engine, self.owner, self.ctx.clock.now(),
            self.lease_seconds, self.claim_size)
        if not claimed:
            return 0
        size = max(self.provider.max_batch, 1)
        for i in range(0, len(claimed), size):
            inflight.add(asyncio.create_task(self._send_chunk(claimed[i:i + size])))
        self.stats.batches += 1
        return len(claimed)

    async def _send_chunk(self, chunk: Sequence[Claimed]) -> None:
        await self.bucket.take(len(chunk))
        outgoing = [OutgoingSms(c.message_id, c.number, c.text, c.sender_id) for c in chunk]
        async with self.slots:
            try:
                results = await self.provider.send(self.client, outgoing)
            except ProviderAuthError as exc:
                await asyncio.to_thread(self._stop_campaigns, chunk, str(exc))
                return
            except Exception as exc:
                log.exception("provider %s raised; messages stay uncertain", self.provider.name)
                results = [SendResult(c.message_id, "unknown", reason=f"{type(exc).__name__}: "
                                      f"{exc}") for c in chunk]
        answered = {r.message_id for r in results}
        results = list(results) + [
            SendResult(c.message_id, "unknown", reason="provider gave no answer for it")
            for c in chunk if c.message_id not in answered
        ]
        states = await self._record(chunk, results)
        sent = sum(1 for s in states.values() if s == "submitted")
        self.stats.sent += sent
        self._unreported += sent
        for result in results:
            if result.outcome not in ("submitted", "retry"):
                log.info("message %d to %s: %s (%s)", result.message_id,
                         mask(next(c.number for c in chunk if c.message_id == result.message_id)),
                         result.outcome, result.reason)

    def _stop_campaigns(self, chunk: Sequence[Claimed], reason: str) -> None:
        """Refused credentials would fail every message: pause the campaigns instead."""
        now = self.ctx.clock.now()
        release(self.ctx.engine, self.owner, chunk, now, reason)
        with write_session(self.ctx.engine) as session:
            session.execute(
                update(Campaign)
                .where(col(Campaign.id).in_({c.campaign_id for c in chunk}))
                .values(status="paused", status_reason=reason[:500])
            )
        log.error("provider refused credentials, campaigns paused: %s", reason)
