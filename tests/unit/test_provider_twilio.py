"""Twilio against its documented request and answer shapes, errors and webhooks included."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from console.config import TwilioConfig
from console.sending.providers.base import HttpRequest, OutgoingSms, ProviderAuthError
from console.sending.providers.twilio import TwilioProvider, signature

SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "twilio-secret-token"
CALLBACK = "https://mairie.example/tocsin/reports/twilio"
SMS = OutgoingSms(
    message_id=42, to="+33612345678", text="Coupure d'eau demain 9h-12h", sender_id="MAIRIE"
)

Handler = Callable[[httpx.Request], httpx.Response]


def provider(**config: str) -> TwilioProvider:
    return TwilioProvider(TwilioConfig(account_sid=SID, **config), TOKEN, CALLBACK)


def client(handler: Handler) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def form_of(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def created(request: httpx.Request) -> httpx.Response:
    form = form_of(request)
    return httpx.Response(
        201,
        json={
            "account_sid": SID,
            "api_version": "2010-04-01",
            "body": form["Body"],
            "direction": "outbound-api",
            "error_code": None,
            "from": form.get("From"),
            "sid": "SM0123456789abcdef0123456789abcdef",
            "status": "queued",
            "to": form["To"],
        },
    )


def error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status,
            headers=headers,
            json={
                "code": code,
                "message": message,
                "status": status,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
            },
        )

    return handler


async def test_a_send_posts_the_documented_form_with_basic_auth() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return created(request)

    async with client(handler) as http:
        results = await provider().send(http, [SMS])

    request = seen[0]
    assert request.method == "POST"
    assert str(request.url) == (f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json")
    expected_auth = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected_auth}"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form_of(request) == {
        "To": "+33612345678",
        "From": "MAIRIE",
        "Body": "Coupure d'eau demain 9h-12h",
        "StatusCallback": f"{CALLBACK}?mid=42",
    }
    assert [(r.message_id, r.outcome, r.provider_ref) for r in results] == [
        (42, "submitted", "SM0123456789abcdef0123456789abcdef")
    ]


async def test_a_messaging_service_replaces_the_sender_id() -> None:
    seen: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(form_of(request))
        return created(request)

    async with client(handler) as http:
        await provider(messaging_service_sid="MG0123").send(http, [SMS])
    assert seen[0]["MessagingServiceSid"] == "MG0123"
    assert "From" not in seen[0]


async def test_the_api_url_comes_from_the_config() -> None:
    urls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        return created(request)

    async with client(handler) as http:
        await provider(api_url="http://127.0.0.1:9/").send(http, [SMS])
    assert urls == [f"http://127.0.0.1:9/2010-04-01/Accounts/{SID}/Messages.json"]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (21211, "The 'To' number +33612345678 is not a valid phone number."),
        (21614, "'To' number is not a valid mobile number"),
        (21610, "Attempt to send to unsubscribed recipient"),
    ],
)
async def test_a_refused_number_is_rejected_with_twilios_words(code: int, message: str) -> None:
    async with client(error(400, code, message)) as http:
        [result] = await provider().send(http, [SMS])
    assert result.outcome == "rejected"
    assert result.reason.startswith(f"twilio {code}: ")
    # The reason reaches logs: the full number never does.
    assert "+33612345678" not in result.reason
    assert "33612345678" not in result.reason
    if code == 21211:
        assert "+33 6 ** ** ** 78" in result.reason


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_credentials_raise_instead_of_failing_the_message(status: int) -> None:
    async with client(error(status, 20003, "Authenticate")) as http:
        with pytest.raises(ProviderAuthError, match="twilio 20003: Authenticate"):
            await provider().send(http, [SMS])


async def test_an_unknown_account_stops_the_campaign_too() -> None:
    handler = error(404, 20404, "The requested resource was not found")
    async with client(handler) as http:
        with pytest.raises(ProviderAuthError, match="account_sid"):
            await provider().send(http, [SMS])


async def test_429_is_retried_after_the_delay_twilio_asks() -> None:
    handler = error(429, 20429, "Too Many Requests", headers={"Retry-After": "7"})
    async with client(handler) as http:
        [result] = await provider().send(http, [SMS])
    assert (result.outcome, result.retry_after) == ("retry", 7.0)
    assert "20429" in result.reason


async def test_retry_after_may_be_an_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    handler = error(429, 20429, "Too Many Requests", headers={"Retry-After": when})
    async with client(handler) as http:
        [result] = await provider().send(http, [SMS])
    assert result.retry_after is not None and 100 < result.retry_after <= 120


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_retried(status: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text="<html>Service Unavailable</html>")

    async with client(handler) as http:
        [result] = await provider().send(http, [SMS])
    assert result.outcome == "retry"
    assert result.reason == f"twilio HTTP {status}: unreadable answer"
    assert result.retry_after is None


async def test_a_refused_connection_is_retried() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    async with client(handler) as http:
        [result] = await provider().send(http, [SMS])
    assert result.outcome == "retry"
    assert "not reached" in result.reason


@pytest.mark.parametrize(
    "exc", [httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError]
)
async def test_an_answer_lost_after_sending_is_unknown(exc: type[httpx.TransportError]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc("lost", request=request)

    async with client(handler) as http:
        [result] = await provider().send(http, [SMS])
    # Twilio has no idempotency key: a re-send could double the SMS.
    assert result.outcome == "unknown"
    assert "may have been sent" in result.reason


async def test_a_connect_timeout_never_reached_twilio() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    async with client(handler) as http:
        [result] = await provider().send(http, [SMS])
    assert result.outcome == "retry"


async def test_an_unreadable_201_is_still_submitted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            201, text='{"sid": "SM01', headers={"Content-Type": "application/json"}
        )

    async with client(handler) as http:
        [result] = await provider().send(http, [SMS])
    # Twilio created it: re-sending would double it; the callback still finds it by mid.
    assert (result.outcome, result.provider_ref) == ("submitted", "")
    assert "unreadable answer" in result.reason


async def test_an_unreadable_400_is_rejected_saying_so() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, text="not json")

    async with client(handler) as http:
        [result] = await provider().send(http, [SMS])
    assert (result.outcome, result.reason) == ("rejected", "twilio HTTP 400: unreadable answer")


async def test_other_client_errors_fail_the_message() -> None:
    async with client(error(413, 20413, "Payload too large")) as http:
        [result] = await provider().send(http, [SMS])
    assert (result.outcome, result.reason) == ("failed", "twilio 20413: Payload too large")


async def test_batches_hold_one_message_and_more_is_the_callers_mistake() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return created(request)

    other = OutgoingSms(43, "+33698765432", "x", "MAIRIE")
    async with client(handler) as http:
        assert provider().max_batch == 1
        with pytest.raises(ValueError, match=r"takes 1 message\(s\) per call, got 2"):
            await provider().send(http, [SMS, other])
        assert await provider().send(http, []) == []
    assert calls == []


def callback(status: str, **extra: str) -> HttpRequest:
    form = {
        "MessageSid": "SM0123",
        "MessageStatus": status,
        "AccountSid": SID,
        "From": "MAIRIE",
        "To": "+33612345678",
        "ApiVersion": "2010-04-01",
        **extra,
    }
    return HttpRequest("POST", "/reports/twilio", query={"mid": "42"}, form=form)


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("accepted", "submitted"),
        ("scheduled", "submitted"),
        ("queued", "submitted"),
        ("sending", "submitted"),
        ("sent", "submitted"),
        ("delivered", "delivered"),
        ("read", "delivered"),
        ("undelivered", "undelivered"),
        ("failed", "failed"),
        ("canceled", "failed"),
    ],
)
def test_every_status_callback_maps_to_the_ledger(status: str, state: str) -> None:
    [report] = provider().parse_report(callback(status))
    assert (report.message_id, report.provider_ref, report.state) == (42, "SM0123", state)
    assert report.provider_status == status


def test_a_failure_report_keeps_twilios_error_code() -> None:
    [report] = provider().parse_report(callback("undelivered", ErrorCode="30003"))
    assert report.provider_status == "undelivered 30003"


def test_a_report_without_our_id_still_names_twilios_sid() -> None:
    request = callback("delivered")
    [report] = provider().parse_report(HttpRequest("POST", request.path, form=request.form))
    assert (report.message_id, report.provider_ref) == (None, "SM0123")


def test_unknown_statuses_are_ignored_and_garbage_is_refused() -> None:
    assert provider().parse_report(callback("receiving")) == []
    with pytest.raises(ValueError):
        provider().parse_report(HttpRequest("POST", "/reports/twilio", form={"foo": "1"}))


def test_an_inbound_sms_is_read_from_twilios_form() -> None:
    request = HttpRequest(
        "POST",
        "/inbound/twilio",
        form={
            "MessageSid": "SM9",
            "SmsSid": "SM9",
            "AccountSid": SID,
            "From": "+33612345678",
            "To": "+33757000000",
            "Body": "STOP infos",
            "NumMedia": "0",
        },
    )
    sms = provider().parse_inbound(request)
    assert sms is not None
    assert (sms.sender, sms.recipient, sms.text, sms.provider_ref) == (
        "+33612345678",
        "+33757000000",
        "STOP infos",
        "SM9",
    )
    with pytest.raises(ValueError):
        provider().parse_inbound(HttpRequest("POST", "/inbound/twilio", form={"To": "x"}))


# Twilio's published example (docs on validating its requests, and the test vector of
# its own helper libraries).
DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
DOC_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def independent_signature(token: str, url: str, params: dict[str, str]) -> str:
    """The documented algorithm, written again here: HMAC-SHA1, base64."""
    data = url
    for key in sorted(params):
        data += key + params[key]
    mac = hmac.new(token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def test_the_signature_matches_twilios_published_example() -> None:
    assert independent_signature("12345", DOC_URL, DOC_PARAMS) == DOC_SIGNATURE
    assert signature("12345", DOC_URL, DOC_PARAMS) == DOC_SIGNATURE


def signed(
    url: str, form: dict[str, str], token: str = TOKEN, header: str = "X-Twilio-Signature"
) -> HttpRequest:
    parts = urlsplit(url)
    return HttpRequest(
        "POST",
        parts.path,
        query={k: v[0] for k, v in parse_qs(parts.query).items()},
        form=form,
        headers={header: independent_signature(token, url, form)},
        url=url,
    )


def test_a_validly_signed_callback_passes_and_a_tampered_one_fails() -> None:
    form = dict(callback("delivered").form)
    url = f"{CALLBACK}?mid=42"
    request = signed(url, form)
    assert provider().verify_signature(request)
    tampered = HttpRequest(
        request.method,
        request.path,
        query=request.query,
        form={**form, "MessageStatus": "failed"},
        headers=request.headers,
        url=url,
    )
    assert not provider().verify_signature(tampered)
    moved = HttpRequest(
        request.method,
        request.path,
        query={"mid": "43"},
        form=form,
        headers=request.headers,
        url=f"{CALLBACK}?mid=43",
    )
    assert not provider().verify_signature(moved)


def test_a_signature_with_another_token_or_none_fails() -> None:
    form = dict(callback("delivered").form)
    url = f"{CALLBACK}?mid=42"
    assert not provider().verify_signature(signed(url, form, token="not-ours"))
    assert not provider().verify_signature(
        HttpRequest("POST", "/reports/twilio", form=form, url=url)
    )


def test_header_names_are_case_insensitive() -> None:
    form = dict(callback("delivered").form)
    url = f"{CALLBACK}?mid=42"
    assert provider().verify_signature(signed(url, form, header="x-twilio-signature"))


def test_behind_a_reverse_proxy_the_public_url_is_checked() -> None:
    form = dict(callback("delivered").form)
    public = f"{CALLBACK}?mid=42"
    mac = independent_signature(TOKEN, public, form)
    # What the worker sees on 127.0.0.1 for what Twilio called on the public address.
    local = HttpRequest(
        "POST",
        "/reports/twilio",
        query={"mid": "42"},
        form=form,
        headers={"x-twilio-signature": mac},
        url="http://127.0.0.1:8765/reports/twilio?mid=42",
    )
    assert provider().verify_signature(local)


def test_behind_a_proxy_that_keeps_the_prefix_the_public_url_is_checked() -> None:
    form = dict(callback("delivered").form)
    mac = independent_signature(TOKEN, f"{CALLBACK}?mid=42", form)
    local = HttpRequest(
        "POST",
        "/tocsin/reports/twilio",
        query={"mid": "42"},
        form=form,
        headers={"x-twilio-signature": mac},
        url="http://127.0.0.1:8765/tocsin/reports/twilio?mid=42",
    )
    assert provider().verify_signature(local)


def test_a_default_port_added_on_the_way_still_verifies() -> None:
    form = {"MessageSid": "SM1", "MessageStatus": "sent"}
    mac = independent_signature(TOKEN, "https://mairie.example/tocsin/reports/twilio?mid=1", form)
    request = HttpRequest(
        "POST",
        "/tocsin/reports/twilio",
        form=form,
        headers={"X-Twilio-Signature": mac},
        url="https://mairie.example:443/tocsin/reports/twilio?mid=1",
    )
    assert provider().verify_signature(request)


def test_the_auth_token_never_shows_in_repr() -> None:
    assert TOKEN not in repr(provider())
