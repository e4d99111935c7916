"""Two writers on the same messages: the worker committing the provider's answers
while the endpoint applies the delivery reports for them (PostgreSQL locks rows, so
the order they lock in matters), and what the worker does when it loses such a race."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from datetime import timedelta

import httpx
import psycopg
import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from console.clock import FrozenClock
from console.contacts.service import ContactInput, add_contact
from console.context import Context
from console.sending.campaigns import Audience, CampaignRequest, create_campaign
from console.sending.providers.base import DeliveryReport, SendResult
from console.sending.queue import apply_reports, claim_batch, record_results
from console.sending.worker import Worker
from storage.faults import lost_race, passing_fault
from tests.unit.test_worker import RecordingProvider

ROUNDS = 8
PER_ROUND = 40


def _both(first: Callable[[], object], second: Callable[[], object]) -> list[BaseException]:
    """Run the two at the same instant; what each raised."""
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def run(work: Callable[[], object]) -> None:
        start.wait()
        try:
            work()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return failures


def _extend(into: list[bool], work: Callable[..., list[bool]], *args: object) -> None:
    into.extend(work(*args))


def _postgresql(engine: Engine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(False)


@pytest.mark.postgresql
def test_a_deadlock_is_a_lost_race_not_a_fault(engine: Engine, ctx: Context) -> None:
    """A real deadlock from the driver: the worker makes the work again instead of
    stopping or announcing a pause."""
    add_contact(ctx, ContactInput(number="06 30 00 00 01"))
    add_contact(ctx, ContactInput(number="06 30 00 00 02"))
    url = _postgresql(engine)
    ready = threading.Barrier(2)

    def cross(first: int, second: int) -> None:
        with psycopg.connect(url) as conn:
            conn.execute("SELECT id FROM contact WHERE id = %s FOR UPDATE", (first,))
            ready.wait()
            conn.execute("SELECT id FROM contact WHERE id = %s FOR UPDATE", (second,))

    failures = _both(lambda: cross(1, 2), lambda: cross(2, 1))
    assert len(failures) == 1, failures
    (deadlock,) = failures
    assert isinstance(deadlock, psycopg.errors.DeadlockDetected)
    assert lost_race(deadlock)
    assert passing_fault(deadlock) is None
    assert lost_race(OperationalError("UPDATE", {}, deadlock))


def test_a_held_lock_is_not_a_lost_race() -> None:
    assert not lost_race(ValueError("database is locked"))


@pytest.mark.postgresql
def test_reports_and_answers_for_the_same_messages_never_deadlock(
    ctx: Context, clock: FrozenClock
) -> None:
    """The answers lock their rows by ascending id; reports arriving in the opposite
    order (Kannel's burst at the end of a big send) lock theirs the same way."""
    for i in range(ROUNDS * PER_ROUND):
        add_contact(ctx, ContactInput(number=f"06 31 00 {i // 100:02d} {i % 100:02d}"))
    create_campaign(
        ctx,
        CampaignRequest(
            topic="alertes", text="Essai", sender_id="MAIRIE", audience=Audience(everyone=True)
        ),
    )
    now = clock.now()
    delivered = 0
    for _ in range(ROUNDS):
        claimed = claim_batch(ctx.engine, "w1", now, 60, PER_ROUND)
        assert len(claimed) == PER_ROUND
        answers = [SendResult(c.message_id, "submitted", f"r{c.message_id}") for c in claimed]
        reports = [
            DeliveryReport(c.message_id, f"r{c.message_id}", "delivered", "DELIVRD")
            for c in reversed(claimed)
        ]
        applied: list[bool] = []
        answer = functools.partial(record_results, ctx.engine, "w1", claimed, answers, now, 3)
        report = functools.partial(
            _extend, applied, apply_reports, ctx.engine, reports, now + timedelta(seconds=1)
        )
        assert _both(answer, report) == []
        delivered += sum(applied)
    assert delivered == ROUNDS * PER_ROUND


async def test_the_worker_makes_again_a_transaction_that_lost_a_race(ctx: Context) -> None:
    class Deadlock(Exception):
        sqlstate = "40P01"

    calls: list[int] = []

    def work() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("UPDATE message", {}, Deadlock("deadlock detected"))
        return "done"

    async with httpx.AsyncClient() as client:
        worker = Worker(ctx, RecordingProvider(), client, "w1", asyncio.Event())
        assert await worker._in_db(work) == "done"
    assert len(calls) == 3
    assert worker.database_fault is None  # nothing to tell the operator
