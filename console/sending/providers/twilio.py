"""Twilio Programmable Messaging: one message per request, reports by signed callback.

The contract followed here is Twilio's public REST documentation:

- Send: `POST {api_url}/2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded
  `To`, `From` (or `MessagingServiceSid`), `Body`, `StatusCallback`, with HTTP Basic
  auth (AccountSid, AuthToken). `201 Created` returns the Message resource as JSON
  (`sid` "SM...", `status` queued / accepted / sending...).
- Errors: JSON `{"code": 21211, "message": "...", "more_info": "...", "status": 400}`.
  400 carries the reason for this message (21211 invalid To, 21614 not a mobile,
  21610 recipient sent STOP...); 401 / 403 (20003) refuse the credentials; 429 asks us
  to slow down; 5xx are Twilio's own trouble.
- Status callback: form POST with `MessageSid`, `MessageStatus` (queued, sending, sent,
  delivered, undelivered, failed...) and, on failure, `ErrorCode`. Our message id rides
  in the callback URL (`?mid=123`), so a report never depends on the send's answer
  having been committed.
- Inbound SMS: form POST with `MessageSid`, `From`, `To`, `Body`.
- Every webhook is signed: `X-Twilio-Signature` = base64(HMAC-SHA1(auth token,
  full URL + each POST parameter name followed by its value, sorted by name)). A
  name given several times contributes each of its values, sorted, as Twilio's own
  helper libraries compute it (`RequestValidator.compute_signature`). The URL is the
  one Twilio called: our configured public URL (`worker.public_url`), never the
  Host header the request came with. The worker's endpoint calls `verify_signature`
  instead of the URL token check used by the other providers.

Twilio has no idempotency key for sends: an answer lost after the request left (read
timeout, dropped connection) may hide a message that was sent, so it comes back as
`unknown` (the ledger's uncertain), never as `retry`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import httpx

from console.config import TwilioConfig
from console.contacts.numbers import mask
from console.sending.providers.base import (
    DeliveryReport,
    HttpRequest,
    InboundSms,
    OutgoingSms,
    ProviderAuthError,
    SendResult,
    check_batch_size,
)
from console.sending.providers.http import (
    json_or_none,
    retry_after,
    transport_failure,
)
from console.sending.states import ReportState

# Twilio's MessageStatus values and where each leaves our ledger. "received" and
# "receiving" belong to inbound messages and are not reports.
STATUS_MAP: Final[dict[str, ReportState]] = {
    "accepted": ReportState.SUBMITTED,
    "scheduled": ReportState.SUBMITTED,
    "queued": ReportState.SUBMITTED,
    "sending": ReportState.SUBMITTED,
    "sent": ReportState.SUBMITTED,
    "delivered": ReportState.DELIVERED,
    "read": ReportState.DELIVERED,
    "undelivered": ReportState.UNDELIVERED,
    "failed": ReportState.FAILED,
    "canceled": ReportState.FAILED,
}

# Query parameter carrying our message id in the StatusCallback URL.
MESSAGE_ID_PARAM: Final = "mid"


class TwilioProvider:
    name = "twilio"
    # The Messages resource takes one recipient per request.
    max_batch = 1

    def __init__(self, config: TwilioConfig, auth_token: str, status_callback_url: str) -> None:
        if not config.account_sid:
            raise ValueError("provider.twilio.account_sid is empty")
        self._config = config
        self._auth_token = auth_token
        self._callback = status_callback_url
        self._url = (
            f"{config.api_url.rstrip('/')}/2010-04-01/Accounts/{config.account_sid}/Messages.json"
        )

    def __repr__(self) -> str:
        return f"TwilioProvider(account_sid={self._config.account_sid!r})"

    def status_callback_for(self, message_id: int) -> str:
        glue = "&" if "?" in self._callback else "?"
        return f"{self._callback}{glue}{MESSAGE_ID_PARAM}={message_id}"

    async def send(
        self, client: httpx.AsyncClient, batch: Sequence[OutgoingSms]
    ) -> list[SendResult]:
        check_batch_size(self.name, self.max_batch, batch)
        return [await self._send_one(client, sms) for sms in batch]

    async def _send_one(self, client: httpx.AsyncClient, sms: OutgoingSms) -> SendResult:
        form = {
            "To": sms.to,
            "Body": sms.text,
            "StatusCallback": self.status_callback_for(sms.message_id),
        }
        if self._config.messaging_service_sid:
            form["MessagingServiceSid"] = self._config.messaging_service_sid
        else:
            form["From"] = sms.sender_id
        try:
            response = await client.post(
                self._url, data=form, auth=(self._config.account_sid, self._auth_token)
            )
        except httpx.RequestError as exc:
            outcome, reason = transport_failure(exc, "twilio")
            return SendResult(sms.message_id, outcome, reason=reason)
        return self._result(sms, response)

    def _result(self, sms: OutgoingSms, response: httpx.Response) -> SendResult:
        status = response.status_code
        body = json_or_none(response)
        if 200 <= status < 300:
            if not isinstance(body, dict) or not isinstance(body.get("sid"), str):
                # Twilio answered 2xx: it created the message, we just cannot read its
                # sid. Re-sending would double it, and the status callback still
                # finds the message through our id in its URL.
                return SendResult(
                    sms.message_id,
                    "submitted",
                    reason=f"twilio: unreadable answer to an accepted send (HTTP {status})",
                )
            return SendResult(sms.message_id, "submitted", provider_ref=body["sid"])
        words = _scrub(_error_words(status, body, response), sms.to)
        if status in (401, 403):
            raise ProviderAuthError(words)
        if status == 404:
            raise ProviderAuthError(f"{words} (check provider.twilio.account_sid)")
        if status == 429 or status >= 500:
            return SendResult(
                sms.message_id, "retry", reason=words, retry_after=retry_after(response)
            )
        if status == 400:
            return SendResult(sms.message_id, "rejected", reason=words)
        return SendResult(sms.message_id, "failed", reason=words)

    def parse_report(self, request: HttpRequest) -> list[DeliveryReport]:
        status = request.form.get("MessageStatus", "")
        sid = request.form.get("MessageSid", "")
        if not status or not sid:
            raise ValueError("not a Twilio status callback (no MessageSid or MessageStatus)")
        state = STATUS_MAP.get(status.lower())
        if state is None:
            # A status Twilio added later, or an inbound one: nothing for the ledger.
            return []
        error = request.form.get("ErrorCode", "")
        return [
            DeliveryReport(
                message_id=_int(request.query.get(MESSAGE_ID_PARAM, "")),
                provider_ref=sid,
                state=state,
                provider_status=f"{status} {error}".strip(),
            )
        ]

    def parse_inbound(self, request: HttpRequest) -> InboundSms | None:
        sender = request.form.get("From", "")
        if not sender or "Body" not in request.form:
            raise ValueError("not a Twilio inbound message (no From or Body)")
        return InboundSms(
            sender=sender,
            recipient=request.form.get("To", ""),
            text=request.form["Body"],
            provider_ref=request.form.get("MessageSid", ""),
        )

    def verify_signature(self, request: HttpRequest) -> bool:
        """True when X-Twilio-Signature matches the URL and form Twilio signed."""
        given = _header(request.headers, "X-Twilio-Signature")
        if not given or not request.url:
            return False
        # Repeated names are part of what Twilio signed: the pairs as they came.
        params = request.form_items or tuple(request.form.items())
        # Only our public address: the request's own host is whatever the caller put
        # in its Host header, and a signature Twilio made for another of the
        # account's addresses must not pass here.
        return any(
            hmac.compare_digest(signature(self._auth_token, url, params), given)
            for candidate in dict.fromkeys(self._public_urls(request.url))
            for url in _url_variants(candidate)
        )

    def _public_urls(self, received: str) -> list[str]:
        """The received URL as Twilio may have called it, through the public address.

        Behind a reverse proxy the worker sees http://127.0.0.1:8765/reports/twilio
        while Twilio signed https://town.example/tocsin/reports/twilio: rebuild the
        latter from the public base our callback URL was made of, whether the proxy
        strips the base's path or passes it on.
        """
        callback = urlsplit(self._callback)
        base_path = callback.path
        for suffix in (f"/reports/{self.name}", f"/inbound/{self.name}"):
            if base_path.endswith(suffix):
                base_path = base_path[: -len(suffix)]
                break
        got = urlsplit(received)
        return [
            urlunsplit((callback.scheme, callback.netloc, path, got.query, ""))
            for path in (base_path + got.path, got.path)
        ]


def signature(
    auth_token: str, url: str, params: Mapping[str, str] | Iterable[tuple[str, str]]
) -> str:
    """Twilio's webhook signature of a form POST to `url`: the names sorted, each
    followed by each of its values, sorted (once each, as Twilio's libraries do)."""
    pairs = params.items() if isinstance(params, Mapping) else params
    values: dict[str, set[str]] = {}
    for name, value in pairs:
        values.setdefault(name, set()).add(value)
    payload = url + "".join(
        f"{name}{value}" for name in sorted(values) for value in sorted(values[name])
    )
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _url_variants(url: str) -> list[str]:
    """The URL as received, with and without the scheme's default port.

    Behind a proxy the port may be added or dropped on the way; Twilio signs the URL
    it called, which is one of these.
    """
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    variants = [url]
    if default is None or parts.hostname is None:
        return variants
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    if parts.port is None:
        variants.append(urlunsplit(parts._replace(netloc=f"{prefix}{host}:{default}")))
    elif parts.port == default:
        variants.append(urlunsplit(parts._replace(netloc=f"{prefix}{host}")))
    return variants


def _header(headers: Mapping[str, str], name: str) -> str:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return ""


def _error_words(status: int, body: Any, response: httpx.Response) -> str:
    if isinstance(body, dict) and ("code" in body or "message" in body):
        code = body.get("code")
        message = str(body.get("message", "")).strip()
        head = f"twilio {code}" if code is not None else f"twilio HTTP {status}"
        return f"{head}: {message}" if message else head
    if body is None and response.content:
        return f"twilio HTTP {status}: unreadable answer"
    return f"twilio HTTP {status}"


def _scrub(text: str, number: str) -> str:
    """The provider's words without the full number (they end up in logs)."""
    if not number:
        return text
    masked = mask(number)
    return text.replace(number, masked).replace(number.lstrip("+"), masked)


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None
