"""Priority between alerts: the claim order, the worker's turns, and what a pause or a
cancel does to messages a worker already holds. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

import httpx
from sqlmodel import Session, col, select

from console.clock import FrozenClock
from console.contacts.service import ContactInput, add_contact
from console.context import Context
from console.sending.campaign_ops import change_campaign
from console.sending.campaigns import Audience, CampaignRequest, create_campaign
from console.sending.hand import Hand
from console.sending.providers.base import (
    DeliveryReport,
    HttpRequest,
    InboundSms,
    OutgoingSms,
    SendResult,
)
from console.sending.queue import Claimed, claim_batch, release, skip_cancelled, watch
from console.sending.ratelimit import TokenBucket
from console.sending.worker import Worker
from storage.models import Message

_contacts = 0


def _residents(ctx: Context, count: int, zone: str) -> None:
    global _contacts
    for _ in range(count):
        n = _contacts
        _contacts += 1
        add_contact(
            ctx,
            ContactInput(
                number=f"06 40 {n // 10000:02d} {n // 100 % 100:02d} {n % 100:02d}", zone=zone
            ),
        )


def _send(ctx: Context, zone: str, kind: str = "emergency", text: str = "Crue") -> int:
    campaign_id = create_campaign(
        ctx,
        CampaignRequest(
            topic="alertes",
            text=text,
            sender_id="MAIRIE",
            audience=Audience(zones=(zone,)),
            kind=kind,  # type: ignore[arg-type]
        ),
    ).campaign_id
    assert campaign_id is not None
    return campaign_id


def _town(ctx: Context, **zones: int) -> None:
    global _contacts
    _contacts = 0
    for zone, count in zones.items():
        _residents(ctx, count, zone)


def _states(ctx: Context, campaign_id: int | None = None) -> Counter[str]:
    with Session(ctx.engine) as session:
        query = select(Message)
        if campaign_id is not None:
            query = query.where(col(Message.campaign_id) == campaign_id)
        return Counter(m.state for m in session.exec(query))


# --- the claim order ---------------------------------------------------------------


def test_alerts_share_a_claim_equally(ctx: Context, clock: FrozenClock) -> None:
    _town(ctx, Bourg=40, Moulin=5)
    big = _send(ctx, "Bourg")
    small = _send(ctx, "Moulin")
    claimed = claim_batch(ctx.engine, "w1", clock.now(), 60, 6)
    assert Counter(c.campaign_id for c in claimed) == {big: 3, small: 3}


def test_a_share_one_alert_cannot_use_goes_to_the_others(ctx: Context, clock: FrozenClock) -> None:
    _town(ctx, Bourg=40, Moulin=2, Port=30)
    big = _send(ctx, "Bourg")
    small = _send(ctx, "Moulin")
    port = _send(ctx, "Port")
    claimed = claim_batch(ctx.engine, "w1", clock.now(), 60, 12)
    assert Counter(c.campaign_id for c in claimed) == {big: 5, small: 2, port: 5}
    assert len({c.message_id for c in claimed}) == 12


def test_planned_sends_wait_while_an_alert_has_anything_due(
    ctx: Context, clock: FrozenClock
) -> None:
    _town(ctx, Bourg=10, Moulin=3)
    planned = _send(ctx, "Bourg", kind="planned", text="Travaux")
    alert = _send(ctx, "Moulin")
    # Room for more, but none of it goes to the planned send.
    claimed = claim_batch(ctx.engine, "w1", clock.now(), 60, 10)
    assert {c.campaign_id for c in claimed} == {alert} and len(claimed) == 3
    # Nothing of the alert is due any more: the planned send has the claim.
    claimed = claim_batch(ctx.engine, "w1", clock.now(), 60, 10)
    assert {c.campaign_id for c in claimed} == {planned} and len(claimed) == 10


def test_a_claim_restricted_to_new_alerts(ctx: Context, clock: FrozenClock) -> None:
    _town(ctx, Bourg=10, Moulin=3)
    _send(ctx, "Bourg")
    small = _send(ctx, "Moulin")
    claimed = claim_batch(ctx.engine, "w1", clock.now(), 60, 10, {small})
    assert {c.campaign_id for c in claimed} == {small} and len(claimed) == 3


def test_watch_names_stopped_campaigns_and_claimable_alerts(
    ctx: Context, clock: FrozenClock
) -> None:
    _town(ctx, Bourg=3, Moulin=3, Port=3)
    big = _send(ctx, "Bourg")
    small = _send(ctx, "Moulin")
    planned = _send(ctx, "Port", kind="planned", text="Travaux")
    change_campaign(ctx, big, "pause")
    seen = watch(ctx.engine, clock.now(), {big, planned})
    assert seen.statuses == {big: "paused", small: "queued", planned: "queued"}
    assert seen.alerts == {small}


def test_what_comes_back_to_a_cancelled_campaign_is_skipped(
    ctx: Context, clock: FrozenClock
) -> None:
    _town(ctx, Bourg=4)
    alert = _send(ctx, "Bourg")
    claimed = claim_batch(ctx.engine, "w1", clock.now(), 60, 4)
    change_campaign(ctx, alert, "cancel", settle_s=0)
    # Given back by the worker: never seen by a provider, so skipped, no attempt.
    assert release(ctx.engine, "w1", claimed[:2], clock.now(), "cancelled", "skipped") == 2
    # A re-send after an unknown answer (emergency policy) lands in the queue...
    release(ctx.engine, "w1", claimed[2:], clock.now(), "re-sent")
    assert _states(ctx, alert) == {"skipped": 2, "queued": 2}
    # ...and the sweep skips it: a cancelled campaign keeps nothing queued.
    assert skip_cancelled(ctx.engine, clock.now()) == 2
    assert _states(ctx, alert) == {"skipped": 4}
    with Session(ctx.engine) as session:
        assert {m.attempts for m in session.exec(select(Message))} == {0}


# --- the worker's hand ---------------------------------------------------------------


def _claimed(campaign_id: int, count: int, emergency: bool = True, start: int = 0) -> list[Claimed]:
    return [
        Claimed(start + i, campaign_id, "+33600000000", "x", "MAIRIE", 1, emergency)
        for i in range(count)
    ]


def test_the_hand_serves_alerts_in_turns() -> None:
    hand = Hand()
    hand.add(_claimed(1, 10))
    hand.add(_claimed(2, 2, start=100))
    order = [hand.take(1)[0].campaign_id for _ in range(6)]
    assert order == [1, 2, 1, 2, 1, 1]
    assert len(hand) == 6


def test_the_hand_keeps_planned_sends_for_when_no_alert_is_left() -> None:
    hand = Hand()
    hand.add(_claimed(1, 3, emergency=False))
    hand.add(_claimed(2, 2, start=100))
    assert [c.campaign_id for c in hand.take(5)] == [2, 2]
    assert hand.planned() == {1}
    assert [c.campaign_id for c in hand.take(5)] == [1, 1, 1]
    assert not hand


def test_the_hand_gives_back_the_last_claimed_of_the_largest() -> None:
    hand = Hand()
    hand.add(_claimed(1, 5))
    hand.add(_claimed(2, 2, start=100))
    assert [c.message_id for c in hand.give_back(3)] == [4, 3, 2]
    assert [c.message_id for c in hand.drop({2})] == [100, 101]
    assert len(hand) == 2 and hand.campaigns() == {1}


# --- the worker ----------------------------------------------------------------------


class SlowProvider:
    """One message per call; each call waits `delay` s, or for the gate when set."""

    name = "slow"
    max_batch = 1

    def __init__(self, messages: dict[int, int], delay: float = 0.002) -> None:
        self.campaign_of = messages  # message id -> campaign id
        self.delay = delay
        self.order: list[int] = []  # campaign of each call, in the order made
        self.sent: Counter[int] = Counter()
        self.gate: asyncio.Event | None = None
        self.in_flight = 0
        self.batches: list[int] = []

    async def send(
        self, client: httpx.AsyncClient, batch: Sequence[OutgoingSms]
    ) -> list[SendResult]:
        self.batches.append(len(batch))
        for sms in batch:
            self.order.append(self.campaign_of.get(sms.message_id, 0))
            self.sent[sms.message_id] += 1
        self.in_flight += 1
        try:
            if self.gate is not None:
                await self.gate.wait()
            else:
                await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        return [
            SendResult(s.message_id, "submitted", provider_ref=f"r{s.message_id}") for s in batch
        ]

    def parse_report(self, request: HttpRequest) -> list[DeliveryReport]:
        return []

    def parse_inbound(self, request: HttpRequest) -> InboundSms | None:
        return None


def _message_campaigns(ctx: Context) -> dict[int, int]:
    with Session(ctx.engine) as session:
        return {m.id: m.campaign_id for m in session.exec(select(Message)) if m.id is not None}


async def _until(check: Callable[[], bool], timeout: float = 20) -> None:
    for _ in range(int(timeout / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out waiting")


async def _with_workers(
    ctx: Context,
    provider: SlowProvider,
    body: Callable[[list[Worker]], Awaitable[None]],
    concurrency: int = 1,
    workers: int = 1,
    rate: float = 100_000,
) -> None:
    config = ctx.config.model_copy(
        update={"provider": ctx.config.provider.model_copy(update={"concurrency": concurrency})}
    )
    stop = asyncio.Event()
    async with httpx.AsyncClient() as client:
        running = [
            Worker(replace(ctx, config=config), provider, client, f"w{n}", stop)  # type: ignore[arg-type]
            for n in range(workers)
        ]
        for worker in running:
            worker.bucket = TokenBucket(rate)
            await worker.start()
        tasks = [asyncio.create_task(w.run()) for w in running]
        try:
            await body(running)
        finally:
            if provider.gate is not None:
                provider.gate.set()
            stop.set()
            await asyncio.gather(*tasks)


async def test_a_small_alert_takes_turns_with_a_big_one(ctx: Context) -> None:
    """Confirmed while an all-town alert is sending, a quartier's alert does not wait
    for it: from its first message on, the two alternate call by call."""
    _town(ctx, Bourg=300, Moulin=6)
    big = _send(ctx, "Bourg")
    provider = SlowProvider(_message_campaigns(ctx), delay=0.01)
    small = 0

    async def body(_: list[Worker]) -> None:
        nonlocal small
        await _until(lambda: len(provider.order) >= 20)
        small = await asyncio.to_thread(_send, ctx, "Moulin")
        provider.campaign_of.update(_message_campaigns(ctx))
        await _until(lambda: provider.order.count(small) == 6)

    await _with_workers(ctx, provider, body)
    order = provider.order
    first = order.index(small)
    last = len(order) - 1 - order[::-1].index(small)
    # One call at a time: strict turns, one of the big alert's between two of the
    # small one's (the big one goes on: it had not finished).
    assert 1 <= order[first : last + 1].count(big) <= 6
    assert set(provider.sent.values()) == {1}


async def test_planned_messages_in_hand_yield_to_an_alert_at_once(ctx: Context) -> None:
    _town(ctx, Bourg=120, Moulin=6)
    planned = _send(ctx, "Bourg", kind="planned", text="Travaux")
    provider = SlowProvider(_message_campaigns(ctx))
    alert = 0

    async def body(workers: list[Worker]) -> None:
        nonlocal alert
        await _until(lambda: len(provider.order) >= 10)
        assert len(workers[0]._ready) > 0  # the worker holds planned messages
        alert = await asyncio.to_thread(_send, ctx, "Moulin")
        provider.campaign_of.update(_message_campaigns(ctx))
        await _until(lambda: provider.order.count(alert) == 6)
        await _until(lambda: _states(ctx, planned)["submitted"] == 120)

    await _with_workers(ctx, provider, body)
    order = provider.order
    first = order.index(alert)
    # From the alert's first message, nothing planned until its last one.
    assert order[first : first + 6] == [alert] * 6
    # What went back was never counted as an attempt, and nothing went twice.
    assert set(provider.sent.values()) == {1}
    with Session(ctx.engine) as session:
        assert {m.attempts for m in session.exec(select(Message))} == {1}


async def _stop_while_held(ctx: Context, change: str) -> tuple[SlowProvider, int, object]:
    """A worker holding a claim while its calls hang; the operator stops the campaign."""
    _town(ctx, Bourg=60)
    campaign = _send(ctx, "Bourg")
    provider = SlowProvider(_message_campaigns(ctx))
    provider.gate = asyncio.Event()
    report: object = None

    async def body(workers: list[Worker]) -> None:
        nonlocal report
        # Two calls hang at the provider; the rest of the claim waits in the hand.
        await _until(lambda: provider.in_flight == 2 and len(workers[0]._ready) > 0)
        held = len(workers[0]._ready)
        stopping = asyncio.create_task(
            asyncio.to_thread(change_campaign, ctx, campaign, change)  # type: ignore[arg-type]
        )
        # The worker gives back what it holds without waiting for the calls.
        await _until(lambda: _states(ctx, campaign)["sending"] == 2)
        assert len(workers[0]._ready) == 0 and held > 0
        provider.gate.set()  # type: ignore[union-attr]
        report = (await stopping).stop

    await _with_workers(ctx, provider, body, concurrency=2)
    return provider, campaign, report


async def test_a_cancel_skips_what_the_worker_holds_and_counts_what_left(ctx: Context) -> None:
    provider, campaign, report = await _stop_while_held(ctx, "cancel")
    assert report is not None
    assert report.left_after == 2 and report.in_flight == 0  # type: ignore[attr-defined]
    assert report.given_back == report.claimed - 2  # type: ignore[attr-defined]
    # Only the two calls under way went out; everything else is skipped for good.
    assert len(provider.sent) == 2
    assert _states(ctx, campaign) == {"submitted": 2, "skipped": 58}


async def test_a_pause_gives_back_what_the_worker_holds(ctx: Context) -> None:
    provider, campaign, report = await _stop_while_held(ctx, "pause")
    assert report is not None
    assert report.left_after == 2 and report.given_back > 0  # type: ignore[attr-defined]
    assert len(provider.sent) == 2
    assert _states(ctx, campaign) == {"submitted": 2, "queued": 58}
    with Session(ctx.engine) as session:
        assert {m.attempts for m in session.exec(select(Message)) if m.state == "queued"} == {0}
    # Resumed, the rest goes out, each message once.
    change_campaign(ctx, campaign, "resume")
    provider.gate = None

    async def body(_: list[Worker]) -> None:
        await _until(lambda: _states(ctx, campaign)["submitted"] == 60)

    await _with_workers(ctx, provider, body)
    assert set(provider.sent.values()) == {1} and len(provider.sent) == 60


async def test_several_workers_share_two_alerts_without_doubles(ctx: Context) -> None:
    """PostgreSQL: two workers (FOR UPDATE SKIP LOCKED); SQLite: the one lease holder."""
    workers = 1 if ctx.engine.dialect.name == "sqlite" else 2
    _town(ctx, Bourg=120, Moulin=10)
    big = _send(ctx, "Bourg")
    provider = SlowProvider(_message_campaigns(ctx))

    async def body(_: list[Worker]) -> None:
        await _until(lambda: len(provider.order) >= 10)
        small = await asyncio.to_thread(_send, ctx, "Moulin")
        provider.campaign_of.update(_message_campaigns(ctx))
        await _until(lambda: provider.order.count(small) == 10)
        await _until(lambda: _states(ctx, big)["submitted"] == 120)

    await _with_workers(ctx, provider, body, concurrency=2, workers=workers)
    assert set(provider.sent.values()) == {1} and len(provider.sent) == 130
    assert _states(ctx) == {"submitted": 130}


# --- the command line ----------------------------------------------------------------


def test_cancel_on_the_command_line_says_what_left(
    tmp_path, db_url: str, capsys, clock: FrozenClock
) -> None:  # type: ignore[no-untyped-def]
    import json

    from console.cli import main
    from console.roles import current_operator
    from storage.engine import make_engine

    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n'
        f'[privacy]\nhash_key_file = "{tmp_path / "key"}"\n'
        f'[roles]\nadmin = ["{current_operator()}"]\n',
        encoding="utf-8",
    )

    def run(*args: str) -> int:
        return main(["--config", str(config), *args])

    numbers = ("0611223344", "0611223355", "0611223366")
    to = ["--to", *numbers]
    assert (
        run("send", "--topic", "alertes", *to, "--text", "Crue", "--emergency", "--yes", "--json")
        == 0
    )
    campaign = json.loads(capsys.readouterr().out)["campaign_id"]
    # A worker (none alive: the cancel reports at once) holds one of the three.
    engine = make_engine(db_url)
    from datetime import UTC, datetime

    claim_batch(engine, "w1", datetime.now(UTC), 60, 1)
    engine.dispose()
    assert run("campaign", "cancel", str(campaign), "--json") == 0
    stop = json.loads(capsys.readouterr().out)["stop"]
    assert stop == {
        "change": "cancel",
        "not_sent": 2,
        "claimed": 1,
        "given_back": 0,
        "left_after": 0,
        "in_flight": 1,
    }
    assert run("campaign", "show", str(campaign)) == 0
    assert "Annulé" not in capsys.readouterr().out  # only the change itself reports
    # In plain words, in the console's language.
    assert run("send", "--topic", "alertes", *to, "--text", "Crue", "--emergency", "--yes") == 0
    capsys.readouterr()
    assert run("campaign", "pause", str(campaign + 1)) == 0
    out = capsys.readouterr().out
    assert "En pause. Retenus pour la reprise — en attente : 3" in out
    assert "Partis après la pause (appels déjà en cours) : 0" in out


async def test_a_call_carries_a_tenth_of_a_second_of_the_rate(ctx: Context) -> None:
    """A 100-message call at 100 msg/s would hold the rate limiter, and every alert
    behind it, for a whole second."""
    _town(ctx, Bourg=40)
    campaign = _send(ctx, "Bourg")
    provider = SlowProvider(_message_campaigns(ctx), delay=0)
    provider.max_batch = 100  # type: ignore[misc]

    async def body(_: list[Worker]) -> None:
        await _until(lambda: _states(ctx, campaign)["submitted"] == 40)

    await _with_workers(ctx, provider, body, concurrency=2, rate=100)
    assert max(provider.batches) == 10 and sum(provider.batches) == 40


async def test_the_watcher_goes_on_looking_while_its_quick_claim_waits(
    ctx: Context, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """On SQLite a console's long write holds the worker's writes; its quick claim of
    a new alert waits, and a pause meanwhile must still be seen at once."""
    import threading

    from console.sending import worker as worker_module

    _town(ctx, Bourg=60, Moulin=3)
    big = _send(ctx, "Bourg")
    provider = SlowProvider(_message_campaigns(ctx))
    provider.gate = asyncio.Event()
    held_up = threading.Event()
    waiting = threading.Event()
    real_claim = worker_module.claim_batch

    def slow_quick_claim(*args, **kwargs):  # type: ignore[no-untyped-def]
        if len(args) > 5 and args[5] is not None:  # the watcher's quick claim
            waiting.set()
            held_up.wait(20)
        return real_claim(*args, **kwargs)

    monkeypatch.setattr(worker_module, "claim_batch", slow_quick_claim)

    async def body(workers: list[Worker]) -> None:
        worker = workers[0]
        await _until(lambda: provider.in_flight == 2 and len(worker._ready) > 0)
        await asyncio.to_thread(_send, ctx, "Moulin")
        await _until(waiting.is_set)
        change_campaign(ctx, big, "pause", settle_s=0)
        # Seen and given back while the quick claim is still held up.
        await _until(lambda: big not in worker._ready.campaigns())
        assert not held_up.is_set()
        held_up.set()
        provider.gate.set()  # type: ignore[union-attr]

    try:
        await _with_workers(ctx, provider, body, concurrency=2)
    finally:
        held_up.set()
    assert _states(ctx, big)["submitted"] == 2
