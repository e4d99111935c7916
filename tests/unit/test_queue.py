"""The send queue's transactions: claim, answers, leases, reports."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlmodel import Session, col, select

from console.clock import FrozenClock
from console.contacts.service import ContactInput, add_contact
from console.context import Context
from console.sending.campaigns import Audience, CampaignRequest, create_campaign
from console.sending.providers.base import DeliveryReport, SendResult
from console.sending.queue import (
    apply_report,
    apply_reports,
    backoff,
    claim_batch,
    expire_leases,
    record_results,
    release,
)
from storage.models import DeliveryEvent, Message


def _campaign(ctx: Context, count: int, kind: str = "planned") -> int:
    for i in range(count):
        add_contact(
            ctx, ContactInput(number=f"06 20 {i // 10000:02d} {i // 100 % 100:02d} {i % 100:02d}")
        )
    return create_campaign(
        ctx,
        CampaignRequest(
            topic="alertes",
            text="Essai",
            sender_id="MAIRIE",
            audience=Audience(everyone=True),
            kind=kind,
        ),
    ).campaign_id  # type: ignore[arg-type]


def _states(ctx: Context) -> dict[int, str]:
    with Session(ctx.engine) as session:
        return {m.id: m.state for m in session.exec(select(Message))}  # type: ignore[misc]


def test_claim_commits_sending_under_a_lease(ctx: Context, clock: FrozenClock) -> None:
    _campaign(ctx, 5)
    claimed = claim_batch(ctx.engine, "w1", clock.now(), 60, 3)
    assert len(claimed) == 3 and all(c.attempts == 1 for c in claimed)
    states = _states(ctx)
    assert sorted(states.values()) == ["queued", "queued", "sending", "sending", "sending"]
    with Session(ctx.engine) as session:
        m = session.get(Message, claimed[0].message_id)
        assert m is not None and m.lease_owner == "w1"
        assert m.lease_expires_at == clock.now() + timedelta(seconds=60)


def test_emergencies_go_first(ctx: Context, clock: FrozenClock) -> None:
    _campaign(ctx, 3)
    emergency = create_campaign(
        ctx,
        CampaignRequest(
            topic="alertes",
            text="Crue",
            sender_id="MAIRIE",
            audience=Audience(everyone=True),
            kind="emergency",
        ),
    ).campaign_id
    claimed = claim_batch(ctx.engine, "w1", clock.now(), 60, 3)
    assert {c.campaign_id for c in claimed} == {emergency}
    assert all(c.emergency for c in claimed)


def test_answers_move_the_ledger(ctx: Context, clock: FrozenClock) -> None:
    _campaign(ctx, 5)
    claimed = claim_batch(ctx.engine, "w1", clock.now(), 60, 5)
    ids = [c.message_id for c in claimed]
    results = [
        SendResult(ids[0], "submitted", provider_ref="ref-0"),
        SendResult(ids[1], "retry", reason="HTTP 503", retry_after=30),
        SendResult(ids[2], "rejected", reason="invalid number (21211)"),
        SendResult(ids[3], "unknown", reason="timeout after sending"),
        SendResult(ids[4], "failed", reason="HTTP 400"),
    ]
    states = record_results(ctx.engine, "w1", claimed, results, clock.now(), max_attempts=5)
    assert states == {
        ids[0]: "submitted",
        ids[1]: "queued",
        ids[2]: "rejected",
        ids[3]: "uncertain",
        ids[4]: "failed",
    }
    with Session(ctx.engine) as session:
        retried = session.get(Message, ids[1])
        assert retried is not None and retried.reason == "HTTP 503"
        assert retried.next_attempt_at == clock.now() + timedelta(seconds=30)
        assert session.get(Message, ids[2]).reason == "invalid number (21211)"  # type: ignore[union-attr]
        events = session.exec(select(DeliveryEvent)).all()
    assert len(events) == 5 and all(e.applied for e in events)


def test_retries_stop_at_the_limit(ctx: Context, clock: FrozenClock) -> None:
    _campaign(ctx, 1)
    for attempt in range(1, 4):
        claimed = claim_batch(ctx.engine, "w1", clock.now(), 60, 1)
        assert claimed and claimed[0].attempts == attempt
        record_results(
            ctx.engine,
            "w1",
            claimed,
            [SendResult(claimed[0].message_id, "retry", reason="connection refused")],
            clock.now(),
            max_attempts=3,
        )
        clock.advance(timedelta(minutes=10))
    assert list(_states(ctx).values()) == ["failed"]
    with Session(ctx.engine) as session:
        assert session.exec(select(Message.reason)).one() == (
            "gave up after 3 attempts: connection refused"
        )


def test_backoff_doubles_and_honours_retry_after() -> None:
    assert [backoff(a, None) for a in (1, 2, 3)] == [2.0, 4.0, 8.0]
    assert backoff(20, None) == 300.0
    assert backoff(1, 120) == 120.0


def test_unknown_in_an_emergency_is_resent(ctx: Context, clock: FrozenClock) -> None:
    _campaign(ctx, 1, kind="emergency")
    claimed = claim_batch(ctx.engine, "w1", clock.now(), 60, 1)
    record_results(
        ctx.engine,
        "w1",
        claimed,
        [SendResult(claimed[0].message_id, "unknown", reason="timeout")],
        clock.now(),
        max_attempts=5,
    )
    assert list(_states(ctx).values()) == ["queued"]


def test_expired_lease_makes_uncertain_and_late_answer_is_ignored(
    ctx: Context, clock: FrozenClock
) -> None:
    _campaign(ctx, 2)
    claimed = claim_batch(ctx.engine, "w1", clock.now(), 60, 2)
    clock.advance(timedelta(seconds=61))
    assert expire_leases(ctx.engine, clock.now()) == 2
    assert set(_states(ctx).values()) == {"uncertain"}
    # The killed worker's answer, arriving after the sweep, changes nothing.
    moved = record_results(
        ctx.engine,
        "w1",
        claimed,
        [SendResult(c.message_id, "submitted") for c in claimed],
        clock.now(),
        max_attempts=5,
    )
    assert moved == {} and set(_states(ctx).values()) == {"uncertain"}


def test_one_batch_of_answers_applies_only_what_the_lease_still_covers(
    ctx: Context, clock: FrozenClock
) -> None:
    """One transaction, one statement a kind on PostgreSQL: a message another worker
    took over (its lease swept) keeps its state, a message answered twice takes its
    first answer, and every answer is kept as an event saying whether it applied."""
    _campaign(ctx, 4)
    claimed = claim_batch(ctx.engine, "w1", clock.now(), 60, 4)
    ids = [c.message_id for c in claimed]
    with Session(ctx.engine) as session:
        swept = session.get(Message, ids[2])
        assert swept is not None
        swept.state, swept.lease_owner = "uncertain", ""
        session.add(swept)
        session.commit()
    results = [
        SendResult(ids[0], "submitted", provider_ref="ref-0"),
        SendResult(ids[1], "retry", reason="HTTP 503", retry_after=30),
        SendResult(ids[2], "submitted", provider_ref="ref-2"),
        SendResult(ids[3], "rejected", reason="invalid number"),
        SendResult(ids[3], "submitted", provider_ref="ref-3"),
    ]
    states = record_results(ctx.engine, "w1", claimed, results, clock.now(), max_attempts=5)
    assert states == {ids[0]: "submitted", ids[1]: "queued", ids[3]: "rejected"}
    assert _states(ctx) == {
        ids[0]: "submitted",
        ids[1]: "queued",
        ids[2]: "uncertain",
        ids[3]: "rejected",
    }
    with Session(ctx.engine) as session:
        first = session.get(Message, ids[0])
        retried = session.get(Message, ids[1])
        assert first is not None and first.provider_ref == "ref-0" and first.lease_owner == ""
        assert retried is not None and retried.provider_ref == ""
        assert retried.next_attempt_at == clock.now() + timedelta(seconds=30)
        assert session.get(Message, ids[2]).provider_ref == ""  # type: ignore[union-attr]
        events = session.exec(select(DeliveryEvent).order_by(col(DeliveryEvent.id))).all()
    assert [(e.message_id, e.state, e.applied, e.detail) for e in events] == [
        (ids[0], "submitted", True, "ref-0"),
        (ids[1], "queued", True, "HTTP 503"),
        (ids[2], "submitted", False, "ref-2"),
        (ids[3], "rejected", True, "invalid number"),
        (ids[3], "submitted", False, "ref-3"),
    ]


def test_emergency_lease_expiry_resends(ctx: Context, clock: FrozenClock) -> None:
    _campaign(ctx, 1, kind="emergency")
    claim_batch(ctx.engine, "w1", clock.now(), 60, 1)
    clock.advance(timedelta(seconds=61))
    expire_leases(ctx.engine, clock.now())
    assert list(_states(ctx).values()) == ["queued"]


def test_release_puts_back_without_counting_an_attempt(ctx: Context, clock: FrozenClock) -> None:
    _campaign(ctx, 1)
    claimed = claim_batch(ctx.engine, "w1", clock.now(), 60, 1)
    release(ctx.engine, "w1", claimed, clock.now(), "provider refused credentials")
    again = claim_batch(ctx.engine, "w1", clock.now(), 60, 1)
    assert again[0].attempts == 1


def test_reports_never_move_backwards_and_duplicates_are_ignored(
    ctx: Context, clock: FrozenClock
) -> None:
    _campaign(ctx, 1)
    claimed = claim_batch(ctx.engine, "w1", clock.now(), 60, 1)
    mid = claimed[0].message_id
    record_results(
        ctx.engine,
        "w1",
        claimed,
        [SendResult(mid, "submitted", "ref-1")],
        clock.now(),
        max_attempts=5,
    )
    assert apply_report(
        ctx.engine, DeliveryReport(None, "ref-1", "delivered", "DELIVRD"), clock.now()
    )
    # Twice, and an older "submitted" (SMSC ack) arriving after it: both ignored.
    assert not apply_report(ctx.engine, DeliveryReport(mid, "", "delivered"), clock.now())
    assert not apply_report(ctx.engine, DeliveryReport(mid, "", "submitted"), clock.now())
    assert list(_states(ctx).values()) == ["delivered"]
    with Session(ctx.engine) as session:
        applied = session.exec(
            select(DeliveryEvent.applied).where(col(DeliveryEvent.source) == "report")
        ).all()
    assert applied == [True, False, False]


def test_a_batch_of_reports_applies_in_order_as_one_by_one(
    ctx: Context, clock: FrozenClock
) -> None:
    _campaign(ctx, 3)
    claimed = claim_batch(ctx.engine, "w1", clock.now(), 60, 3)
    a, b, c = (x.message_id for x in claimed)
    record_results(
        ctx.engine,
        "w1",
        claimed,
        [SendResult(m, "submitted", f"ref-{m}") for m in (a, b, c)],
        clock.now(),
        max_attempts=5,
    )
    applied = apply_reports(
        ctx.engine,
        [
            DeliveryReport(a, "", "delivered", "DELIVRD"),
            DeliveryReport(a, "", "delivered", "again"),  # a duplicate in the batch
            DeliveryReport(None, f"ref-{b}", "undelivered", "UNDELIV"),
            DeliveryReport(None, "ref-nobody", "delivered"),
            DeliveryReport(10**9, "", "delivered"),
            DeliveryReport(c, "", "submitted", "ACK"),  # not a move
            DeliveryReport(c, "", "expired", "EXPIRED"),
        ],
        clock.now(),
    )
    assert applied == [True, False, True, False, False, False, True]
    assert _states(ctx) == {a: "delivered", b: "undelivered", c: "expired"}
    with Session(ctx.engine) as session:
        assert session.get(Message, b).reason == "UNDELIV"  # type: ignore[union-attr]
        events = session.exec(
            select(DeliveryEvent)
            .where(col(DeliveryEvent.source) == "report")
            .order_by(col(DeliveryEvent.id))
        ).all()
    assert [(e.message_id, e.state, e.applied) for e in events] == [
        (a, "delivered", True),
        (a, "delivered", False),
        (b, "undelivered", True),
        (c, "submitted", False),
        (c, "expired", True),
    ]


def test_report_overtaking_the_submit_answer(ctx: Context, clock: FrozenClock) -> None:
    _campaign(ctx, 1)
    claimed = claim_batch(ctx.engine, "w1", clock.now(), 60, 1)
    mid = claimed[0].message_id
    assert apply_report(ctx.engine, DeliveryReport(mid, "", "delivered"), clock.now())
    record_results(ctx.engine, "w1", claimed, [SendResult(mid, "submitted")], clock.now(), 5)
    assert list(_states(ctx).values()) == ["delivered"]


def test_two_workers_never_claim_the_same_message(ctx: Context, clock: FrozenClock) -> None:
    _campaign(ctx, 300)
    taken: dict[str, list[int]] = {"a": [], "b": []}
    errors: list[BaseException] = []

    def work(owner: str) -> None:
        try:
            while batch := claim_batch(ctx.engine, owner, clock.now(), 60, 7):
                taken[owner].extend(c.message_id for c in batch)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(o,)) for o in taken]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert not set(taken["a"]) & set(taken["b"])
    assert len(taken["a"]) + len(taken["b"]) == 300


def test_campaign_is_done_when_nothing_is_left(ctx: Context, clock: FrozenClock) -> None:
    from console.sending.queue import finish_campaigns
    from storage.models import Campaign

    cid = _campaign(ctx, 2)
    claimed = claim_batch(ctx.engine, "w1", clock.now(), 60, 2)
    record_results(
        ctx.engine,
        "w1",
        claimed,
        [
            SendResult(claimed[0].message_id, "submitted"),
            SendResult(claimed[1].message_id, "unknown"),
        ],
        clock.now(),
        5,
    )
    assert finish_campaigns(ctx.engine) == 0  # an uncertain message awaits a decision
    with Session(ctx.engine) as session:
        m = session.get(Message, claimed[1].message_id)
        assert m is not None
        m.state = "failed"
        session.add(m)
        session.commit()
    assert finish_campaigns(ctx.engine) == 1
    with Session(ctx.engine) as session:
        assert session.get(Campaign, cid).status == "done"  # type: ignore[union-attr]
