"""Octopush (API v1) against its documented request and answer shapes.

The answers below are the documented ones: the success body of the PHP client's
README, the error body quoted in octopush/Octopush-SMS-API-PHP#20 ({"code", "message"})
and the return-code table.
"""

from __future__ import annotations

import json

import httpx
import pytest

from console.config import OctopushConfig
from console.sending.providers.base import HttpRequest, ProviderAuthError
from console.sending.providers.http import split_requests
from console.sending.providers.octopush import OctopushProvider, request_id_for
from tests.provider_doubles import Handler, body_of, client, raising, sequence, sms

LOGIN = "mairie@example.fr"
KEY = "octopush-secret-key"
URL = "https://api.octopush.com/v1/public/sms-campaign/send"
TICKET = "sms_5fec89fe97109"


def provider() -> OctopushProvider:
    return OctopushProvider(OctopushConfig(api_login=LOGIN), KEY, repost_delay=0)


def accepted(request: httpx.Request) -> httpx.Response:
    count = len(body_of(request)["recipients"])
    return httpx.Response(
        201,
        json={
            "sms_ticket": TICKET,
            "number_of_contacts": count,
            "total_cost": 0.0333 * count,
            "number_of_sms_needed": count,
            "residual_credit": 99.5,
        },
    )


def answer(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers, json={"code": code, "message": message})

    return handler


async def test_a_batch_is_one_documented_request() -> None:
    handler, seen = sequence(accepted)
    batch = [sms(1), sms(2), sms(3)]
    async with client(handler) as http:
        results = await provider().send(http, batch)

    [request] = seen
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["api-login"] == LOGIN
    assert request.headers["api-key"] == KEY
    assert request.headers["Content-Type"] == "application/json"
    assert body_of(request) == {
        "recipients": [
            {"phone_number": "+33600000001"},
            {"phone_number": "+33600000002"},
            {"phone_number": "+33600000003"},
        ],
        "text": "Alerte crue : évacuez la rue basse",
        "type": "sms_premium",
        "purpose": "alert",
        "sender": "MAIRIE",
        "request_id": request_id_for([1, 2, 3]),
        "auto_optimize_text": False,
    }
    assert sorted((r.message_id, r.outcome, r.provider_ref) for r in results) == [
        (1, "submitted", f"{TICKET}:+33600000001"),
        (2, "submitted", f"{TICKET}:+33600000002"),
        (3, "submitted", f"{TICKET}:+33600000003"),
    ]


def test_the_request_id_depends_on_the_messages_only() -> None:
    assert request_id_for([3, 1, 2]) == request_id_for([1, 2, 3])
    assert request_id_for([1, 2]) != request_id_for([1, 2, 3])
    assert request_id_for([1]).startswith("tocsin-")
    assert len(request_id_for([1])) == 39


async def test_a_resent_batch_reuses_its_request_id_across_instances() -> None:
    ids: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        ids.append(body_of(request)["request_id"])
        return accepted(request)

    async with client(handler) as http:
        await provider().send(http, [sms(5), sms(4), sms(6)])
        await provider().send(http, [sms(6), sms(5), sms(4)])
    assert ids[0] == ids[1] == request_id_for([4, 5, 6])


async def test_different_texts_and_repeated_numbers_go_in_separate_requests() -> None:
    handler, seen = sequence(accepted, accepted, accepted)
    batch = [
        sms(1, "+33611111111"),
        sms(2, "+33611111111"),
        sms(3, "+33622222222", text="Fête du village samedi"),
        sms(4, "+33633333333"),
    ]
    async with client(handler) as http:
        results = await provider().send(http, batch)
    sent = [[r["phone_number"] for r in body_of(request)["recipients"]] for request in seen]
    assert sent == [["+33611111111", "+33633333333"], ["+33611111111"], ["+33622222222"]]
    assert sorted(r.message_id for r in results) == [1, 2, 3, 4]
    assert all(r.outcome == "submitted" for r in results)


def test_requests_never_exceed_the_batch_size() -> None:
    groups = split_requests([sms(i) for i in range(1, 12)], 5)
    assert [len(g) for g in groups] == [5, 5, 1]


