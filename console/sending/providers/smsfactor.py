"""SMSFactor: batch sends with our message id on each recipient, reports by webhook.

Where each shape comes from (stored copies of SMSFactor's public documentation):

- Send: https://dev.smsfactor.com/it/api/sms/invio/campagna-sms ("Campaign", in
  English) and the hexdocs of the sms_factor client (https://hexdocs.pm/sms_factor/
  SMSFactor.SendSMS.html) — `POST {api_url}/send`, `Authorization: Bearer <token>`,
  `Accept: application/json`, JSON `{"sms": {"message": {"text", "pushtype": "alert" |
  "marketing", "sender", "unicode": 0 | 1}, "recipients": {"gsm": [{"gsmsmsid": "<an id
  of your choice to link it to its delivery report>", "value": "33612345678"}]}}}`.
- Answer: https://dev.smsfactor.com/en/api/sms/send/send-single and .../send-list —
  `{"status": 1, "message": "OK", "ticket": "14672468", "cost", "credits", "total"
  (before filtering), "sent" (after filtering), "blacklisted", "duplicated", "invalid",
  "npai", "not_allowed", "flood", "country_limit"}`.
- Error statuses: the official PHP SDK (smsfactor/smsfactor-php-sdk,
  src/ApiRequestor.php) reads them from the body whatever the HTTP status: -1
  authentication, -2 XML error, -3 insufficient credits, -6 JSON error, -7 data
  error, -8 campaign under moderation ("should be accepted fairly quickly"), -99
  unknown; the words are in `details` (or `message`), or in `error` without a status.
- Delivery reports: https://dev.smsfactor.com/en/api/sms/webhook/delivery-report — a
  raw JSON POST `{"date", "status": 3, "destination": "33612345678", "message_id":
  "<our gsmsmsid>", "campaign_id", "country_code"}`, status 0 NOT_SENT, 1 SENT,
  2 NOT_DELIVERED, 3 DELIVERED, 4 NOT_ALLOWED, 5 INVALID_DESTINATION, 6 INVALID_SENDER,
  7 ROUTE_NOT_AVAILABLE, 9 REJECTED, 11 NETWORK_ERROR, 12 EXPIRED.
- Replies and STOPs: https://dev.smsfactor.com/it/api/sms/webhook/stop and the replies
  page (https://dev.smsfactor.com/en/api/sms/webhook/replies, seen through its twin
  doc.smsup.ch/en/api/sms/webhook/replies) — `{"date", "message", "from":
  "33612345678", "account_id", "last_message_id"}`. The two look alike, so the STOP
  webhook gets its own URL (`kind=stop`, see `registry.callback_urls`).

Guesses, where the pages are silent: the per-request recipient cap (we send at most
500); which HTTP statuses come with errors (we read the body's status first and
treat 401/403 as refused credentials, 429 and 5xx as retryable); whether a number
filtered at submission (blacklisted, invalid...) ever gets a report. The answer only
counts filtered numbers, so when some of a batch were filtered each message says so
in its reason and the reports tell which; when all were, all are rejected.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

import httpx

from console.composing.gsm import needs_ucs2
from console.config import SmsFactorConfig
from console.sending.providers.base import (
    DeliveryReport,
    HttpRequest,
    InboundSms,
    Outcome,
    OutgoingSms,
    ProviderAuthError,
    SendResult,
)
from console.sending.providers.http import (
    MAY_HAVE_BEEN_SENT,
    json_or_none,
    retry_after,
    send_split,
    transport_failure,
)
from console.sending.states import ReportState

STATUS_MAP: Final[dict[int, tuple[str, ReportState]]] = {
    0: ("NOT_SENT", ReportState.SUBMITTED),
    1: ("SENT", ReportState.SUBMITTED),
    2: ("NOT_DELIVERED", ReportState.UNDELIVERED),
    3: ("DELIVERED", ReportState.DELIVERED),
    4: ("NOT_ALLOWED", ReportState.REJECTED),
    5: ("INVALID_DESTINATION", ReportState.REJECTED),
    6: ("INVALID_SENDER", ReportState.REJECTED),
    7: ("ROUTE_NOT_AVAILABLE", ReportState.UNDELIVERED),
    9: ("REJECTED", ReportState.REJECTED),
    11: ("NETWORK_ERROR", ReportState.UNDELIVERED),
    12: ("EXPIRED", ReportState.EXPIRED),
}

# Answer statuses (the body's "status"), with what each does to the messages.
AUTH_STATUS: Final = -1
NO_CREDIT_STATUS: Final = -3
MODERATION_STATUS: Final = -8
UNKNOWN_STATUS: Final = -99
DATA_ERROR_STATUS: Final = -7
# The filters an answer counts, in the order the reason lists them.
FILTERS: Final = (
    "invalid",
    "blacklisted",
    "npai",
    "duplicated",
    "not_allowed",
    "flood",
    "country_limit",
)

# Town hall messages are information, never marketing (no STOP mention, any hour; our
# own calendar policy applies before the send).
PUSHTYPE: Final = "alert"
# Query parameter the STOP webhook URL carries, since its body looks like a reply's.
KIND_PARAM: Final = "kind"


def gsm_number(e164: str) -> str:
    """SMSFactor's number format: international, without the plus."""
    return e164.removeprefix("+")


