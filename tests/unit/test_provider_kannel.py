"""The Kannel provider against httpx.MockTransport: the exact sendsms query, the mapping
of each answer, delivery reports and inbound SMS; and GSM-7 detection."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable

import httpx
import pytest

from console.composing.gsm import needs_ucs2, segment_count, ucs2_characters
from console.config import KannelConfig
from console.sending.providers.base import (
    HttpRequest,
    OutgoingSms,
    Provider,
    ProviderAuthError,
    SendResult,
)
from console.sending.providers.kannel import (
    TIMEOUT_REASON,
    KannelProvider,
    report_url,
    sms_service_get_url,
)

URL = "http://127.0.0.1:13013/cgi-bin/sendsms"
DLR_BASE = "http://127.0.0.1:8765/kannel/dlr?token=s3cr3t-Tok_en"


def provider(**kwargs: int) -> KannelProvider:
    return KannelProvider(
        KannelConfig(url=URL, username="tocsin"), "pa ss+wörd", DLR_BASE, **kwargs
    )


def sms(
    text: str = "Crue de la Moselle : évacuez les quais",
    to: str = "+33612345678",
    message_id: int = 42,
) -> OutgoingSms:
    return OutgoingSms(message_id=message_id, to=to, text=text, sender_id="MAIRIE")


Handler = Callable[[httpx.Request], httpx.Response]


async def send(
    handler: Handler, *messages: OutgoingSms, kannel: KannelProvider | None = None
) -> list[SendResult]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        return list(await (kannel or provider()).send(client, list(messages)))


def recorder(
    status: int = 202,
    body: str = "0: Accepted for delivery",
    seen: list[httpx.Request] | None = None,
) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status, text=body)

    return handle


def query_of(request: httpx.Request) -> list[tuple[str, str]]:
    return urllib.parse.parse_qsl(
        request.url.query.decode("ascii"), keep_blank_values=True, strict_parsing=True
    )


def test_it_is_a_provider() -> None:
    kannel: Provider = provider()
    assert kannel.name == "kannel" and kannel.max_batch == 1


# ---- GSM-7 or UCS-2 -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ucs2"),
    [
        ("Crue de la Moselle : évacuez les quais avant 18h", False),  # é is GSM-7
        ("Travaux rue de la Gare : circulation alternée, déviation par l'école", False),
        ("Ça commence à 20h à la salle des fêtes", True),  # Ç and à are, ê is not
        ("Ça commence à 20h, salle Émile-Zola", False),
        ("Prix : 5 € [gratuit pour les moins de 12 ans] ~ {inscription}", False),
        ("Fête de la musique ce soir place de l'Église", True),  # ê
        ("Réunion publique au château", True),  # â
        ("Leçon de français à la médiathèque", True),  # lower-case ç
        ("Île de loisirs fermée", True),  # Î
        ("Cœur du village : marché de Noël", True),  # œ and ë
        ("Élections : bureau de vote n°3", True),  # °
        ("L’accueil de la mairie est fermé", True),  # curly apostrophe
        ("Rendez-vous à 10\u00a0h", True),  # no-break space
        ("Coupure d'eau jeudi de 9h à 12h", False),
    ],
)
def test_needs_ucs2_on_french_texts(text: str, ucs2: bool) -> None:
    assert needs_ucs2(text) is ucs2


def test_ucs2_characters_named_in_order() -> None:
    assert ucs2_characters("Fête à l’île, çà et là ê") == ["ê", "’", "î", "ç"]


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),
        ("€" * 81, 2),
        ("ê" * 70, 1),
        ("ê" * 71, 2),
        ("ê" * 134, 2),
        ("ê" * 135, 3),
        ("", 1),
    ],
)
def test_segment_count(text: str, parts: int) -> None:
    assert segment_count(text) == parts


# ---- the sendsms request --------------------------------------------------------


async def test_gsm7_text_is_sent_utf8_without_coding() -> None:
    seen: list[httpx.Request] = []
    results = await send(recorder(seen=seen), sms("Crue de la Moselle : évacuez les quais"))
    (request,) = seen
    assert request.method == "GET"
    assert str(request.url).startswith(URL + "?")
    assert query_of(request) == [
        ("username", "tocsin"),
        ("password", "pa ss+wörd"),
        ("from", "MAIRIE"),
        ("to", "+33612345678"),
        ("text", "Crue de la Moselle : évacuez les quais"),
        ("charset", "UTF-8"),
        ("dlr-mask", "31"),
        ("dlr-url", DLR_BASE + "&mid=42&type=%d&smsc_reply=%A&ref=%F"),
    ]
    # '+' must reach Kannel as %2B (a bare '+' is a space), '%' in the dlr-url as %25.
    raw = request.url.query.decode("ascii")
    assert "to=%2B33612345678" in raw
    assert "type%3D%25d" in raw
    assert [r.outcome for r in results] == ["submitted"]


async def test_ucs2_text_adds_coding_2() -> None:
    seen: list[httpx.Request] = []
    text = "Fête de la musique : la rue du Château sera fermée"
    await send(recorder(seen=seen), sms(text))
    query = dict(query_of(seen[0]))
    assert query["text"] == text
    assert query["charset"] == "UTF-8"
    assert query["coding"] == "2"


async def test_one_request_per_message_each_with_its_own_id() -> None:
    seen: list[httpx.Request] = []
    results = await send(recorder(seen=seen), sms(message_id=1), sms(message_id=2))
    assert [dict(query_of(r))["dlr-url"].split("&mid=")[1][:2] for r in seen] == ["1&", "2&"]
    assert [r.message_id for r in results] == [1, 2]


def test_callback_urls_keep_the_token_and_add_kannel_escapes() -> None:
    assert report_url("http://h/dlr", 7) == "http://h/dlr?mid=7&type=%d&smsc_reply=%A&ref=%F"
    assert report_url("http://h/dlr?token=t", 7).startswith("http://h/dlr?token=t&mid=7&")
    assert sms_service_get_url("http://h/mo?token=t") == (
        "http://h/mo?token=t&from=%p&to=%P&text=%b&coding=%c&charset=%C&id=%I"
    )
    assert sms_service_get_url("http://h/mo").startswith("http://h/mo?from=%p&")


# ---- answers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "outcome", "reason"),
    [
        (202, "0: Accepted for delivery", "submitted", ""),
        (202, "Sent.", "submitted", ""),  # immediate-sendsms-reply = true
        (202, "Sent. Message splits: 3", "submitted", ""),
        (
            202,
            "3: Queued for later delivery",
            "submitted",
            "kannel: 3: Queued for later delivery (the SMSC is off line: bearerbox holds it)",
        ),
        (
            400,
            "Number(s) has/have been denied by white- and/or black-lists.",
            "rejected",
            "kannel: Number(s) has/have been denied by white- and/or black-lists.",
        ),
        (
            400,
            "Sender missing and no global set, rejected",
            "rejected",
            "kannel: Sender missing and no global set, rejected",
        ),
        (
            503,
            "Temporal failure, try again later.",
            "retry",
            "kannel: HTTP 503: Temporal failure, try again later.",
        ),
        (500, "", "retry", "kannel: HTTP 500"),
        (502, "Bad gateway", "retry", "kannel: HTTP 502: Bad gateway"),
    ],
)
async def test_answers_map_to_outcomes(status: int, body: str, outcome: str, reason: str) -> None:
    (result,) = await send(recorder(status, body), sms())
    assert result.outcome == outcome
    assert result.reason == reason
    assert result.provider_ref == ""


async def test_retry_after_is_honoured_on_503() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="busy", headers={"Retry-After": "7"})

    (result,) = await send(handle, sms())
    assert (result.outcome, result.retry_after) == ("retry", 7.0)


async def test_403_stops_with_provider_auth_error() -> None:
    seen: list[httpx.Request] = []
    with pytest.raises(ProviderAuthError) as raised:
        await send(recorder(403, "Authorization failed for sendsms", seen), sms(), sms())
    assert str(raised.value) == "kannel: Authorization failed for sendsms"
    assert len(seen) == 1  # the second message is not tried


async def test_refused_connection_is_retried() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    (result,) = await send(handle, sms())
    assert result.outcome == "retry"
    assert result.reason.startswith("kannel unreachable")


async def test_connect_timeout_is_retried() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    (result,) = await send(handle, sms())
    assert result.outcome == "retry"


@pytest.mark.parametrize(
    "error", [httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError]
)
async def test_timeout_after_sending_may_have_been_sent(error: type[httpx.HTTPError]) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise error("boom", request=request)  # type: ignore[call-arg]

    (result,) = await send(handle, sms())
    assert result.outcome == "unknown"
    assert result.reason.startswith(TIMEOUT_REASON)


@pytest.mark.parametrize(
    "to", ["+33 6 12 34 56 78", "0612345678", "+33612345678 +33698", "", "+33-6-12"]
)
async def test_numbers_kannel_would_split_or_misroute_are_rejected_unsent(to: str) -> None:
    seen: list[httpx.Request] = []
    (result,) = await send(recorder(seen=seen), sms(to=to))
    assert result.outcome == "rejected"
    assert "E.164" in result.reason
    assert seen == []


async def test_text_longer_than_smsbox_max_messages_is_rejected_not_truncated() -> None:
    seen: list[httpx.Request] = []
    kannel = provider(max_parts=3)
    ok, too_long = await send(
        recorder(seen=seen),
        sms("x" * 459, message_id=1),
        sms("x" * 460, message_id=2),
        kannel=kannel,
    )
    assert ok.outcome == "submitted"
    assert too_long.outcome == "rejected"
    assert "needs 4 SMS" in too_long.reason
    assert len(seen) == 1


# ---- delivery reports -----------------------------------------------------------


def dlr(**query: str) -> HttpRequest:
    return HttpRequest(method="GET", path="/kannel/dlr", query={"token": "t", **query})


@pytest.mark.parametrize(
    ("kind", "state"),
    [
        ("1", "delivered"),
        ("2", "undelivered"),
        ("4", "submitted"),
        ("8", "submitted"),
        ("16", "rejected"),
    ],
)
def test_report_types(kind: str, state: str) -> None:
    (report,) = provider().parse_report(dlr(mid="42", type=kind, smsc_reply="ACK/", ref="ab-1"))
    assert report.message_id == 42
    assert report.state == state
    assert report.provider_ref == "ab-1"
    assert report.provider_status == f"type {kind}: ACK/"


def test_report_without_reply_text() -> None:
    (report,) = provider().parse_report(dlr(mid="7", type="1", smsc_reply="", ref=""))
    assert (report.state, report.provider_status, report.provider_ref) == (
        "delivered",
        "type 1",
        "",
    )


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"mid": "42"},
        {"type": "1"},
        {"mid": "x", "type": "1"},
        {"mid": "42", "type": "%d"},
        {"mid": "42", "type": "3"},
        {"mid": "42", "type": "32"},
    ],
)
def test_not_a_report(query: dict[str, str]) -> None:
    assert provider().parse_report(dlr(**query)) == []


# ---- inbound SMS ----------------------------------------------------------------


def mo(**query: str) -> HttpRequest:
    return HttpRequest(method="GET", path="/kannel/mo", query={"token": "t", **query})


def test_inbound_stop() -> None:
    inbound = provider().parse_inbound(
        mo(
            **{
                "from": "+33698765432",
                "to": "38100",
                "text": "STOP",
                "coding": "0",
                "charset": "UTF-8",
                "id": "5543-uuid",
            }
        )
    )
    assert inbound is not None
    assert (inbound.sender, inbound.recipient, inbound.text, inbound.provider_ref) == (
        "+33698765432",
        "38100",
        "STOP",
        "5543-uuid",
    )


def test_inbound_keeps_the_exact_body() -> None:
    inbound = provider().parse_inbound(
        mo(
            **{
                "from": "+33698765432",
                "to": "38100",
                "text": "Stop  événements ça",
                "coding": "0",
                "charset": "UTF-8",
            }
        )
    )
    assert inbound is not None and inbound.text == "Stop  événements ça"


def test_inbound_ucs2_without_mo_recode_is_decoded_from_the_raw_url() -> None:
    # A smsbox without mo-recode sends UCS-2 bodies as UTF-16BE bytes.
    raw = urllib.parse.quote_from_bytes("Stop infos ê".encode("utf-16-be"))
    url = (
        f"http://127.0.0.1:8765/kannel/mo?token=t&from=%2B33698765432&to=38100&text={raw}"
        "&coding=2&charset=UTF-16BE&id=u"
    )
    garbled = urllib.parse.unquote(raw, errors="replace")
    inbound = provider().parse_inbound(
        HttpRequest(
            method="GET",
            path="/kannel/mo",
            url=url,
            query={
                "from": "+33698765432",
                "to": "38100",
                "text": garbled,
                "coding": "2",
                "charset": "UTF-16BE",
                "id": "u",
            },
        )
    )
    assert inbound is not None and inbound.text == "Stop infos ê"


@pytest.mark.parametrize(
    "query", [{}, {"from": "+33698765432"}, {"text": "STOP"}, {"from": "", "text": "STOP"}]
)
def test_not_an_inbound(query: dict[str, str]) -> None:
    assert provider().parse_inbound(mo(**query)) is None