async def test_a_batch_larger_than_500_is_the_callers_mistake() -> None:
    handler, seen = sequence()
    async with client(handler) as http:
        with pytest.raises(ValueError, match="500 message\\(s\\) per call"):
            await provider().send(http, [sms(i) for i in range(501)])
        assert await provider().send(http, []) == []
    assert seen == []


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (117, "Your recipient list contains no correct numbers."),
        (106, "You have entered the Sender incorrectly."),
        (121, "STOP mention ([STOP au 30101]) is missing from your text."),
    ],
)
async def test_refused_messages_are_rejected_with_octopushs_words(code: int, message: str) -> None:
    async with client(answer(400, code, message)) as http:
        results = await provider().send(http, [sms(1), sms(2)])
    assert {(r.outcome, r.reason) for r in results} == {("rejected", f"octopush {code}: {message}")}


async def test_a_malformed_request_fails() -> None:
    async with client(answer(400, 100, "POST request missing.")) as http:
        [result] = await provider().send(http, [sms(1)])
    assert (result.outcome, result.reason) == ("failed", "octopush 100: POST request missing.")


@pytest.mark.parametrize(("status", "code"), [(400, 101), (401, 101), (403, 113), (400, 104)])
async def test_refused_credentials_or_account_stop_the_campaign(status: int, code: int) -> None:
    async with client(answer(status, code, "Incorrect login details.")) as http:
        with pytest.raises(ProviderAuthError, match=f"octopush {code}"):
            await provider().send(http, [sms(1)])


async def test_a_refusal_after_an_accepted_request_keeps_the_accepted_answers() -> None:
    handler, _ = sequence(accepted, answer(401, 101, "Incorrect login details."))
    batch = [sms(1), sms(2, text="autre texte")]
    async with client(handler) as http:
        results = await provider().send(http, batch)
    by_id = {r.message_id: r for r in results}
    assert by_id[1].outcome == "submitted"
    assert (by_id[2].outcome, by_id[2].reason) == (
        "retry",
        "octopush 101: Incorrect login details.",
    )


async def test_120_means_our_earlier_attempt_was_accepted() -> None:
    message = "A SMS with the same request_id has already been sent."
    async with client(answer(400, 120, message)) as http:
        [result] = await provider().send(http, [sms(1)])
    assert (result.outcome, result.provider_ref) == ("submitted", "")
    assert request_id_for([1]) in result.reason


async def test_429_is_retried_after_the_delay_asked() -> None:
    handler = answer(429, 429, "Too many requests", headers={"Retry-After": "12"})
    async with client(handler) as http:
        [result] = await provider().send(http, [sms(1)])
    assert (result.outcome, result.retry_after) == ("retry", 12.0)


async def test_server_errors_are_retried() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="Service Unavailable", headers={"Retry-After": "30"})

    async with client(handler) as http:
        [result] = await provider().send(http, [sms(1)])
    assert (result.outcome, result.retry_after) == ("retry", 30.0)
    assert result.reason == "octopush HTTP 503: unreadable answer"


async def test_a_refused_connection_is_retried_without_a_repost() -> None:
    handler, seen = sequence(raising(httpx.ConnectError))
    async with client(handler) as http:
        [result] = await provider().send(http, [sms(1)])
    assert result.outcome == "retry"
    assert "not reached" in result.reason
    assert len(seen) == 1


async def test_a_lost_answer_is_reposted_under_the_same_request_id() -> None:
    handler, seen = sequence(raising(httpx.ReadTimeout), accepted)
    async with client(handler) as http:
        results = await provider().send(http, [sms(1), sms(2)])
    assert [r.outcome for r in results] == ["submitted", "submitted"]
    assert len(seen) == 2
    assert seen[0].content == seen[1].content


async def test_a_lost_answer_then_120_is_submitted() -> None:
    handler, _ = sequence(raising(httpx.RemoteProtocolError), answer(400, 120, "already sent"))
    async with client(handler) as http:
        [result] = await provider().send(http, [sms(1)])
    assert result.outcome == "submitted"


@pytest.mark.parametrize(
    "then",
    [
        raising(httpx.ReadTimeout),
        raising(httpx.ConnectError),
        answer(500, 0, "Internal error"),
        answer(429, 0, "slow down"),
    ],
)
async def test_a_lost_answer_without_octopushs_word_is_unknown(then: Handler) -> None:
    handler, seen = sequence(raising(httpx.ReadTimeout), then)
    async with client(handler) as http:
        [result] = await provider().send(http, [sms(1)])
    assert result.outcome == "unknown"
    assert "may have been sent" in result.reason
    assert len(seen) == 2


