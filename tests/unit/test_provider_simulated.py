"""The simulated operator: fates from seed and message id, reports on a clock, no network."""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
import pytest

import console.sending.providers.simulated as simulated_module
from console.config import SimulatedConfig
from console.sending.providers.base import HttpRequest, OutgoingSms, SendResult
from console.sending.providers.simulated import REFUSED_REASON, SimulatedProvider, fate


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def no_network() -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("the simulated provider must not use the network")

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def batch(ids: list[int]) -> list[OutgoingSms]:
    return [OutgoingSms(i, f"+336{i:08d}", "Exercice d'alerte", "MAIRIE") for i in ids]


def config(**overrides: Any) -> SimulatedConfig:
    values: dict[str, Any] = {
        "seed": 1789,
        "latency_ms": 0,
        "failure_rate": 0.1,
        "undelivered_rate": 0.2,
        **overrides,
    }
    return SimulatedConfig(**values)


async def send_all(
    provider: SimulatedProvider, ids: list[int], size: int = 100
) -> dict[int, SendResult]:
    results: dict[int, SendResult] = {}
    async with no_network() as http:
        for start in range(0, len(ids), size):
            for result in await provider.send(http, batch(ids[start : start + size])):
                results[result.message_id] = result
    return results


async def test_the_same_seed_and_id_meet_the_same_fate_whatever_the_order() -> None:
    ids = list(range(1, 401))
    shuffled = ids[:]
    random.Random(7).shuffle(shuffled)
    one, two = SimulatedProvider(config()), SimulatedProvider(config())
    first = await send_all(one, ids, size=100)
    second = await send_all(two, shuffled, size=37)
    assert first == second
    reports = sorted(one.pending_reports(float("inf")), key=lambda r: r.message_id or 0)
    assert reports == sorted(two.pending_reports(float("inf")), key=lambda r: r.message_id or 0)
    # And a message sent again alone, later, by a third instance.
    again = await send_all(SimulatedProvider(config()), [ids[123]])
    assert again[ids[123]] == first[ids[123]]


async def test_another_seed_gives_other_fates() -> None:
    ids = list(range(1, 401))
    one = await send_all(SimulatedProvider(config(seed=1)), ids)
    two = await send_all(SimulatedProvider(config(seed=2)), ids)
    assert one != two


async def test_outcomes_follow_the_rates_over_ten_thousand_messages() -> None:
    clock = FakeClock()
    provider = SimulatedProvider(config(failure_rate=0.1, undelivered_rate=0.2), clock=clock)
    results = await send_all(provider, list(range(1, 10_001)))
    rejected = [r for r in results.values() if r.outcome == "rejected"]
    submitted = [r for r in results.values() if r.outcome == "submitted"]
    assert len(rejected) + len(submitted) == 10_000
    # Three standard deviations of a binomial around 1,000 is about 90.
    assert 900 <= len(rejected) <= 1100
    assert {r.reason for r in rejected} == {REFUSED_REASON}
    assert all(r.provider_ref == f"sim-{r.message_id}" for r in submitted)
    clock.now += 60
    reports = provider.pending_reports(clock.now)
    assert len(reports) == len(submitted)
    undelivered = sum(1 for r in reports if r.state == "undelivered")
    assert abs(undelivered - 0.2 * len(submitted)) <= 3 * (0.2 * 0.8 * len(submitted)) ** 0.5


async def test_rates_of_zero_and_one_are_exact() -> None:
    provider = SimulatedProvider(config(failure_rate=0, undelivered_rate=1))
    results = await send_all(provider, list(range(1, 201)))
    assert {r.outcome for r in results.values()} == {"submitted"}
    reports = provider.pending_reports(float("inf"))
    assert {r.state for r in reports} == {"undelivered"}
    refused = await send_all(SimulatedProvider(config(failure_rate=1)), [1, 2, 3])
    assert {r.outcome for r in refused.values()} == {"rejected"}


