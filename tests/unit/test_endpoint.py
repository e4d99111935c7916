"""The worker's endpoint, served by a real uvicorn on loopback and called with httpx."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
import uvicorn
from sqlmodel import Session, select

from console.contacts.service import ContactInput, add_contact, is_suppressed
from console.context import Context
from console.sending.campaigns import Audience, CampaignRequest, create_campaign
from console.sending.endpoint import build_app
from console.sending.providers.base import (
    DeliveryReport,
    HttpRequest,
    InboundSms,
    OutgoingSms,
    SendResult,
)
from console.sending.queue import claim_batch, record_results
from storage.models import Message

TOKEN = "s3cret-token"


class QueryProvider:
    """Reads reports and inbound SMS from the query string, like Kannel does."""

    name = "kannel"
    max_batch = 1

    async def send(
        self, client: httpx.AsyncClient, batch: Sequence[OutgoingSms]
    ) -> list[SendResult]:
        return []

    def parse_report(self, request: HttpRequest) -> list[DeliveryReport]:
        states = {"1": "delivered", "2": "undelivered", "8": "submitted"}
        return [
            DeliveryReport(
                int(request.query["mid"]),
                "",
                states[request.query["type"]],  # type: ignore[arg-type]
                request.query.get("reply", ""),
            )
        ]

    def parse_inbound(self, request: HttpRequest) -> InboundSms | None:
        return InboundSms(request.query["from"], request.query.get("to", ""), request.query["text"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def served(ctx: Context) -> AsyncIterator[str]:
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            build_app(ctx, QueryProvider(), TOKEN), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def test_reports_move_messages_forward_only(ctx: Context, served: str) -> None:
    add_contact(ctx, ContactInput(number="06 50 00 00 01"))
    create_campaign(
        ctx,
        CampaignRequest(
            topic="alertes", text="x", sender_id="MAIRIE", audience=Audience(everyone=True)
        ),
    )
    claimed = claim_batch(ctx.engine, "w", ctx.clock.now(), 60, 1)
    mid = claimed[0].message_id
    record_results(ctx.engine, "w", claimed, [SendResult(mid, "submitted")], ctx.clock.now(), 5)
    async with httpx.AsyncClient(base_url=served) as client:
        for kind in ("1", "8", "1"):  # delivered, then a late SMSC ack, then again
            answer = await client.get(
                "/reports/kannel", params={"mid": mid, "type": kind, "token": TOKEN}
            )
            assert answer.status_code == 200
    with Session(ctx.engine) as session:
        assert session.exec(select(Message.state)).one() == "delivered"


async def test_stop_through_the_endpoint(ctx: Context, served: str) -> None:
    async with httpx.AsyncClient(base_url=served) as client:
        answer = await client.get(
            "/inbound/kannel", params={"from": "+33650000002", "text": "Stop", "token": TOKEN}
        )
    assert answer.status_code == 200
    with Session(ctx.engine) as session:
        assert is_suppressed(session, ctx, "+33650000002")


@pytest.mark.parametrize("params", [{}, {"token": "wrong"}, {"token": ""}])
async def test_anything_without_the_token_is_forbidden(
    ctx: Context, served: str, params: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=served) as client:
        answer = await client.get(
            "/inbound/kannel", params={"from": "+33650000003", "text": "STOP", **params}
        )
    assert answer.status_code == 403
    with Session(ctx.engine) as session:
        assert not is_suppressed(session, ctx, "+33650000003")


async def test_wrong_provider_and_health(served: str) -> None:
    async with httpx.AsyncClient(base_url=served) as client:
        assert (await client.get("/reports/twilio", params={"token": TOKEN})).status_code == 404
        assert (await client.get("/health")).text == "ok"


async def test_form_encoded_callbacks_are_read(ctx: Context) -> None:
    from starlette.requests import Request

    from console.sending.endpoint import to_http_request

    body = b"MessageSid=SM1&MessageStatus=delivered&Body=Caf%C3%A9+STOP"

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    request = Request(
        {
            "type": "http",
            "method": "POST",
            "path": "/reports/twilio",
            "query_string": b"",
            "headers": [(b"content-type", b"application/x-www-form-urlencoded")],
            "server": ("127.0.0.1", 8765),
            "scheme": "http",
        },
        receive,
    )
    http = to_http_request(request, await request.body())
    assert http.form == {"MessageSid": "SM1", "MessageStatus": "delivered", "Body": "Café STOP"}


async def test_keyword_opt_in_through_the_endpoint(ctx: Context, served: str) -> None:
    from console.consent.journal import JournalFilter, journal

    contact = add_contact(ctx, ContactInput(number="06 50 00 00 09"))
    async with httpx.AsyncClient(base_url=served) as client:
        answer = await client.get(
            "/inbound/kannel",
            params={"from": "+33650000009", "text": "oui  Travaux !", "token": TOKEN},
        )
    assert answer.status_code == 200
    (line,) = journal(ctx, JournalFilter(contact_id=contact.id))
    assert (line.topic, line.action, line.source) == ("travaux", "grant", "sms_keyword")
    assert line.proof_ref.startswith("inbound:") and line.operator == "sms:kannel"