async def test_a_lost_answer_then_a_refusal_is_the_refusal() -> None:
    handler, _ = sequence(raising(httpx.WriteTimeout), answer(400, 117, "no correct numbers"))
    async with client(handler) as http:
        [result] = await provider().send(http, [sms(1)])
    assert result.outcome == "rejected"


async def test_an_unreadable_2xx_is_submitted_without_a_ticket() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="{'sms_ticket': ")

    async with client(handler) as http:
        [result] = await provider().send(http, [sms(1)])
    assert (result.outcome, result.provider_ref) == ("submitted", "")
    assert "unreadable answer" in result.reason


async def test_an_unreadable_400_fails_saying_so() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, text="<html>Bad Request</html>")

    async with client(handler) as http:
        [result] = await provider().send(http, [sms(1)])
    assert (result.outcome, result.reason) == ("failed", "octopush HTTP 400: unreadable answer")


def report(**fields: str) -> HttpRequest:
    payload = {
        "channel": "sms",
        "message_id": TICKET,
        "number": "+33600000001",
        "delivery_date": "2020-11-04 11:11:45",
        **fields,
    }
    return HttpRequest(
        "POST",
        "/reports/octopush",
        query={"token": "t"},
        body=json.dumps(payload).encode(),
        headers={"content-type": "application/json"},
    )


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("ACK", "submitted"),
        ("DELIVERED", "delivered"),
        ("NOT_DELIVERED", "undelivered"),
        ("NOT_ALLOWED", "rejected"),
        ("UNKNOWN_DELIVERY", "submitted"),
        ("BAD_DESTINATION", "rejected"),
        ("BLACKLISTED_NUMBER", "rejected"),
        ("UNDEFINED", "submitted"),
    ],
)
def test_every_report_status_maps_to_the_ledger(status: str, state: str) -> None:
    [found] = provider().parse_report(report(status=status))
    assert (found.message_id, found.provider_ref, found.state, found.provider_status) == (
        None,
        f"{TICKET}:+33600000001",
        state,
        status,
    )


def test_a_form_encoded_report_is_read_too() -> None:
    request = HttpRequest(
        "POST",
        "/reports/octopush",
        form={"message_id": TICKET, "number": "+33600000001", "status": "DELIVERED"},
    )
    [found] = provider().parse_report(request)
    assert found.state == "delivered"


def test_other_channels_and_new_statuses_are_ignored_garbage_refused() -> None:
    assert provider().parse_report(report(channel="email", status="OPENED")) == []
    assert provider().parse_report(report(status="SOMETHING_NEW")) == []
    with pytest.raises(ValueError):
        provider().parse_report(HttpRequest("POST", "/reports/octopush", body=b"[1, 2]"))


def test_an_inbound_reply_is_read() -> None:
    payload = {
        "message_id": TICKET,
        "number": "+33600000001",
        "text": "Stop infos",
        "sim_card_number": "36180",
        "reception_date": "2020-11-04 11:11:45",
    }
    found = provider().parse_inbound(
        HttpRequest("POST", "/inbound/octopush", body=json.dumps(payload).encode())
    )
    assert found is not None
    assert (found.sender, found.recipient, found.text) == ("+33600000001", "36180", "Stop infos")
    assert found.provider_ref == f"{TICKET}:+33600000001:2020-11-04 11:11:45"


@pytest.mark.parametrize(
    ("text", "read_as"),
    [
        ("stop", "stop"),
        ("STOP travaux", "STOP travaux"),
        ("arrêtez", "STOP"),
        ("", "STOP"),
    ],
)
def test_an_opt_out_callback_always_reads_as_a_stop(text: str, read_as: str) -> None:
    payload = {
        "message_id": TICKET,
        "number": "+33600000001",
        "text": text,
        "stop_date": "2020-11-04 11:11:45",
    }
    found = provider().parse_inbound(
        HttpRequest("POST", "/inbound/octopush", body=json.dumps(payload).encode())
    )
    assert found is not None and found.text == read_as


def test_an_unreadable_inbound_is_refused() -> None:
    with pytest.raises(ValueError):
        provider().parse_inbound(HttpRequest("POST", "/inbound/octopush", body=b"{}"))


def test_the_api_key_never_shows_in_repr() -> None:
    assert KEY not in repr(provider())
