"""What every HTTP provider reads the same way: Retry-After, and whether a transport
error means the SMS surely was not sent (`retry`) or may have been (`unknown`)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final

import httpx

from console.sending.providers.base import (
    Outcome,
    OutgoingSms,
    ProviderAuthError,
    SendResult,
    check_batch_size,
)

MAY_HAVE_BEEN_SENT: Final = "may have been sent"
TIMEOUT_REASON: Final = f"timeout after sending: {MAY_HAVE_BEEN_SENT}"
LOST_REASON: Final = f"connection lost after sending: {MAY_HAVE_BEEN_SENT}"


def retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds (delta-seconds or an HTTP date), None when absent."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def transport_failure(exc: httpx.RequestError, provider: str) -> tuple[Outcome, str]:
    """`retry` when the request surely never reached the provider, else `unknown`."""
    kind = type(exc).__name__
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return "retry", f"{provider}: not reached ({kind})"
    # Past this point the provider may have read the request and sent the SMS before
    # the answer was lost.
    if isinstance(exc, httpx.TimeoutException):
        return "unknown", f"{TIMEOUT_REASON} ({provider}: {kind})"
    if isinstance(exc, (httpx.NetworkError, httpx.RemoteProtocolError)):
        return "unknown", f"{LOST_REASON} ({provider}: {kind})"
    if not isinstance(exc, httpx.TransportError):
        # An answer came but could not be decoded (or redirected away): it acted.
        return "unknown", f"{provider}: unreadable answer ({kind}): {MAY_HAVE_BEEN_SENT}"
    # Protocol and proxy errors raised before anything went out.
    return "retry", f"{provider}: request not sent ({kind})"


async def send_requests(
    requests: Sequence[Sequence[OutgoingSms]],
    send_one: Callable[[Sequence[OutgoingSms]], Awaitable[list[SendResult]]],
) -> list[SendResult]:
    """Send a batch split into several requests, in order.

    Refused credentials on the first request propagate (the worker pauses the
    campaign). On a later one, the earlier requests went through and their answers
    must reach the ledger: the rest come back as `retry`, and the next batch meets the
    refusal at once.
    """
    results: list[SendResult] = []
    for done, group in enumerate(requests):
        try:
            results.extend(await send_one(group))
        except ProviderAuthError as exc:
            if done == 0:
                raise
            rest = [sms for later in requests[done:] for sms in later]
            results.extend(SendResult(sms.message_id, "retry", reason=str(exc)) for sms in rest)
            break
    return results


async def send_split(
    name: str,
    max_batch: int,
    batch: Sequence[OutgoingSms],
    send_one: Callable[[Sequence[OutgoingSms]], Awaitable[list[SendResult]]],
) -> list[SendResult]:
    """What a batch API provider does with a batch: check its size, split it into
    requests (one per text and sender), send them in order."""
    check_batch_size(name, max_batch, batch)
    return await send_requests(split_requests(batch, max_batch), send_one)


def split_requests(batch: Sequence[OutgoingSms], size: int) -> list[list[OutgoingSms]]:
    """One request per (text, sender), at most `size` recipients, no number twice (a
    batch API would filter the second as a duplicate).

    Ordered by message id so that the same batch always splits the same way (and, for
    Octopush, reuses the same request_ids).
    """
    requests: list[list[OutgoingSms]] = []
    open_by_key: dict[tuple[str, str], list[list[OutgoingSms]]] = {}
    for sms in sorted(batch, key=lambda m: m.message_id):
        candidates = open_by_key.setdefault((sms.text, sms.sender_id), [])
        for group in candidates:
            if len(group) < size and all(other.to != sms.to for other in group):
                group.append(sms)
                break
        else:
            group = [sms]
            candidates.append(group)
            requests.append(group)
    return requests


def json_or_none(response: httpx.Response) -> Any:
    """The answer's JSON, or None when it is not JSON (the caller names the problem)."""
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None
