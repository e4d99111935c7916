"""Delivery reports applied in batches: one transaction for many, each request
answered only once its own reports are committed."""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlmodel import Session, col, select

from console.clock import FrozenClock
from console.contacts.service import ContactInput, add_contact
from console.context import Context
from console.sending.campaigns import Audience, CampaignRequest, create_campaign
from console.sending.providers.base import DeliveryReport, SendResult
from console.sending.queue import apply_reports, claim_batch, record_results
from console.sending.report_writer import ReportWriter
from storage.models import DeliveryEvent, Message


def _submitted(ctx: Context, clock: FrozenClock, count: int) -> list[int]:
    for i in range(count):
        add_contact(ctx, ContactInput(number=f"06 21 {i // 100 % 100:02d} {i % 100:02d} 00"))
    create_campaign(
        ctx,
        CampaignRequest(
            topic="alertes",
            text="Essai",
            sender_id="MAIRIE",
            audience=Audience(everyone=True),
            kind="planned",
        ),
    )
    claimed = claim_batch(ctx.engine, "w1", clock.now(), 60, count)
    record_results(
        ctx.engine,
        "w1",
        claimed,
        [SendResult(c.message_id, "submitted", f"ref-{c.message_id}") for c in claimed],
        clock.now(),
        max_attempts=5,
    )
    return [c.message_id for c in claimed]


def _states(ctx: Context) -> Counter[str]:
    with Session(ctx.engine) as session:
        return Counter(session.exec(select(Message.state)))


def test_a_batch_applies_in_order_like_one_by_one(ctx: Context, clock: FrozenClock) -> None:
    first, second = _submitted(ctx, clock, 2)
    applied = apply_reports(
        ctx.engine,
        [
            DeliveryReport(first, "", "delivered", "DELIVRD"),
            # The same report twice, then an older one: neither moves it back.
            DeliveryReport(first, "", "delivered", "DELIVRD"),
            DeliveryReport(first, "", "submitted", "ACK"),
            DeliveryReport(None, f"ref-{second}", "undelivered", "UNDELIV"),
            DeliveryReport(None, "unknown-ref", "delivered"),
        ],
        clock.now(),
    )
    assert applied == [True, False, False, True, False]
    assert _states(ctx) == Counter({"delivered": 1, "undelivered": 1})
    with Session(ctx.engine) as session:
        events = session.exec(
            select(DeliveryEvent.applied).where(col(DeliveryEvent.source) == "report")
        ).all()
    assert events == [True, False, False, True]


def test_concurrent_requests_share_transactions_and_all_commit(
    ctx: Context, clock: FrozenClock
) -> None:
    ids = _submitted(ctx, clock, 300)
    writer = ReportWriter(ctx.engine, clock, max_batch=50)

    async def flood() -> list[list[bool]]:
        return await asyncio.gather(
            *(writer.apply([DeliveryReport(mid, "", "delivered", "DELIVRD")]) for mid in ids)
        )

    answers = asyncio.run(flood())
    assert answers == [[True]] * 300
    assert _states(ctx) == Counter({"delivered": 300})


def test_one_bad_report_fails_only_its_own_request(ctx: Context, clock: FrozenClock) -> None:
    good, other = _submitted(ctx, clock, 2)
    writer = ReportWriter(ctx.engine, clock)
    # An id no database column holds (the endpoint refuses it first) stands for any
    # report the database refuses.
    bad = DeliveryReport(2**70, "", "delivered")

    async def mixed() -> list[object]:
        return await asyncio.gather(
            writer.apply([DeliveryReport(good, "", "delivered")]),
            writer.apply([bad]),
            writer.apply([DeliveryReport(other, "", "delivered")]),
            return_exceptions=True,
        )

    first, middle, last = asyncio.run(mixed())
    assert first == [True] and last == [True]
    assert _states(ctx) == Counter({"delivered": 2})
    assert isinstance(middle, Exception)
