"""Kannel: the town's own gateway, through smsbox's `cgi-bin/sendsms`.

Sending: one GET per message (max_batch 1), because the dlr-url must carry our
message id (sendsms returns none) and because a bad number among several in `to` is
dropped by Kannel with only a log line:

    GET <url>?username&password&from=<sender id>&to=<E.164>&text=<UTF-8 text>
        &charset=UTF-8[&coding=2]&dlr-mask=31&dlr-url=<see report_url>

- `charset=UTF-8` always: Kannel converts the text itself. `coding=2` (UCS-2) only
  when the text has a character outside GSM-7 (console.composing.gsm): with 7-bit coding Kannel
  would send ç as Ç and ê as `?`.
- `to` goes as E.164 with its `+` (url-encoded as %2B), e.g. `+33612345678`; Kannel
  passes it to the SMSC unchanged. A town whose SMSC wants another form (0033..., 06...)
  rewrites it in its smsc group (`unified-prefix`). A number with anything but digits
  after the `+` is refused here: Kannel would split `to` at spaces and send to each part.
- Answers: 202 `0: Accepted for delivery` (or `Sent.` with
  `immediate-sendsms-reply = true`) -> submitted; 202 `3: Queued for later delivery`
  (the SMSC is off line; bearerbox holds it, and loses it if it stops without a
  store-file) -> submitted with that reason; 403 -> ProviderAuthError; 400 -> rejected
  with Kannel's words; 503 and other 5xx -> retry; connection refused or a connect
  timeout -> retry; a timeout or a dropped connection once the request may have gone
  out -> `unknown` ("timeout after sending: may have been sent").

Delivery reports come to `report_url(dlr_base_url, message_id)`, with Kannel's
escapes: `mid=<ours>&type=%d&smsc_reply=%A&ref=%F`. Kannel's types: 1 delivered,
2 undelivered, 4 buffered by the SMSC, 8 accepted by the SMSC, 16 rejected by the SMSC.

Inbound SMS (STOP) come through an sms-service whose get-url is
`sms_service_get_url(base_url)`. Both callback URLs keep the base URL's query (the
worker's token: make it URL-safe and without `%`, which Kannel reads as an escape) and
append their parameters with `&`.

What the town's kannel.conf must hold (tests/e2e/kannel_harness.py writes one):

    group = smsbox
    mo-recode = true                 # UCS-2 MOs reach us as UTF-8
    immediate-sendsms-reply = true   # optional, see below
    group = sendsms-user
    max-messages = 10                # the default, 1, silently TRUNCATES longer texts
    concatenation = true
    group = sms-service
    keyword = default
    catch-all = true
    max-messages = 0                 # never text our endpoint's answer back
    get-url = "<sms_service_get_url(...)>"

Texts that need more parts than `max_parts` (the sendsms-user's max-messages) are
rejected here rather than truncated by Kannel.

`immediate-sendsms-reply = true` makes smsbox answer `202 Sent.` before bearerbox has
taken the message: several times the throughput with a dlr-mask (measured on
loopback: ~400-500 messages/s instead of ~75-130/s), but `3: Queued for later
delivery` is then never seen (the dlr-url still reports what happens). Both answers
are handled.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Final

import httpx

from console.composing.gsm import needs_ucs2, segment_count
from console.config import KannelConfig
from console.sending.providers.base import (
    DeliveryReport,
    HttpRequest,
    InboundSms,
    Outcome,
    OutgoingSms,
    ProviderAuthError,
    SendResult,
)
from console.sending.providers.http import retry_after
from console.sending.states import ReportState

# A timeout once the request may have reached smsbox: the SMS may be on its way, and
# sendsms has no dedupe key, so a re-send may double it -> `unknown` (the ledger's
# `uncertain`; its campaign policy decides whether to re-send).
TIMEOUT_OUTCOME: Final[Outcome] = "unknown"
TIMEOUT_REASON: Final = "timeout after sending: may have been sent"
UNREACHABLE_REASON: Final = "kannel unreachable"
AUTH_FAILED: Final = "kannel: Authorization failed for sendsms"

# The sendsms-user max-messages this provider assumes by default.
DEFAULT_MAX_PARTS: Final = 10

# All report types: delivered, undelivered, buffered, SMSC ack, SMSC reject.
DLR_MASK: Final = 31

REPORT_STATES: Final[Mapping[int, ReportState]] = {
    1: ReportState.DELIVERED,
    2: ReportState.UNDELIVERED,
    4: ReportState.SUBMITTED,  # buffered by the SMSC (handset off)
    8: ReportState.SUBMITTED,  # accepted by the SMSC
    16: ReportState.REJECTED,  # refused by the SMSC
}

_E164 = re.compile(r"\+[1-9][0-9]{5,14}")


def _with_query(base_url: str, query: str) -> str:
    """`base_url` plus `query`, after the base's own query (a token) if it has one."""
    if "?" not in base_url:
        return f"{base_url}?{query}"
    return base_url + ("" if base_url.endswith(("?", "&")) else "&") + query


def report_url(dlr_base_url: str, message_id: int) -> str:
    """The dlr-url for one message: our id, then Kannel's escapes (type, SMSC reply,
    SMSC message id), which Kannel fills in when it calls."""
    return _with_query(dlr_base_url, f"mid={message_id}&type=%d&smsc_reply=%A&ref=%F")