def provider_ref(ticket: str, message_id: int | str) -> str:
    return f"{ticket}:{message_id}"


class SmsFactorProvider:
    name = "smsfactor"
    # Not documented; a conservative size that keeps one request well under a second.
    max_batch = 500

    def __init__(self, config: SmsFactorConfig, token: str) -> None:
        self._config = config
        self._token = token
        self._url = f"{config.api_url.rstrip('/')}/send"

    def __repr__(self) -> str:
        return f"SmsFactorProvider(api_url={self._config.api_url!r})"

    async def send(
        self, client: httpx.AsyncClient, batch: Sequence[OutgoingSms]
    ) -> list[SendResult]:
        return await send_split(
            self.name, self.max_batch, batch, lambda group: self._send_request(client, group)
        )

    async def _send_request(
        self, client: httpx.AsyncClient, group: Sequence[OutgoingSms]
    ) -> list[SendResult]:
        first = group[0]
        body = {
            "sms": {
                "message": {
                    "text": first.text,
                    "pushtype": PUSHTYPE,
                    "sender": first.sender_id,
                    "unicode": 1 if needs_ucs2(first.text) else 0,
                },
                "recipients": {
                    "gsm": [
                        {"gsmsmsid": str(sms.message_id), "value": gsm_number(sms.to)}
                        for sms in group
                    ],
                },
            }
        }
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        try:
            response = await client.post(self._url, json=body, headers=headers)
        except httpx.RequestError as exc:
            outcome, reason = transport_failure(exc, "smsfactor")
            return [SendResult(sms.message_id, outcome, reason=reason) for sms in group]
        return self._results(group, response)

    def _results(self, group: Sequence[OutgoingSms], response: httpx.Response) -> list[SendResult]:
        status = response.status_code
        body = json_or_none(response)
        answer = _status(body)

        def every(
            outcome: Outcome, reason: str, ref: str = "", wait: float | None = None
        ) -> list[SendResult]:
            return [
                SendResult(
                    sms.message_id,
                    outcome,
                    provider_ref=provider_ref(ref, sms.message_id) if ref else "",
                    reason=reason,
                    retry_after=wait,
                )
                for sms in group
            ]

        if status in (401, 403) or answer in (AUTH_STATUS, NO_CREDIT_STATUS):
            raise ProviderAuthError(_error_words(status, body, response))
        if status == 429 or status >= 500:
            return every("retry", _error_words(status, body, response), wait=retry_after(response))
        if answer is None:
            if 200 <= status < 300:
                # Errors come back as 200 with a negative status too: an unreadable 2xx
                # confirms nothing, and SMSFactor has no dedupe key.
                return every(
                    "unknown", f"smsfactor: unreadable answer (HTTP {status}): {MAY_HAVE_BEEN_SENT}"
                )
            return every("failed", _error_words(status, body, response))
        ticket = str(body.get("ticket", "")) if isinstance(body, dict) else ""
        if answer == 1:
            return self._accepted(group, body, ticket)
        words = _error_words(status, body, response)
        if answer == MODERATION_STATUS:
            # Created and held until SMSFactor's staff release it: sent, not refused.
            return every("submitted", f"{words} (held for moderation)", ref=ticket)
        if answer == UNKNOWN_STATUS:
            return every("retry", words)
        if answer == DATA_ERROR_STATUS:
            return every("rejected", words)
        return every("failed", words)

    def _accepted(
        self, group: Sequence[OutgoingSms], body: Mapping[str, Any], ticket: str
    ) -> list[SendResult]:
        total = _count(body, "total", len(group))
        sent = _count(body, "sent", total)
        filtered = [f"{name} {_count(body, name, 0)}" for name in FILTERS if _count(body, name, 0)]
        detail = ", ".join(filtered) or "no reason given"
        if sent <= 0 < total:
            return [
                SendResult(
                    sms.message_id,
                    "rejected",
                    reason=f"smsfactor: filtered at submission ({detail})",
                )
                for sms in group
            ]
        reason = ""
        if sent < total:
            # The answer counts the filtered numbers without naming them.
            reason = (
                f"smsfactor: {total - sent} of {total} filtered at submission "
                f"({detail}); reports tell which"
            )
        return [
            SendResult(
                sms.message_id,
                "submitted",
                provider_ref=provider_ref(ticket, sms.message_id) if ticket else "",
                reason=reason,
            )
            for sms in group
        ]

    def parse_report(self, request: HttpRequest) -> list[DeliveryReport]:
        fields = _fields(request)
        code = _int(fields.get("status"))
        our_id = _int(fields.get("message_id"))
        if code is None or "destination" not in fields:
            raise ValueError("not an SMSFactor delivery report (no status or destination)")
        entry = STATUS_MAP.get(code)
        if entry is None:
            # A status SMSFactor added later: nothing for the ledger.
            return []
        name, state = entry
        campaign = str(fields.get("campaign_id", ""))
        return [
            DeliveryReport(
                message_id=our_id,
                provider_ref=provider_ref(campaign, our_id)
                if campaign and our_id is not None
                else campaign,
                state=state,
                provider_status=f"{code} {name}",
            )
        ]

    def parse_inbound(self, request: HttpRequest) -> InboundSms | None:
        fields = _fields(request)
        sender = str(fields.get("from", ""))
        if not sender or "message" not in fields:
            raise ValueError("not an SMSFactor reply or STOP (no from or message)")
        text = str(fields["message"])
        if request.query.get(KIND_PARAM) == "stop" and "stop" not in text.lower():
            # SMSFactor already took it as an unsubscribe, whatever the words.
            text = "STOP"
        return InboundSms(
            # SMSFactor drops the plus; put it back so the number reads as international.
            sender=f"+{sender}" if sender.isdigit() else sender,
            recipient="",
            text=text,
            # No id for an inbound SMS: sender and time tell a repeat from a new one.
            provider_ref=f"{sender}:{fields.get('date', '')}",
        )


def _fields(request: HttpRequest) -> Mapping[str, Any]:
    if request.form:
        return request.form
    if request.body:
        try:
            loaded = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            return {}
        if isinstance(loaded, dict):
            return loaded
    return {}


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _status(body: Any) -> int | None:
    return _int(body.get("status")) if isinstance(body, dict) else None


def _count(body: Mapping[str, Any], name: str, default: int) -> int:
    value = _int(body.get(name))
    return default if value is None else value


def _error_words(status: int, body: Any, response: httpx.Response) -> str:
    if isinstance(body, dict):
        answer = _status(body)
        words = next(
            (str(body[key]).strip() for key in ("details", "message", "error") if body.get(key)), ""
        )
        head = f"smsfactor {answer}" if answer is not None else f"smsfactor HTTP {status}"
        return f"{head}: {words}" if words else head
    if response.content:
        return f"smsfactor HTTP {status}: unreadable answer"
    return f"smsfactor HTTP {status}"
