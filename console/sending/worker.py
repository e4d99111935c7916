"""The sender: claim, send through the provider, commit the answer; repeat.

The database is the only shared state: a worker killed at any instant loses nothing
(see console.sending.queue), and a dropped SSH session never stops a send because the worker
is its own process. Database calls run in a thread so the event loop keeps serving
the delivery-report endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import httpx
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError
from sqlmodel import col

from console.audit import append_audit
from console.contacts.numbers import mask
from console.context import Context
from console.sending.campaigns import complete_enqueue, incomplete_campaigns
from console.sending.hand import Hand
from console.sending.providers.base import OutgoingSms, Provider, ProviderAuthError, SendResult
from console.sending.queue import (
    ACTIVE,
    Claimed,
    apply_reports,
    claim_batch,
    expire_leases,
    finish_campaigns,
    record_results,
    release,
    skip_cancelled,
    watch,
)
from console.sending.ratelimit import TokenBucket
from console.sending.states import QUEUED, SKIPPED, SUBMITTED, CampaignStatus
from console.sending.tallies import fold_tallies
from console.sending.workers import acquire_sender_lease, beat, forget, release_sender_lease
from storage.engine import is_sqlite, write_session
from storage.faults import DatabaseFile, Fault, database_errors, lost_race, passing_fault
from storage.models import Campaign

log = logging.getLogger("tocsin.worker")

T = TypeVar("T")

# An idle worker looks for new messages this often: it bounds how late the first SMS
# of an alert leaves (an empty claim costs a fraction of a millisecond).
IDLE_POLL_S = 0.1
# A busy worker looks this often for a new alert and for a campaign paused or
# cancelled under it (one small read of the campaign table, on its own thread so that
# it never waits behind the commits of answers).
WATCH_S = 0.05
# One provider call carries at most this many seconds of the provider's rate.
CALL_S = 0.1
# An alert whose quick claim found nothing due (all claimed elsewhere, or waiting to
# be retried) is not looked for again before this.
DRY_S = 1.0
RECORD_LINGER_S = 0.01
# Heartbeat, lease renewal and the lease sweep run this often.
HOUSEKEEPING_S = 2.0
# An emergency still being enqueued after this long lost its console (a dropped SSH
# session): the worker finishes the enqueue.
STALLED_ENQUEUE_S = 30
# Delivery reports applied per transaction.
REPORT_BATCH = 500


# A database that is locked, full or unreachable is asked again after this long,
# doubling up to the maximum: an alert resumes within seconds of the trouble passing.
FAULT_RETRY_MIN_S = 0.5
# After losing a race for rows to another transaction (PostgreSQL).
CONFLICT_RETRY_S = 0.01
FAULT_RETRY_MAX_S = 5.0
RESUME_AFTER_S = 3.0


class WorkerBusy(Exception):
    """Another worker holds the SQLite sender lease."""


class DatabaseGone(Exception):
    """The SQLite file was deleted or replaced under the running worker: sending on
    would write into a file nobody reads."""


@dataclass
class WorkerStats:
    sent: int = 0
    batches: int = 0


class Worker:
    def __init__(
        self,
        ctx: Context,
        provider: Provider,
        client: httpx.AsyncClient,
        owner: str,
        stop: asyncio.Event,
    ) -> None:
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
        self.concurrency = max(1, ctx.config.provider.concurrency)
        # Claimed messages wait their turn in memory, and none may see its lease run
        # out before its call: what is held (a claim plus what was left when it was
        # taken) stays within what the rate lets us send in half a lease.
        budget = self.budget = max(1, int(ctx.config.provider.rate * self.lease_seconds / 2))
        # The next claim starts with a quarter of a batch still to send: its round
        # trip (queued behind a commit, slowed by the GIL) ends before they run out.
        self.refill_below = min(max(self.concurrency * 2, self.batch_size // 4), budget // 2)
        self.claim_size = max(1, min(self.batch_size, budget - self.refill_below))
        self.stats = WorkerStats()
        self._unreported = 0
        self._last_housekeeping = -1e9
        self._started = False
        # Claimed, committed `sending`, not yet handed to the provider: per campaign,
        # served in turns (console.sending.hand).
        self._ready = Hand()
        # Taken by a sender for its call (per campaign): counted in what we hold.
        self._pending: Counter[int] = Counter()
        # Campaigns paused or cancelled while we hold messages of theirs -> status.
        self._stopped: dict[int, str] = {}
        # Alerts whose quick claim found nothing due -> when to look again.
        self._dry: dict[int, float] = {}
        # The watcher's database writes under way, and its quick claim among them.
        self._chores: set[asyncio.Task[None]] = set()
        self._quick: asyncio.Task[None] | None = None
        # Answers waiting for the recorder's next commit.
        self._answers: list[tuple[Sequence[Claimed], list[SendResult]]] = []
        self._wake = asyncio.Event()  # the recorder has answers
        self._work = asyncio.Event()  # the senders have messages (or must finish)
        self._nudge = asyncio.Event()  # the claimer: few messages left, stop, a failure
        self._closing = False  # senders: finish once nothing claimed is left
        self._senders_done = False  # recorder: finish once every answer is committed
        # One thread for all of our database work: claims and commits queue behind
        # each other here rather than on SQLite's busy handler, which sleeps whole
        # milliseconds, and one thread contends for the GIL instead of several.
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tocsin-ledger")
        # PostgreSQL: claims on a thread (and a connection) of their own, so that the
        # next batch never waits behind the commit of answers (each commit waits for
        # the WAL's fsync there). They cannot take each other's rows: an answer's
        # rows are locked `sending`, a claim takes `queued` ones and skips locked
        # rows. SQLite has one writer at a time anyway: one thread.
        self._claims = (
            self._db
            if is_sqlite(ctx.engine)
            else ThreadPoolExecutor(max_workers=1, thread_name_prefix="tocsin-claims")
        )
        # Why the database refuses work right now (None: it does not); the worker
        # waits it out instead of dying.
        self.database_fault: Fault | None = None
        self._fault_began = 0.0
        self._last_fault = 0.0
        self._file = DatabaseFile.of(ctx.engine)
        self._reads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tocsin-watch")

    async def _in_db(self, fn: Callable[..., T], *args: object) -> T:
        """Run database work on the ledger thread, waiting out a locked, full or
        unreachable database: each call is one transaction, rolled back whole when
        it fails, so it is simply made again."""
        return await self._on(self._db, fn, *args)

    async def _claim(self, *args: object) -> list[Claimed]:
        """`claim_batch` on the claims' thread, waited out as `_in_db`."""
        return await self._on(self._claims, claim_batch, *args)

    async def _on(self, thread: ThreadPoolExecutor, fn: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        delay = FAULT_RETRY_MIN_S
        while True:
            try:
                result = await loop.run_in_executor(thread, functools.partial(fn, *args))
            except database_errors() as exc:
                if lost_race(exc) and not self.stop.is_set():
                    # Another writer (a report, a second worker) locked the same rows
                    # in another order; ours was rolled back whole: again, at once.
                    log.info("database conflict with another writer: the transaction is made again")
                    await asyncio.sleep(CONFLICT_RETRY_S)
                    continue
                fault = passing_fault(exc)
                if not self.stop.is_set():
                    # Whatever the error says (a locked file, or "no such table" from
                    # a new connection that found no file and made an empty one), a
                    # file deleted or replaced underneath is the reason to give.
                    self._check_file()
                if fault is None or self.stop.is_set():
                    raise
                self._paused(fault, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), timeout=delay)
                delay = min(delay * 2, FAULT_RETRY_MAX_S)
                continue
            if self.database_fault is not None and self._steady(loop.time()):
                self._resumed()
            return result

    def _steady(self, now: float) -> bool:
        # On a full disk some writes still get through (SQLite reuses its journal's
        # space) while most fail: resumed only once nothing failed for a while.
        return now - self._last_fault >= RESUME_AFTER_S

    async def in_ledger(self, fn: Callable[..., T], *args: object) -> T:
        """Database work of the worker's owner (its audit entries), waited out like
        the worker's own."""
        return await self._in_db(fn, *args)

    def _check_file(self) -> None:
        problem = self._file.problem() if self._file is not None else None
        if problem is not None:
            log.critical("%s: the worker stops; restore the database or a backup", problem)
            raise DatabaseGone(problem)

    def _paused(self, fault: Fault, exc: BaseException) -> None:
        self._last_fault = asyncio.get_running_loop().time()
        if self.database_fault == fault:
            return
        if self.database_fault is None:
            self._fault_began = asyncio.get_running_loop().time()
        self.database_fault = fault
        said = str(exc.orig if isinstance(exc, DBAPIError) else exc).strip()
        first = said.splitlines()[0] if said else fault
        log.warning(
            "database %s (%s): sending paused; the worker waits and resumes by itself",
            fault,
            first,
        )

    def _resumed(self) -> None:
        waited = asyncio.get_running_loop().time() - self._fault_began
        log.warning(
            "database usable again after %.0f s (%s): sending resumed",
            waited,
            self.database_fault,
        )
        self.database_fault = None

    async def start(self) -> None:
        """Take the sender lease (SQLite) and announce ourselves; raises WorkerBusy."""
        try:
            await self._housekeeping(first=True)
        except BaseException:
            self._db.shutdown(wait=False)
            self._claims.shutdown(wait=False)
            self._reads.shutdown(wait=False)
            raise
        self._started = True

    async def run(self) -> None:
        if not self._started:
            await self.start()
        # A few long-lived senders take messages from one queue in memory: no task per
        # message, and the next claim is made while the senders still have some left,
        # so the provider never waits on our database round trip.
        recorder = asyncio.create_task(self._recorder())
        senders = [asyncio.create_task(self._sender()) for _ in range(self.concurrency)]
        watcher = asyncio.create_task(self._watcher())
        for task in (recorder, watcher, *senders):
            task.add_done_callback(lambda _: self._nudge.set())
        on_stop = asyncio.create_task(self._nudge_on_stop())
        try:
            while not self.stop.is_set():
                for task in (recorder, watcher, *senders):
                    if task.done():
                        task.result()
                self._nudge.clear()
                await self._housekeeping()
                if len(self._ready) <= self.refill_below:
                    if not await self.tick():
                        await self._idle()
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._nudge.wait(), timeout=IDLE_POLL_S)
        finally:
            on_stop.cancel()
            self.stop.set()  # the watcher too stops claiming
            with contextlib.suppress(Exception):
                await watcher
            # Stop claiming; what is claimed is sent and every answer is recorded.
            if recorder.done():
                # Answers could not be committed: send nothing more. What was claimed
                # goes back to the queue if the database lets us.
                await self._release_ready("worker stopped before sending")
            self._closing = True
            self._work.set()
            await asyncio.gather(*senders, return_exceptions=True)
            self._senders_done = True
            self._wake.set()
            try:
                await recorder
            finally:
                await self._in_db(self.leave)
                self._db.shutdown(wait=False)
                self._claims.shutdown(wait=False)
                self._reads.shutdown(wait=False)
                if self._file is not None:
                    self._file.close()

    async def _nudge_on_stop(self) -> None:
        await self.stop.wait()
        self._nudge.set()

    async def _release_ready(self, reason: str) -> None:
        unsent = self._ready.drain()
        if unsent:
            with contextlib.suppress(Exception):
                await self._in_db(
                    release, self.ctx.engine, self.owner, unsent, self.ctx.clock.now(), reason
                )

    async def _sender(self) -> None:
        ready = self._ready
        while True:
            if not ready:
                if self._closing:
                    return
                self._work.clear()
                await self._work.wait()
                continue
            # The rate limiter first, then the messages: whose turn it is is decided
            # when the call can go, so an alert that has just come is not stuck
            # behind calls already waiting for their tokens. And one call is at most
            # a tenth of a second of the rate: a 100-message call at 20 msg/s would
            # hold the limiter (and every other alert) for 5 s.
            size = max(1, min(self.provider.max_batch, int(self.bucket.rate * CALL_S)))
            size = min(size, len(ready))
            await self.bucket.take(size)
            chunk = ready.take(size)
            if not chunk:
                continue  # another sender emptied the hand meanwhile
            if len(ready) <= self.refill_below:
                self._nudge.set()
            self._pending.update(c.campaign_id for c in chunk)
            try:
                await self._send_chunk(chunk)
            finally:
                self._pending.subtract(c.campaign_id for c in chunk)
                self._pending += Counter()  # drop the zeros

    async def _recorder(self) -> None:
        """The one writer of answers: what arrived while a commit ran goes in the next.

        Answers are committed within milliseconds of the provider's reply, in few
        transactions, and the senders never queue on SQLite's write lock.
        """
        while True:
            if not self._answers:
                if self._senders_done:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if not self._closing:
                # Let answers that are a few milliseconds apart share one commit.
                await asyncio.sleep(RECORD_LINGER_S)
            batch, self._answers = self._answers, []
            claimed = [c for chunk, _ in batch for c in chunk]
            results = [r for _, answers in batch for r in answers]
            states = await self._in_db(
                record_results,
                self.ctx.engine,
                self.owner,
                claimed,
                results,
                self.ctx.clock.now(),
                self.max_attempts,
            )
            sent = sum(1 for state in states.values() if state == SUBMITTED)
            self.stats.sent += sent
            self._unreported += sent

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
        self._check_file()
        engine, now = self.ctx.engine, self.ctx.clock.now()
        if is_sqlite(engine):
            holder = await self._in_db(
                acquire_sender_lease, engine, self.owner, now, self.lease_seconds
            )
            if holder is not None:
                raise WorkerBusy(
                    f"another worker ({holder.owner}) is sending on this SQLite database "
                    f"until {holder.expires_at:%H:%M:%S} UTC; use PostgreSQL for several"
                )
        await self._in_db(beat, engine, self.owner, self.provider.name, now, self._unreported)
        self._unreported = 0
        expired = await self._in_db(expire_leases, engine, now)
        if expired:
            log.warning("%d message(s) left sending past their lease: now uncertain", expired)
        await self._poll_reports()
        stalled = await self._in_db(
            incomplete_campaigns, engine, now - timedelta(seconds=STALLED_ENQUEUE_S)
        )
        for campaign_id in stalled:
            log.warning("campaign #%d was left half enqueued: completing it", campaign_id)
            await self._in_db(complete_enqueue, self.ctx, campaign_id)
        await self._in_db(skip_cancelled, engine, now)
        await self._plan()
        await self._in_db(finish_campaigns, engine)
        await self._in_db(fold_tallies, engine)

    async def _plan(self) -> None:
        """The scheduler: planned occurrences that are due become campaigns (once,
        whatever the other workers do), missed ones wait for the operator."""
        from console.planning.scheduler import tick as scheduler_tick

        try:
            result = await self._in_db(scheduler_tick, self.ctx)
        except Exception:  # the planner must never stop the sender (alerts)
            log.exception("scheduler tick failed; sending goes on")
            return
        if result.sent or result.missed:
            log.info("scheduler: %d occurrence(s) sent, %d missed", result.sent, result.missed)

    async def _watcher(self) -> None:
        try:
            while not self.stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), timeout=WATCH_S)
                for chore in [c for c in self._chores if c.done()]:
                    self._chores.discard(chore)
                    chore.result()  # a failure stops the worker, as any other
                if not self.stop.is_set():
                    await self._watch()
        finally:
            # What was given back or claimed is committed before the worker ends.
            await asyncio.gather(*self._chores, return_exceptions=True)

    def _chore(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Database writes the watcher starts but does not wait for: they queue on
        the ledger thread behind commits (on SQLite, behind a console's write), and
        the watcher must go on looking every 50 ms meanwhile."""
        task = asyncio.create_task(work)
        self._chores.add(task)
        return task

    async def _watch(self) -> None:
        """While we send: give back what we hold of a campaign paused or cancelled,
        and take a first share of an alert we hold nothing of (planned messages in
        hand then go back: they yield to any alert at once)."""
        loop = asyncio.get_running_loop()
        held = self._ready.campaigns() | set(self._pending)
        if not held:
            self._stopped.clear()
            return
        try:
            seen = await loop.run_in_executor(
                self._reads, watch, self.ctx.engine, self.ctx.clock.now(), held
            )
        except database_errors() as exc:
            if passing_fault(exc) is None:
                raise
            return  # the next look, 50 ms on, may find the database back
        self._stopped = {
            cid: seen.statuses.get(cid, "gone")
            for cid in held
            if seen.statuses.get(cid) not in ACTIVE
        }
        if self._stopped:
            dropped = self._ready.drop(self._stopped)
            if dropped:
                self._chore(self._give_back_stopped(dropped, dict(self._stopped)))
        now = loop.time()
        new = {cid for cid in seen.alerts - held if self._dry.get(cid, -1e9) <= now}
        if new and (self._quick is None or self._quick.done()):
            self._quick = self._chore(self._quick_claim(new, now))

    async def _quick_claim(self, new: set[int], now: float) -> None:
        """A first share of alerts we hold nothing of, without waiting for our hand
        to empty."""
        # Room within the lease budget (see __init__): the last claimed of what we
        # hold goes back to the queue, to be claimed again in its turn.
        want = self.claim_size
        over = len(self._ready) + sum(self._pending.values()) + want - self.budget
        if over > 0:
            await self._give_back(self._ready.give_back(over), "room for an alert")
        claimed = await self._claim(
            self.ctx.engine,
            self.owner,
            self.ctx.clock.now(),
            self.lease_seconds,
            want,
            new,
        )
        got = {c.campaign_id for c in claimed}
        for cid in new - got:
            self._dry[cid] = now + DRY_S
        if not claimed:
            return
        self._ready.add(claimed)
        self._work.set()
        self.stats.batches += 1
        planned = self._ready.planned()
        if planned:
            await self._give_back(self._ready.drop(planned), "an alert goes first")

    async def _give_back(self, claimed: Sequence[Claimed], reason: str) -> None:
        if claimed:
            await self._in_db(
                release, self.ctx.engine, self.owner, claimed, self.ctx.clock.now(), reason
            )

    async def _give_back_stopped(
        self, claimed: Sequence[Claimed], statuses: dict[int, str]
    ) -> None:
        """Claimed messages of a stopped campaign that no provider has seen: skipped
        when it was cancelled, queued again (for the resume) when paused."""
        gone = CampaignStatus.CANCELLED
        cancelled = [c for c in claimed if statuses.get(c.campaign_id) == gone]
        paused = [c for c in claimed if statuses.get(c.campaign_id) != gone]
        now = self.ctx.clock.now()
        if cancelled:
            await self._in_db(
                release, self.ctx.engine, self.owner, cancelled, now, "cancelled", SKIPPED
            )
        if paused:
            await self._in_db(
                release, self.ctx.engine, self.owner, paused, now, "paused before sending", QUEUED
            )

    async def _poll_reports(self) -> None:
        """Providers without a callback (the simulated one) hand reports over here."""
        pending = getattr(self.provider, "pending_reports", None)
        if pending is None:
            return
        loop = asyncio.get_running_loop()
        due = list(pending(loop.time()))
        # In transactions of a few hundred, like the answers: one each was a sixth
        # of the worker's time on a big send.
        for start in range(0, len(due), REPORT_BATCH):
            chunk = due[start : start + REPORT_BATCH]
            await self._in_db(apply_reports, self.ctx.engine, chunk, self.ctx.clock.now())

    async def tick(self) -> int:
        """Claim a batch for the senders; returns how many were claimed."""
        claimed = await self._claim(
            self.ctx.engine,
            self.owner,
            self.ctx.clock.now(),
            self.lease_seconds,
            self.claim_size,
        )
        if not claimed:
            return 0
        for campaign_id in {c.campaign_id for c in claimed}:
            self._stopped.pop(campaign_id, None)  # claimable, so running again
        self._ready.add(claimed)
        self._work.set()
        self.stats.batches += 1
        return len(claimed)

    async def _send_chunk(self, chunk: Sequence[Claimed]) -> None:
        """One provider call; its answers go to the recorder, which commits them at
        once (a worker killed before that leaves them `sending`, then uncertain)."""
        # The last moment to see a pause or a cancel the watcher has just read:
        # what no provider has seen yet goes back.
        if self._stopped and any(c.campaign_id in self._stopped for c in chunk):
            stopped = [c for c in chunk if c.campaign_id in self._stopped]
            await self._give_back_stopped(stopped, dict(self._stopped))
            chunk = [c for c in chunk if c.campaign_id not in self._stopped]
            if not chunk:
                return
        outgoing = [OutgoingSms(c.message_id, c.number, c.text, c.sender_id) for c in chunk]
        try:
            results = await self.provider.send(self.client, outgoing)
        except ProviderAuthError as exc:
            await self._in_db(self._stop_campaigns, chunk, str(exc))
            return
        except Exception as exc:
            log.exception("provider %s raised; messages stay uncertain", self.provider.name)
            results = [
                SendResult(c.message_id, "unknown", reason=f"{type(exc).__name__}: {exc}")
                for c in chunk
            ]
        self._answers.append((chunk, self._complete(chunk, results)))
        self._wake.set()

    def _complete(
        self, chunk: Sequence[Claimed], results: Sequence[SendResult]
    ) -> list[SendResult]:
        """Every message gets an answer; the ones that did not go through are logged."""
        answered = {r.message_id for r in results}
        complete = list(results) + [
            SendResult(c.message_id, "unknown", reason="provider gave no answer for it")
            for c in chunk
            if c.message_id not in answered
        ]
        for result in complete:
            if result.outcome not in ("submitted", "retry"):
                number = next((c.number for c in chunk if c.message_id == result.message_id), "")
                log.info(
                    "message %d to %s: %s (%s)",
                    result.message_id,
                    mask(number),
                    result.outcome,
                    result.reason,
                )
        return complete

    def _stop_campaigns(self, chunk: Sequence[Claimed], reason: str) -> None:
        """Refused credentials would fail every message: pause the campaigns instead."""
        now = self.ctx.clock.now()
        release(self.ctx.engine, self.owner, chunk, now, reason)
        campaigns = sorted({c.campaign_id for c in chunk})
        with write_session(self.ctx.engine) as session:
            for campaign_id in campaigns:
                # Once per campaign, however many senders met the refusal at once
                # (another one's pause, committed first, leaves nothing to change).
                paused = session.execute(
                    update(Campaign)
                    .where(
                        col(Campaign.id) == campaign_id,
                        col(Campaign.status).in_((CampaignStatus.QUEUED, CampaignStatus.RUNNING)),
                    )
                    .values(status=CampaignStatus.PAUSED, status_reason=reason[:500])
                )
                if not paused.rowcount:  # type: ignore[attr-defined]
                    continue
                # A pause nobody typed: the trail says who decided it.
                append_audit(
                    session,
                    at=now,
                    operator=self.ctx.operator,
                    action="campaign.pause",
                    target=f"campaign:{campaign_id}",
                    details={"by": f"provider:{self.provider.name}", "reason": reason[:500]},
                )
        log.error("provider refused credentials, campaigns paused: %s", reason)