def sms_service_get_url(base_url: str) -> str:
    """The get-url for the town's catch-all sms-service: sender (%p), recipient (%P),
    the exact body (%b, where %a would collapse spaces), its coding (%c) and charset
    (%C), and Kannel's message id (%I, the same on Kannel's retries)."""
    return _with_query(base_url, "from=%p&to=%P&text=%b&coding=%c&charset=%C&id=%I")


class KannelProvider:
    """smsbox's sendsms; see the module docstring for the kannel.conf it expects."""

    name = "kannel"
    max_batch = 1

    def __init__(
        self,
        config: KannelConfig,
        password: str,
        dlr_base_url: str,
        *,
        max_parts: int = DEFAULT_MAX_PARTS,
    ) -> None:
        self.config = config
        self.password = password
        self.dlr_base_url = dlr_base_url
        self.max_parts = max_parts

    # ---- sending ---------------------------------------------------------------

    def params(self, sms: OutgoingSms) -> dict[str, str]:
        """The sendsms query for one message, in a stable order."""
        params = {
            "username": self.config.username,
            "password": self.password,
            "from": sms.sender_id,
            "to": sms.to,
            "text": sms.text,
            "charset": "UTF-8",
        }
        if needs_ucs2(sms.text):
            params["coding"] = "2"
        params["dlr-mask"] = str(DLR_MASK)
        params["dlr-url"] = report_url(self.dlr_base_url, sms.message_id)
        return params

    async def send(
        self, client: httpx.AsyncClient, batch: Sequence[OutgoingSms]
    ) -> list[SendResult]:
        # One request per message (max_batch is 1); in order, so that a refused
        # password stops at the first message.
        return [await self._send_one(client, sms) for sms in batch]

    async def _send_one(self, client: httpx.AsyncClient, sms: OutgoingSms) -> SendResult:
        mid = sms.message_id
        if not _E164.fullmatch(sms.to):
            return SendResult(mid, "rejected", reason=f"kannel: not an E.164 number: {sms.to!r}")
        parts = segment_count(sms.text)
        if parts > self.max_parts:
            return SendResult(
                mid,
                "rejected",
                reason=f"kannel: the text needs {parts} SMS, over the {self.max_parts} "
                "that smsbox's max-messages allows (it would be truncated)",
            )
        try:
            answer = await client.get(self.config.url, params=self.params(sms))
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            return SendResult(mid, "retry", reason=f"{UNREACHABLE_REASON} ({type(exc).__name__})")
        except httpx.PoolTimeout:
            # Never left this process: no connection was free.
            return SendResult(mid, "retry", reason="kannel: no free connection (pool timeout)")
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            # Read/write timeouts, a dropped connection: smsbox may have taken it.
            kind = "timeout" if isinstance(exc, httpx.TimeoutException) else type(exc).__name__
            return SendResult(mid, TIMEOUT_OUTCOME, reason=f"{TIMEOUT_REASON} ({kind})")
        return self._result(mid, answer)

    def _result(self, mid: int, answer: httpx.Response) -> SendResult:
        body = answer.text.strip()
        status = answer.status_code
        if 200 <= status < 300:
            if body.startswith("3:"):
                return SendResult(
                    mid,
                    "submitted",
                    reason=f"kannel: {body} (the SMSC is off line: bearerbox holds it)",
                )
            return SendResult(mid, "submitted")
        if status == 403:
            raise ProviderAuthError(AUTH_FAILED)
        if status >= 500:
            return SendResult(
                mid,
                "retry",
                reason=f"kannel: HTTP {status}: {body}".rstrip(": "),
                retry_after=retry_after(answer),
            )
        if 400 <= status < 500:
            return SendResult(mid, "rejected", reason=f"kannel: {body or f'HTTP {status}'}")
        return SendResult(mid, "retry", reason=f"kannel: unexpected HTTP {status}: {body}")

    # ---- callbacks -------------------------------------------------------------

    def parse_report(self, request: HttpRequest) -> list[DeliveryReport]:
        query = request.query
        try:
            mid = int(query.get("mid", ""))
            kind = int(query.get("type", ""))
        except ValueError:
            return []
        state = REPORT_STATES.get(kind)
        if state is None:
            return []
        reply = query.get("smsc_reply", "").strip()
        status = f"type {kind}" + (f": {reply}" if reply else "")
        return [
            DeliveryReport(
                message_id=mid,
                provider_ref=query.get("ref", "").strip(),
                state=state,
                provider_status=status,
            )
        ]

    def parse_inbound(self, request: HttpRequest) -> InboundSms | None:
        query = request.query
        sender = query.get("from", "").strip()
        if not sender or "text" not in query:
            return None
        text = query["text"]
        charset = query.get("charset", "").strip()
        if charset and charset.upper().replace("_", "-") not in ("UTF-8", "UTF8"):
            text = _recode(request.url, charset) or text
        return InboundSms(
            sender=sender,
            recipient=query.get("to", "").strip(),
            text=text,
            provider_ref=query.get("id", "").strip(),
        )


def _recode(url: str, charset: str) -> str | None:
    """The MO text decoded from the raw URL in `charset` (a smsbox without mo-recode
    sends UCS-2 MOs as UTF-16BE bytes, which a UTF-8 query parser garbles)."""
    if not url:
        return None
    raw = urllib.parse.urlsplit(url).query
    for pair in raw.split("&"):
        key, _, value = pair.partition("=")
        if key == "text":
            data = urllib.parse.unquote_to_bytes(value.replace("+", " "))
            try:
                return data.decode(charset)
            except (LookupError, UnicodeDecodeError):
                return None
    return None
