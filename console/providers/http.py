"""What every HTTP provider reads the same way: Retry-After, and whether a transport
error means the SMS surely was not sent (`retry`) or may have been (`unknown`)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

import httpx

from console.providers.base import Outcome

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
