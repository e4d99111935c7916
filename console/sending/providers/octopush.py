"""Octopush (API v1): up to 500 recipients per request, made safe to retry by request_id.

Where each shape comes from (stored copies of Octopush's public documentation):

- Send: https://dev.octopush.com/en/sms-gateway-api-documentation/send-sms/ and
  https://octopush.com/en/sms-gateway-api-documentation/send-sms/ —
  `POST {api_url}/sms-campaign/send`, headers `api-login` and `api-key`, JSON body with
  `recipients` ([{"phone_number": "+33..."}], "up to 500 contacts"), `text`, `type`
  ("sms_premium" | "sms_low_cost"), `purpose` ("alert" for transactional/alert,
  "wholesale" for marketing), `sender` (3-11 letters and digits), `request_id` ("to
  avoid sending same request multiple times... a validation error will be returned.
  A request_id will expire after 24 hours"), `auto_optimize_text`.
- Success answer: the PHP client's README (octopush/Octopush-SMS-API-PHP) —
  `{"sms_ticket": "sms_5fec89fe97109", "number_of_contacts": 1, "total_cost": 0.0333,
  "number_of_sms_needed": 1, "residual_credit": 99.5}`.
- Error answer: GitHub issue octopush/Octopush-SMS-API-PHP#20 quotes the API —
  `400 Bad Request {"code":121,"message":"STOP mention ([STOP au 30101]) is missing
  from your text."}`. Codes: https://octopush.com/en/sms-gateway-api-documentation/return-codes/
  (101 incorrect login, 104/105 out of credit, 106 bad sender, 113 account not
  validated, 117 no correct number, 120 same request_id already sent, 121/122 STOP
  mention missing...).
- Delivery reports: https://dev.octopush.com/en/sms-gateway-api-documentation/callbacks/acknowledge-receipt
  and https://octopush-api.readme.io/reference/get_callbacks-statuses — a POST to the
  URL set in the Octopush interface, JSON `{"channel": "sms", "message_id":
  "sms_...", "number": "+33600112233", "status": "DELIVERED", "delivery_date": ...}`
  with status ACK, DELIVERED, NOT_DELIVERED, NOT_ALLOWED, UNKNOWN_DELIVERY,
  BAD_DESTINATION, BLACKLISTED_NUMBER, UNDEFINED (READ for other channels).
- Inbound: https://dev.octopush.com/en/sms-gateway-api-documentation/inbounds/ (fields
  message_id, number, text, sim_card_number, reception_date) and the opt-out callback
  https://dev.octopush.com/en/sms-gateway-api-documentation/opt-out-management/
  (message_id, number, text, stop_date).

Guesses, where the pages are silent: the HTTP status of each error code (we map by
code first, then by status); that 401/403 and 429 are used at all; the request_id's
allowed length and characters (ours are 39 characters of [a-z0-9-]); whether the
callbacks are JSON or form-encoded (both are read). A report names the campaign's
ticket and the number, never our id, so each message's provider_ref is
"<sms_ticket>:<number>" and a request never holds the same number twice.

A lost answer (timeout, dropped connection) is where request_id earns its keep: the
very same request is posted again at once, and Octopush either takes it (the first
never arrived) or answers 120 (it did). Only when that also fails does the message
come back `unknown`.

The callback URLs are not sent with each request: the operator pastes the ones
`registry.callback_urls` prints into the Octopush interface.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import parse_qsl

import httpx

from console.config import OctopushConfig
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
    json_or_none,
    retry_after,
    send_split,
    transport_failure,
)
from console.sending.states import ReportState

# Octopush statuses of an SMS report. ACK is the first carrier's receipt; UNDEFINED and
# UNKNOWN_DELIVERY say the network never told: the message stays submitted (it will
# show as "no report"), the event is still recorded.
STATUS_MAP: Final[dict[str, ReportState]] = {
    "ACK": ReportState.SUBMITTED,
    "UNDEFINED": ReportState.SUBMITTED,
    "UNKNOWN_DELIVERY": ReportState.SUBMITTED,
    "DELIVERED": ReportState.DELIVERED,
    "READ": ReportState.DELIVERED,
    "NOT_DELIVERED": ReportState.UNDELIVERED,
    "NOT_ALLOWED": ReportState.REJECTED,
    "BAD_DESTINATION": ReportState.REJECTED,
    "BLACKLISTED_NUMBER": ReportState.REJECTED,
}

# Return codes that mean nothing will go through until someone acts on the account:
# they stop the campaign instead of failing each message.
ACCOUNT_CODES: Final[dict[int, str]] = {
    101: "incorrect login details",
    104: "out of credit",
    105: "not enough credit (last order awaiting validation)",
    108: "login missing",
    109: "api key missing",
    113: "account not validated",
    114: "account under investigation",
}
# The request reached Octopush but the messages as written were refused.
REJECTED_CODES: Final = frozenset({102, 106, 107, 117, 119, 121, 122})
ALREADY_SENT: Final = 120

SMS_TYPE: Final = "sms_premium"
# Town hall messages are public information, never marketing: Octopush's "alert"
# purpose (transactional/alert) sends round the clock without a STOP mention; the
# quiet-hours policy is ours to apply before the send.
PURPOSE: Final = "alert"


def request_id_for(message_ids: Sequence[int]) -> str:
    """The dedupe key of one request: the same messages always give the same key."""
    joined = ",".join(str(i) for i in sorted(message_ids))
    return "tocsin-" + hashlib.sha256(f"octopush:{joined}".encode()).hexdigest()[:32]


def provider_ref(ticket: str, number: str) -> str:
    return f"{ticket}:{number}"


class OctopushProvider:
    name = "octopush"
    # "campaign (up to 500 contacts)" per request.
    max_batch = 500

    def __init__(
        self, config: OctopushConfig, api_key: str, *, reposts: int = 1, repost_delay: float = 1.0
    ) -> None:
        if not config.api_login:
            raise ValueError("provider.octopush.api_login is empty")
        self._config = config
        self._api_key = api_key
        # Same-request_id re-posts after a lost answer, and the pause before each.
        self._reposts = reposts
        self._repost_delay = repost_delay
        self._url = f"{config.api_url.rstrip('/')}/sms-campaign/send"

    def __repr__(self) -> str:
        return f"OctopushProvider(api_login={self._config.api_login!r})"

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
        request_id = request_id_for([sms.message_id for sms in group])
        body = {
            "recipients": [{"phone_number": sms.to} for sms in group],
            "text": first.text,
            "type": SMS_TYPE,
            "purpose": PURPOSE,
            "sender": first.sender_id,
            "request_id": request_id,
            # The composer already chose the characters (and the GSM-7 substitutions)
            # the operator approved: Octopush must not rewrite them.
            "auto_optimize_text": False,
        }
        headers = {"api-login": self._config.api_login, "api-key": self._api_key}
        # Why an earlier attempt's answer is missing: from then on the messages may
        # have been sent, and only Octopush's word (a ticket, or 120) settles it.
        lost = ""
        for attempt in range(1 + self._reposts):
            if attempt:
                await asyncio.sleep(self._repost_delay)
            try:
                response = await client.post(self._url, json=body, headers=headers)
            except httpx.RequestError as exc:
                outcome, reason = transport_failure(exc, "octopush")
                if outcome == "retry" and not lost:
                    return [SendResult(sms.message_id, "retry", reason=reason) for sms in group]
                lost = lost or reason
                continue
            results = self._results(group, request_id, response)
            if lost:
                return [
                    dataclasses.replace(r, outcome="unknown", reason=f"{lost}; then {r.reason}")
                    if r.outcome == "retry"
                    else r
                    for r in results
                ]
            return results
        reason = f"{lost}; re-sending this batch as is reuses {request_id}"
        return [SendResult(sms.message_id, "unknown", reason=reason) for sms in group]

    def _results(
        self, group: Sequence[OutgoingSms], request_id: str, response: httpx.Response
    ) -> list[SendResult]:
        status = response.status_code
        body = json_or_none(response)
        ticket = body.get("sms_ticket") if isinstance(body, dict) else None
        code = _code(body)

        def every(outcome: Outcome, reason: str, wait: float | None = None) -> list[SendResult]:
            return [
                SendResult(sms.message_id, outcome, reason=reason, retry_after=wait)
                for sms in group
            ]

        if 200 <= status < 300 and isinstance(ticket, str) and ticket:
            return [
                SendResult(sms.message_id, "submitted", provider_ref=provider_ref(ticket, sms.to))
                for sms in group
            ]
        if code == ALREADY_SENT:
            # Our own earlier attempt with this request_id was accepted: the answer
            # was lost, not the messages. Reports cannot be matched without the ticket.
            return every(
                "submitted",
                f"octopush 120: already accepted under {request_id} "
                "(ticket unknown, reports will not match)",
            )
        if 200 <= status < 300 and code is None:
            # A 2xx means the campaign was created; re-sending would be refused (120)
            # at best and double it after 24 hours at worst.
            return every(
                "submitted",
                f"octopush: unreadable answer to an accepted send "
                f"(HTTP {status}); reports will not match",
            )
        words = _error_words(status, body, response)
        if status in (401, 403) or code in ACCOUNT_CODES:
            raise ProviderAuthError(words)
        if status == 429 or status >= 500:
            return every("retry", words, retry_after(response))
        if code in REJECTED_CODES:
            return every("rejected", words)
        return every("failed", words)

    def parse_report(self, request: HttpRequest) -> list[DeliveryReport]:
        fields = _fields(request)
        channel = str(fields.get("channel", "sms")).lower()
        status = str(fields.get("status", "")).upper()
        ticket = str(fields.get("message_id", ""))
        number = str(fields.get("number", ""))
        if not status or not ticket or not number:
            raise ValueError("not an Octopush delivery report (no message_id, number or status)")
        state = STATUS_MAP.get(status)
        if channel != "sms" or state is None:
            # Another channel's report, or a status Octopush added later.
            return []
        return [
            DeliveryReport(
                message_id=None,
                provider_ref=provider_ref(ticket, number),
                state=state,
                provider_status=status,
            )
        ]

    def parse_inbound(self, request: HttpRequest) -> InboundSms | None:
        fields = _fields(request)
        number = str(fields.get("number", ""))
        if not number or ("text" not in fields and "stop_date" not in fields):
            raise ValueError("not an Octopush inbound or opt-out callback (no number or text)")
        text = str(fields.get("text", ""))
        ticket = str(fields.get("message_id", ""))
        if "stop_date" in fields:
            # The opt-out callback: Octopush already took this as an unsubscribe, in
            # whatever words. Our STOP rule must see it as one too, topic word kept.
            if "stop" not in text.lower():
                text = "STOP"
            when = str(fields.get("stop_date", ""))
        else:
            when = str(fields.get("reception_date", ""))
        return InboundSms(
            sender=number,
            recipient=str(fields.get("sim_card_number", "")),
            text=text,
            # Octopush gives an inbound SMS no id of its own: number and time tell a
            # repeated callback from a new message.
            provider_ref=f"{ticket}:{number}:{when}",
        )


def _fields(request: HttpRequest) -> Mapping[str, Any]:
    """The callback's fields, whether Octopush posted JSON (as its samples decode) or a
    form (as its tables call them "query fields")."""
    if request.form:
        return request.form
    if request.body:
        try:
            loaded = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            return dict(parse_qsl(request.body.decode("utf-8", "replace")))
        if isinstance(loaded, dict):
            return loaded
    return {}


def _code(body: Any) -> int | None:
    if not isinstance(body, dict):
        return None
    code = body.get("code")
    if isinstance(code, int) and not isinstance(code, bool):
        return code if code != 0 else None
    if isinstance(code, str) and code.strip().isdigit():
        return int(code) or None
    return None


def _error_words(status: int, body: Any, response: httpx.Response) -> str:
    code = _code(body)
    message = str(body.get("message", "")).strip() if isinstance(body, dict) else ""
    if code is not None:
        message = message or ACCOUNT_CODES.get(code, "")
        return f"octopush {code}: {message}" if message else f"octopush {code}"
    if message:
        return f"octopush HTTP {status}: {message}"
    if body is None and response.content:
        return f"octopush HTTP {status}: unreadable answer"
    return f"octopush HTTP {status}"
