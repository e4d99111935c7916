"""Provider faults through the real worker loop and a real HTTP server on loopback:
every message ends where it should, with the provider's reason, nothing stuck."""

from __future__ import annotations

import asyncio
import json
import socket
from collections import Counter
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, parse_qsl, urlparse

import pytest
import uvicorn
from sqlalchemy import Engine
from sqlmodel import Session, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from console.clock import SystemClock
from console.config import Config, ProviderConfig, TwilioConfig, WorkerConfig
from console.contacts.service import ContactInput, add_contact
from console.sending.campaigns import Audience, CampaignRequest, create_campaign
from console.sending.providers.twilio import TwilioProvider
from console.sending.worker_main import serve
from storage.models import Campaign, Message
from tests.conftest import make_context

pytestmark = pytest.mark.e2e
TIMEOUT_S = 1.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FaultyTwilio:
    """Answers by message id: a different fault for each id modulo 6."""

    def __init__(self, auth_ok: bool = True) -> None:
        self.auth_ok = auth_ok
        self.calls: Counter[int] = Counter()

    async def create(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        mid = int(parse_qs(urlparse(form["StatusCallback"]).query)["mid"][0])
        self.calls[mid] += 1
        first = self.calls[mid] == 1
        if not self.auth_ok:
            return JSONResponse({"code": 20003, "message": "Authenticate"}, status_code=401)
        fault = mid % 6
        if fault == 1 and first:
            return JSONResponse({"code": 20500, "message": "Internal error"}, status_code=500)
        if fault == 2 and first:
            return JSONResponse(
                {"code": 20429, "message": "Too Many Requests"},
                status_code=429,
                headers={"Retry-After": "1"},
            )
        if fault == 3:
            return JSONResponse(
                {"code": 21211, "message": "Invalid 'To' Phone Number"}, status_code=400
            )
        if fault == 4:
            return Response(b'{"sid": "SM-broken', status_code=201, media_type="application/json")
        if fault == 5:
            await asyncio.sleep(TIMEOUT_S * 3)
        return Response(
            json.dumps({"sid": f"SM{mid}", "status": "queued"}),
            status_code=201,
            media_type="application/json",
        )


@pytest.fixture
async def server() -> AsyncIterator[tuple[FaultyTwilio, int]]:
    fake = FaultyTwilio()
    port = _free_port()
    app = Starlette(
        routes=[Route("/2010-04-01/Accounts/{sid}/Messages.json", fake.create, methods=["POST"])]
    )
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    task = asyncio.create_task(uv.serve())
    while not uv.started:
        await asyncio.sleep(0.01)
    yield fake, port
    uv.should_exit = True
    await task


def _config(api_port: int) -> Config:
    return Config(
        provider=ProviderConfig(
            name="twilio",
            rate=200.0,
            twilio=TwilioConfig(account_sid="AC0123456789", api_url=f"http://127.0.0.1:{api_port}"),
        ),
        worker=WorkerConfig(provider_timeout_seconds=TIMEOUT_S, max_attempts=3, lease_seconds=30),
    )


async def _run(engine: Engine, config: Config, count: int, until_settled: float) -> int:
    ctx = make_context(engine, config, SystemClock())  # type: ignore[arg-type]
    for i in range(count):
        add_contact(ctx, ContactInput(number=f"06 90 00 00 {i:02d}"))
    campaign_id = create_campaign(
        ctx,
        CampaignRequest(
            topic="alertes", text="Essai", sender_id="MAIRIE", audience=Audience(everyone=True)
        ),
    ).campaign_id
    provider = TwilioProvider(config.provider.twilio, "token", "http://127.0.0.1:1/cb")
    stop = asyncio.Event()
    task = asyncio.create_task(serve(ctx, provider, "t", stop=stop, listen=False))
    deadline = asyncio.get_running_loop().time() + until_settled
    while asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.2)
        with Session(engine) as session:
            if (
                session.exec(
                    select(Message).where(Message.state.in_(("queued", "sending")))
                ).first()
                is None
            ):  # type: ignore[attr-defined]
                break
    stop.set()
    await task
    return campaign_id


async def test_every_fault_ends_where_it_should(
    engine: Engine, server: tuple[FaultyTwilio, int]
) -> None:
    fake, port = server
    await _run(engine, _config(port), 12, until_settled=30)
    with Session(engine) as session:
        messages = list(session.exec(select(Message).order_by(Message.id)))  # type: ignore[arg-type]
    outcome = {m.id % 6: (m.state, m.reason) for m in messages}  # type: ignore[operator]
    assert outcome[0] == ("submitted", "")
    assert outcome[1][0] == "submitted"  # the 500 was retried
    assert outcome[2][0] == "submitted"  # the 429 waited its Retry-After
    assert outcome[3] == ("rejected", "twilio 21211: Invalid 'To' Phone Number")
    assert outcome[4][0] == "submitted"  # created, though its answer was unreadable
    assert outcome[5][0] == "uncertain" and "may have been sent" in outcome[5][1]
    assert all(fake.calls[m.id] <= 2 for m in messages)  # type: ignore[index]


async def test_refused_connections_end_in_failed_with_the_reason(engine: Engine) -> None:
    closed = _free_port()  # nothing listens there
    await _run(engine, _config(closed), 2, until_settled=20)
    with Session(engine) as session:
        messages = list(session.exec(select(Message)))
    assert {m.state for m in messages} == {"failed"}
    assert all(m.reason.startswith("gave up after 3 attempts") for m in messages)


async def test_wrong_credentials_pause_the_campaign(
    engine: Engine, server: tuple[FaultyTwilio, int]
) -> None:
    fake, port = server
    fake.auth_ok = False
    campaign_id = await _run(engine, _config(port), 3, until_settled=3)
    with Session(engine) as session:
        campaign = session.get(Campaign, campaign_id)
        states = {m.state for m in session.exec(select(Message))}
    assert campaign is not None and campaign.status == "paused"
    assert "20003" in campaign.status_reason or "Authenticate" in campaign.status_reason
    assert states == {"queued"}  # nothing failed one by one
