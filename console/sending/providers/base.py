"""The one small interface every provider implements.

A provider turns a batch of outgoing messages into HTTP requests and the answers
into ledger outcomes, and reads the delivery reports and inbound SMS that reach the
worker's endpoint. It holds no database handle: the worker commits what it returns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import httpx

from console.sending.states import ReportState

# What a send attempt says about one message. `retry`: surely not sent (refused
# connection, 429, 5xx answered); `unknown`: may have been sent (a timeout after the
# request went out) -> the ledger's `uncertain`, never silently re-sent.
Outcome = Literal["submitted", "retry", "unknown", "failed", "rejected"]


@dataclass(frozen=True)
class OutgoingSms:
    message_id: int
    to: str  # E.164
    text: str
    sender_id: str


@dataclass(frozen=True)
class SendResult:
    message_id: int
    outcome: Outcome
    provider_ref: str = ""
    # The provider's own words, for the operator (failed, rejected, retry).
    reason: str = ""
    # Seconds the provider asked us to wait (429 Retry-After, 503).
    retry_after: float | None = None


@dataclass(frozen=True)
class HttpRequest:
    """What reached the worker's endpoint, independent of the web framework."""

    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    form: Mapping[str, str] = field(default_factory=dict)
    # The form's (name, value) pairs in order, a repeated name each time (`form`
    # keeps one value per name): what a signature over the form covers.
    form_items: tuple[tuple[str, str], ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    # The full URL the provider called, as it signed it (Twilio).
    url: str = ""


@dataclass(frozen=True)
class DeliveryReport:
    # Ours when the provider echoes it (Kannel's dlr-url), else the provider's ref.
    message_id: int | None
    provider_ref: str
    state: ReportState
    provider_status: str = ""


@dataclass(frozen=True)
class InboundSms:
    sender: str  # as the provider gives it; the caller normalises
    recipient: str
    text: str
    provider_ref: str = ""


class ProviderAuthError(Exception):
    """The provider refused our credentials: stop the campaign, do not fail each SMS."""


class Provider(Protocol):
    name: str
    # Recipients per request where the provider has a batch API, else 1.
    max_batch: int

    async def send(
        self, client: httpx.AsyncClient, batch: Sequence[OutgoingSms]
    ) -> list[SendResult]:
        """One result per message, in any order. Raises ProviderAuthError on refused
        credentials; network errors and timeouts come back as `retry` results."""
        ...

    def parse_report(self, request: HttpRequest) -> list[DeliveryReport]:
        """Delivery reports in a request to the endpoint ([] if it holds none)."""
        ...

    def parse_inbound(self, request: HttpRequest) -> InboundSms | None: ...


def check_batch_size(name: str, max_batch: int, batch: Sequence[OutgoingSms]) -> None:
    """The worker sizes batches by `max_batch`: a larger one is a bug, not something to
    split quietly (rate limits and leases are counted per call)."""
    if len(batch) > max_batch:
        raise ValueError(f"{name} takes {max_batch} message(s) per call, got {len(batch)}")