async def test_reports_come_due_after_a_deterministic_delay() -> None:
    clock = FakeClock()
    provider = SimulatedProvider(config(latency_ms=40, failure_rate=0), clock=clock)
    sent_at = clock.now
    await send_all(provider, list(range(1, 51)))
    assert provider.pending_reports(sent_at + 0.049) == []
    due_half = provider.pending_reports(sent_at + 0.25)
    rest = provider.pending_reports(sent_at + 0.5)
    assert 0 < len(due_half) < 50
    assert len(due_half) + len(rest) == 50
    # Handed out once only.
    assert provider.pending_reports(sent_at + 100) == []
    assert provider.pending_count() == 0
    for report in due_half + rest:
        expected = fate(config(latency_ms=40, failure_rate=0), report.message_id)
        assert report.state == ("delivered" if expected.delivered else "undelivered")
        assert report.provider_ref == f"sim-{report.message_id}"
        assert 0.05 <= expected.report_delay <= 0.5


async def test_report_delays_scale_with_latency() -> None:
    assert fate(config(latency_ms=0), 5).report_delay == 0
    slow, default = fate(config(latency_ms=400), 5), fate(config(latency_ms=40), 5)
    assert slow.report_delay == pytest.approx(10 * default.report_delay)


async def test_a_resend_replaces_the_pending_report() -> None:
    clock = FakeClock()
    provider = SimulatedProvider(config(failure_rate=0), clock=clock)
    await send_all(provider, [7])
    await send_all(provider, [7])
    assert provider.pending_count() == 1
    assert len(provider.pending_reports(float("inf"))) == 1


async def test_latency_is_awaited_once_per_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(simulated_module.asyncio, "sleep", fake_sleep)
    provider = SimulatedProvider(config(latency_ms=250))
    await send_all(provider, list(range(1, 251)), size=100)
    assert slept == [0.25, 0.25, 0.25]


async def test_a_batch_larger_than_max_batch_is_refused() -> None:
    provider = SimulatedProvider(config())
    async with no_network() as http:
        with pytest.raises(ValueError, match="100 message\\(s\\) per call"):
            await provider.send(http, batch(list(range(101))))
        assert await provider.send(http, []) == []


def posted(payload: Any) -> HttpRequest:
    return HttpRequest(
        "POST",
        "/reports/simulated",
        body=json.dumps(payload).encode(),
        headers={"content-type": "application/json"},
    )


@pytest.mark.parametrize(
    "state", ["submitted", "delivered", "undelivered", "expired", "rejected", "failed"]
)
def test_a_posted_report_is_read(state: str) -> None:
    [report] = SimulatedProvider(config()).parse_report(posted({"message_id": 9, "state": state}))
    assert (report.message_id, report.provider_ref, report.state) == (9, "sim-9", state)


def test_a_list_of_reports_is_read() -> None:
    found = SimulatedProvider(config()).parse_report(
        posted([{"message_id": 1, "state": "delivered"}, {"message_id": "2", "state": "expired"}])
    )
    assert [(r.message_id, r.state) for r in found] == [(1, "delivered"), (2, "expired")]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"message_id": 1}',
        b'{"message_id": 1, "state": "lost"}',
        b'{"message_id": "x", "state": "delivered"}',
        b"[1]",
    ],
)
def test_an_unreadable_report_is_refused(body: bytes) -> None:
    with pytest.raises(ValueError):
        SimulatedProvider(config()).parse_report(HttpRequest("POST", "/", body=body))


def test_a_posted_inbound_sms_is_read() -> None:
    sms = SimulatedProvider(config()).parse_inbound(
        HttpRequest(
            "POST",
            "/inbound/simulated",
            body=json.dumps({"from": "+33612345678", "to": "MAIRIE", "text": "STOP"}).encode(),
        )
    )
    assert sms is not None
    assert (sms.sender, sms.recipient, sms.text) == ("+33612345678", "MAIRIE", "STOP")
    with pytest.raises(ValueError):
        SimulatedProvider(config()).parse_inbound(HttpRequest("POST", "/", body=b'{"to": 1}'))
