"""SMSFactor against its documented request and answer shapes.

Answers: the result format of dev.smsfactor.com's send pages; error statuses as the
official PHP SDK reads them (-1 auth, -3 credits, -7 data, -8 moderation, -99 unknown).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from console.config import SmsFactorConfig
from console.sending.providers.base import HttpRequest, OutgoingSms, ProviderAuthError
from console.sending.providers.smsfactor import SmsFactorProvider
from tests import provider_doubles as doubles
from tests.provider_doubles import Handler, body_of, client, raising, sequence

TOKEN = "smsfactor-secret-token"


def provider() -> SmsFactorProvider:
    return SmsFactorProvider(SmsFactorConfig(), TOKEN)


def sms(
    message_id: int, to: str = "", text: str = "Travaux rue Haute lundi 8h", sender: str = "MAIRIE"
) -> OutgoingSms:
    return doubles.sms(message_id, to, text, sender)


def result_format(count: int, **overrides: int) -> dict[str, Any]:
    counts = {
        "blacklisted": 0,
        "duplicated": 0,
        "invalid": 0,
        "npai": 0,
        "not_allowed": 0,
        "flood": 0,
        "country_limit": 0,
        **overrides,
    }
    filtered = sum(counts.values())
    return {
        "status": 1,
        "message": "OK",
        "ticket": "14672468",
        "cost": count - filtered,
        "credits": 642,
        "total": count,
        "sent": count - filtered,
        **counts,
    }


def accepted(request: httpx.Request) -> httpx.Response:
    count = len(body_of(request)["sms"]["recipients"]["gsm"])
    return httpx.Response(200, json=result_format(count))


def answer(
    payload: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=payload, headers=headers)

    return handler


async def test_a_batch_is_one_documented_request() -> None:
    handler, seen = sequence(accepted)
    async with client(handler) as http:
        results = await provider().send(http, [sms(2), sms(1)])
    [request] = seen
    assert request.method == "POST"
    assert str(request.url) == "https://api.smsfactor.com/send"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Content-Type"] == "application/json"
    assert body_of(request) == {
        "sms": {
            "message": {
                "text": "Travaux rue Haute lundi 8h",
                "pushtype": "alert",
                "sender": "MAIRIE",
                "unicode": 0,
            },
            "recipients": {
                "gsm": [
                    {"gsmsmsid": "1", "value": "33600000001"},
                    {"gsmsmsid": "2", "value": "33600000002"},
                ]
            },
        }
    }
    assert sorted((r.message_id, r.outcome, r.provider_ref, r.reason) for r in results) == [
        (1, "submitted", "14672468:1", ""),
        (2, "submitted", "14672468:2", ""),
    ]


async def test_a_text_outside_gsm7_asks_for_unicode() -> None:
    handler, seen = sequence(accepted)
    async with client(handler) as http:
        await provider().send(http, [sms(1, text="Fête à l’école")])
    assert body_of(seen[0])["sms"]["message"]["unicode"] == 1


async def test_different_texts_and_repeated_numbers_go_in_separate_requests() -> None:
    handler, seen = sequence(accepted, accepted, accepted)
    batch = [sms(1, "+33611111111"), sms(2, "+33611111111"), sms(3, text="Autre message"), sms(4)]
    async with client(handler) as http:
        results = await provider().send(http, batch)
    ids = [[g["gsmsmsid"] for g in body_of(r)["sms"]["recipients"]["gsm"]] for r in seen]
    assert ids == [["1", "4"], ["2"], ["3"]]
    assert len(results) == 4


async def test_a_batch_larger_than_the_cap_is_the_callers_mistake() -> None:
    handler, seen = sequence()
    async with client(handler) as http:
        with pytest.raises(ValueError, match="500 message\\(s\\) per call"):
            await provider().send(http, [sms(i) for i in range(501)])
        assert await provider().send(http, []) == []
    assert seen == []


async def test_filtered_numbers_are_counted_in_every_reason() -> None:
    async with client(answer(result_format(3, invalid=1, blacklisted=1))) as http:
        results = await provider().send(http, [sms(1), sms(2), sms(3)])
    assert {r.outcome for r in results} == {"submitted"}
    assert {r.reason for r in results} == {
        "smsfactor: 2 of 3 filtered at submission (invalid 1, blacklisted 1); reports tell which"
    }


async def test_a_filtered_single_message_is_rejected() -> None:
    async with client(answer(result_format(1, blacklisted=1))) as http:
        [result] = await provider().send(http, [sms(1)])
    assert (result.outcome, result.reason) == (
        "rejected",
        "smsfactor: filtered at submission (blacklisted 1)",
    )


async def test_a_data_error_rejects_the_messages_with_smsfactors_words() -> None:
    payload = {"status": -7, "message": "Error", "details": "Invalid sender"}
    async with client(answer(payload, status=400)) as http:
        results = await provider().send(http, [sms(1), sms(2)])
    assert {(r.outcome, r.reason) for r in results} == {
        ("rejected", "smsfactor -7: Invalid sender")
    }


@pytest.mark.parametrize("status", [-2, -6])
async def test_a_malformed_request_fails(status: int) -> None:
    async with client(answer({"status": status, "message": "JSON error"})) as http:
        [result] = await provider().send(http, [sms(1)])
    assert (result.outcome, result.reason) == ("failed", f"smsfactor {status}: JSON error")


@pytest.mark.parametrize(
    ("payload", "http_status"),
    [
        ({"status": -1, "message": "Authentication error", "details": "Bad token"}, 200),
        ({"status": -1, "message": "Authentication error"}, 401),
        ({"message": "Unauthenticated."}, 401),
        ({"status": -3, "message": "Insufficient credits"}, 200),
    ],
)
async def test_refused_credentials_or_credit_stop_the_campaign(
    payload: dict[str, Any], http_status: int
) -> None:
    async with client(answer(payload, status=http_status)) as http:
        with pytest.raises(ProviderAuthError, match="smsfactor"):
            await provider().send(http, [sms(1)])


async def test_a_campaign_held_for_moderation_is_submitted() -> None:
    payload = {"status": -8, "message": "Moderation", "ticket": "777"}
    async with client(answer(payload)) as http:
        [result] = await provider().send(http, [sms(1)])
    assert (result.outcome, result.provider_ref) == ("submitted", "777:1")
    assert "moderation" in result.reason


async def test_an_unknown_error_is_retried() -> None:
    async with client(answer({"status": -99, "message": "Unknown error"})) as http:
        [result] = await provider().send(http, [sms(1)])
    assert (result.outcome, result.reason) == ("retry", "smsfactor -99: Unknown error")


async def test_429_is_retried_after_the_delay_asked() -> None:
    handler = answer({"error": "Too Many Attempts."}, status=429, headers={"Retry-After": "3"})
    async with client(handler) as http:
        [result] = await provider().send(http, [sms(1)])
    assert (result.outcome, result.retry_after, result.reason) == (
        "retry",
        3.0,
        "smsfactor HTTP 429: Too Many Attempts.",
    )


async def test_server_errors_are_retried() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text="<html>oops</html>")

    async with client(handler) as http:
        [result] = await provider().send(http, [sms(1)])
    assert (result.outcome, result.reason) == ("retry", "smsfactor HTTP 500: unreadable answer")


async def test_a_refused_connection_is_retried() -> None:
    async with client(raising(httpx.ConnectError)) as http:
        [result] = await provider().send(http, [sms(1)])
    assert result.outcome == "retry"


@pytest.mark.parametrize("exc", [httpx.ReadTimeout, httpx.RemoteProtocolError])
async def test_an_answer_lost_after_sending_is_unknown(exc: type[httpx.RequestError]) -> None:
    handler, seen = sequence(raising(exc))
    async with client(handler) as http:
        [result] = await provider().send(http, [sms(1)])
    # No dedupe key: never re-posted behind the ledger's back.
    assert result.outcome == "unknown"
    assert "may have been sent" in result.reason
    assert len(seen) == 1


async def test_an_unreadable_200_is_unknown() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text='{"status": 1, "ticket"')

    async with client(handler) as http:
        [result] = await provider().send(http, [sms(1)])
    # SMSFactor reports errors inside 200 answers too: a 200 alone proves nothing.
    assert result.outcome == "unknown"
    assert "unreadable answer" in result.reason


async def test_an_unreadable_400_fails() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, text="nope")

    async with client(handler) as http:
        [result] = await provider().send(http, [sms(1)])
    assert (result.outcome, result.reason) == ("failed", "smsfactor HTTP 400: unreadable answer")


def dlr(status: int | str, message_id: str = "42") -> HttpRequest:
    payload = {
        "date": "2024-07-25T06:23:06+02:00",
        "status": status,
        "destination": "33612345678",
        "message_id": message_id,
        "campaign_id": "15948909",
        "country_code": "FR",
    }
    return HttpRequest(
        "POST", "/reports/smsfactor", query={"token": "t"}, body=json.dumps(payload).encode()
    )


@pytest.mark.parametrize(
    ("status", "state", "name"),
    [
        (0, "submitted", "NOT_SENT"),
        (1, "submitted", "SENT"),
        (2, "undelivered", "NOT_DELIVERED"),
        (3, "delivered", "DELIVERED"),
        (4, "rejected", "NOT_ALLOWED"),
        (5, "rejected", "INVALID_DESTINATION"),
        (6, "rejected", "INVALID_SENDER"),
        (7, "undelivered", "ROUTE_NOT_AVAILABLE"),
        (9, "rejected", "REJECTED"),
        (11, "undelivered", "NETWORK_ERROR"),
        (12, "expired", "EXPIRED"),
    ],
)
def test_every_report_status_maps_to_the_ledger(status: int, state: str, name: str) -> None:
    [found] = provider().parse_report(dlr(status))
    assert (found.message_id, found.provider_ref, found.state, found.provider_status) == (
        42,
        "15948909:42",
        state,
        f"{status} {name}",
    )


def test_a_status_sent_as_text_and_unknown_statuses() -> None:
    [found] = provider().parse_report(dlr("3"))
    assert found.state == "delivered"
    assert provider().parse_report(dlr(8)) == []
    with pytest.raises(ValueError):
        provider().parse_report(HttpRequest("POST", "/reports/smsfactor", body=b"not json"))


def test_a_reply_is_read_with_its_plus_put_back() -> None:
    payload = {
        "date": "2017-08-07T13:01:29+02:00",
        "message": "Stop infos",
        "from": "33612345678",
        "account_id": "1234",
        "last_message_id": "42",
    }
    found = provider().parse_inbound(
        HttpRequest("POST", "/inbound/smsfactor", body=json.dumps(payload).encode())
    )
    assert found is not None
    assert (found.sender, found.text) == ("+33612345678", "Stop infos")
    assert found.provider_ref == "33612345678:2017-08-07T13:01:29+02:00"


@pytest.mark.parametrize(("text", "read_as"), [("Stop SMS", "Stop SMS"), ("Arrêt", "STOP")])
def test_the_stop_webhook_always_reads_as_a_stop(text: str, read_as: str) -> None:
    payload = {
        "date": "2017-08-07T13:01:29+02:00",
        "message": text,
        "from": "33612345678",
        "account_id": "1234",
        "last_message_id": "42",
    }
    request = HttpRequest(
        "POST",
        "/inbound/smsfactor",
        query={"token": "t", "kind": "stop"},
        body=json.dumps(payload).encode(),
    )
    found = provider().parse_inbound(request)
    assert found is not None and found.text == read_as


def test_an_unreadable_inbound_is_refused() -> None:
    with pytest.raises(ValueError):
        provider().parse_inbound(HttpRequest("POST", "/inbound/smsfactor", body=b'{"a": 1}'))


def test_the_token_never_shows_in_repr() -> None:
    assert TOKEN not in repr(provider())
