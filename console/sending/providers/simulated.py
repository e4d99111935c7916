"""The built-in simulated operator: the demo's provider and the tests' stand-in.

Every fate is drawn from `random.Random(f"{seed}:{message_id}")`, never from the order
of calls, so a re-send of a message (after a crash, an uncertain lease, a retry) meets
the very same fate, and two workers agree. It needs no network: the httpx client it is
handed stays unused.

The simulated operator has no HTTP callback of its own: the worker polls
`pending_reports` for the delivery reports that are due. Tests may also post reports
and inbound SMS to the worker's endpoint as small JSON bodies, which `parse_report`
and `parse_inbound` read.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx

from console.config import SimulatedConfig
from console.sending.providers.base import (
    DeliveryReport,
    HttpRequest,
    InboundSms,
    OutgoingSms,
    SendResult,
    check_batch_size,
)
from console.sending.states import ReportState

STATES: Final[dict[str, ReportState]] = {state.value: state for state in ReportState}

REFUSED_REASON: Final = "simulated: number refused by the operator"
# Reports come due 0.05-0.5 s after the send at the default latency, and scale with it
# (a slow simulated network also reports slowly; latency 0 reports at once).
REPORT_DELAY_MIN: Final = 0.05
REPORT_DELAY_SPAN: Final = 0.45
DEFAULT_LATENCY_MS: Final = 40


@dataclass(frozen=True)
class Fate:
    """What the simulated network does with one message, whenever it is sent."""

    refused: bool
    delivered: bool
    report_delay: float


def fate(config: SimulatedConfig, message_id: int) -> Fate:
    rng = random.Random(f"{config.seed}:{message_id}")
    # Always three draws in the same order, so changing one rate never reshuffles
    # the other fates.
    refuse_draw, deliver_draw, delay_draw = rng.random(), rng.random(), rng.random()
    scale = config.latency_ms / DEFAULT_LATENCY_MS
    return Fate(
        refused=refuse_draw < config.failure_rate,
        delivered=deliver_draw >= config.undelivered_rate,
        report_delay=(REPORT_DELAY_MIN + REPORT_DELAY_SPAN * delay_draw) * scale,
    )


def provider_ref(message_id: int) -> str:
    return f"sim-{message_id}"


class SimulatedProvider:
    name = "simulated"
    max_batch = 100

    def __init__(
        self, config: SimulatedConfig, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._config = config
        self._clock = clock
        # Reports not yet handed out, by message id: a re-send replaces the pending
        # one rather than queueing a second. The heap orders them by due time; an
        # entry whose sequence number is no longer the message's is stale.
        self._pending: dict[int, tuple[int, DeliveryReport]] = {}
        self._due: list[tuple[float, int, int]] = []
        self._sequence = itertools.count()

    def __repr__(self) -> str:
        return f"SimulatedProvider(seed={self._config.seed})"

    async def send(
        self, client: httpx.AsyncClient, batch: Sequence[OutgoingSms]
    ) -> list[SendResult]:
        del client  # the simulated network is in this process
        check_batch_size(self.name, self.max_batch, batch)
        if not batch:
            return []
        await asyncio.sleep(self._config.latency_ms / 1000)
        sent_at = self._clock()
        results: list[SendResult] = []
        for sms in batch:
            chosen = fate(self._config, sms.message_id)
            if chosen.refused:
                results.append(SendResult(sms.message_id, "rejected", reason=REFUSED_REASON))
                continue
            ref = provider_ref(sms.message_id)
            results.append(SendResult(sms.message_id, "submitted", provider_ref=ref))
            report = DeliveryReport(
                message_id=sms.message_id,
                provider_ref=ref,
                state=ReportState.DELIVERED if chosen.delivered else ReportState.UNDELIVERED,
                provider_status="DELIVRD" if chosen.delivered else "UNDELIV",
            )
            sequence = next(self._sequence)
            self._pending[sms.message_id] = (sequence, report)
            heapq.heappush(self._due, (sent_at + chosen.report_delay, sequence, sms.message_id))
        return results

    def pending_reports(self, now_monotonic: float) -> list[DeliveryReport]:
        """The reports due by `now_monotonic` (the clock's time), each handed out once."""
        reports: list[DeliveryReport] = []
        while self._due and self._due[0][0] <= now_monotonic:
            _, sequence, message_id = heapq.heappop(self._due)
            entry = self._pending.get(message_id)
            if entry is not None and entry[0] == sequence:
                del self._pending[message_id]
                reports.append(entry[1])
        return reports

    def pending_count(self) -> int:
        return len(self._pending)

    def parse_report(self, request: HttpRequest) -> list[DeliveryReport]:
        """{"message_id": 12, "state": "delivered"}, or a list of them.

        Raises ValueError on anything else: these come from tests, which should hear
        about a mistake (the endpoint answers 400).
        """
        loaded = _json(request.body)
        items = loaded if isinstance(loaded, list) else [loaded]
        return [_report(item) for item in items]

    def parse_inbound(self, request: HttpRequest) -> InboundSms | None:
        """{"from": "+336...", "to": "TOCSIN", "text": "STOP"}; ValueError otherwise."""
        item = _json(request.body)
        expected = 'expected {"from": ..., "to": ..., "text": ...}'
        if not isinstance(item, dict):
            raise ValueError(expected)
        sender, text = item.get("from"), item.get("text")
        if not isinstance(sender, str) or not sender or not isinstance(text, str):
            raise ValueError(expected)
        return InboundSms(
            sender=sender,
            recipient=str(item.get("to", "")),
            text=text,
            provider_ref=str(item.get("id", "")),
        )


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("the body is not JSON") from None


def _report(item: Any) -> DeliveryReport:
    if not isinstance(item, Mapping):
        raise ValueError('expected {"message_id": ..., "state": ...}')
    message_id, state = item.get("message_id"), item.get("state")
    if isinstance(message_id, str) and message_id.isdigit():
        message_id = int(message_id)
    if not isinstance(message_id, int) or isinstance(message_id, bool):
        raise ValueError(f"message_id should be a number (got {message_id!r})")
    checked = STATES.get(state) if isinstance(state, str) else None
    if checked is None:
        raise ValueError(f"state should be one of {', '.join(STATES)} (got {state!r})")
    return DeliveryReport(
        message_id=message_id,
        provider_ref=str(item.get("provider_ref", provider_ref(message_id))),
        state=checked,
        provider_status=str(item.get("provider_status", state)),
    )
