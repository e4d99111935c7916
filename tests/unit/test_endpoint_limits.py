"""The endpoint against what the Internet sends: floods without the token, bodies too
big or too slow, headers that never end, hang-ups, and authenticated callers who get
their reports wrong. A real uvicorn on loopback, configured as `tocsin worker` runs
it (server_config), and raw sockets where httpx would be too polite."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlmodel import Session, select

from console.config import Config, SimulatedConfig, TwilioConfig, WorkerConfig
from console.contacts.service import ContactInput, add_contact, is_suppressed
from console.context import Context
from console.sending.endpoint import build_app
from console.sending.endpoint_server import server_config
from console.sending.providers.base import Provider
from console.sending.providers.simulated import SimulatedProvider
from console.sending.providers.twilio import TwilioProvider
from storage.models import AuditEntry

TOKEN = "s3cret-token"
LIMIT = 64 * 1024
READ_TIMEOUT = 1.0
PUBLIC = "https://mairie.example/tocsin"
TWILIO_TOKEN = "twilio-auth-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def config() -> Config:
    return Config(
        worker=WorkerConfig(
            max_body_bytes=LIMIT, read_timeout_seconds=READ_TIMEOUT, public_url=PUBLIC
        )
    )


async def _serve(ctx: Context, provider: Provider) -> AsyncIterator[tuple[str, int]]:
    port = _free_port()
    server = uvicorn.Server(
        server_config(build_app(ctx, provider, TOKEN), ctx.config.worker, port=port)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield "127.0.0.1", port
    server.should_exit = True
    await task


@pytest.fixture
async def served(ctx: Context) -> AsyncIterator[tuple[str, int]]:
    async for address in _serve(ctx, SimulatedProvider(SimulatedConfig())):
        yield address


def _url(address: tuple[str, int]) -> str:
    return f"http://{address[0]}:{address[1]}"


async def _raw(
    address: tuple[str, int], head: bytes, body: bytes = b"", *, then_wait: float = 5.0
) -> bytes:
    """Send `head` and `body` as they are, then read the answer until the server
    closes or `then_wait` passes; what the server said (b"" if it just closed)."""
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(head + body)
        await writer.drain()
        data = b""
        async with asyncio.timeout(then_wait):
            while chunk := await reader.read(65536):
                data += chunk
        return data
    except (ConnectionError, TimeoutError):
        return b"<still open>" if not locals().get("data") else locals()["data"]
    finally:
        writer.close()


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    pytest.skip("no /proc/self/status to read the memory from")
    return 0.0


def _report(message_id: object) -> bytes:
    return json.dumps({"message_id": message_id, "state": "delivered"}).encode()


# ---- the token before the body ------------------------------------------------


async def test_a_huge_body_without_the_token_is_refused_unread(
    served: tuple[str, int],
) -> None:
    head = (
        b"POST /reports/simulated HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 200000000\r\n\r\n"
    )
    started = time.monotonic()
    answer = await _raw(served, head, b"x" * 100_000)
    assert _status(answer) == 403
    assert time.monotonic() - started < 3


async def test_a_flood_without_the_token_keeps_memory_bounded_and_the_town_served(
    ctx: Context, served: tuple[str, int]
) -> None:
    """200 callers at once, each announcing 200 MB and pushing 2 MB: each gets 403,
    the process grows by a few MB at most, and a real report still goes through."""
    before = _rss_mb()
    head = (
        b"POST /inbound/simulated?token=wrong HTTP/1.1\r\nHost: x\r\n"
        b"Content-Length: 200000000\r\n\r\n"
    )

    async def caller() -> int:
        reader, writer = await asyncio.open_connection(*served)
        # Listening while sending: the answer comes before the body is through.
        answer = asyncio.create_task(reader.read(4096))
        try:
            writer.write(head)
            for _ in range(32):
                writer.write(b"x" * 65536)
                await asyncio.wait_for(writer.drain(), 5)
        except (ConnectionError, TimeoutError):
            pass  # the server hung up on the rest of the body: as it should
        try:
            return _status(await asyncio.wait_for(answer, 10))
        except (ConnectionError, TimeoutError):
            return -1  # reset: the kernel drops an answer when unread data remains
        finally:
            writer.close()

    statuses = await asyncio.gather(*(caller() for _ in range(200)))
    grown = _rss_mb() - before
    assert set(statuses) <= {403, -1}, statuses
    assert statuses.count(403) >= 100, statuses
    assert grown < 60, f"the process grew by {grown:.0f} MB"
    async with httpx.AsyncClient(base_url=_url(served)) as client:
        answer = await client.post(
            "/inbound/simulated",
            params={"token": TOKEN},
            content=json.dumps({"from": "+33650000009", "to": "MAIRIE", "text": "STOP"}),
        )
    assert answer.status_code == 200
    with Session(ctx.engine) as session:
        assert is_suppressed(session, ctx, "+33650000009")


# ---- the body's size and pace ------------------------------------------------------


async def test_a_declared_body_over_the_cap_gets_413(served: tuple[str, int]) -> None:
    async with httpx.AsyncClient(base_url=_url(served)) as client:
        answer = await client.post(
            "/reports/simulated", params={"token": TOKEN}, content=b"[" + b" " * LIMIT + b"]"
        )
    assert answer.status_code == 413


async def test_a_chunked_body_over_the_cap_gets_413(served: tuple[str, int]) -> None:
    """No Content-Length to refuse on: the reading stops at the cap."""
    reader, writer = await asyncio.open_connection(*served)
    answer = asyncio.create_task(reader.read(4096))
    writer.write(
        f"POST /reports/simulated?token={TOKEN} HTTP/1.1\r\nHost: x\r\n"
        "Transfer-Encoding: chunked\r\n\r\n".encode()
    )
    try:
        for _ in range(40):
            writer.write(b"2000\r\n" + b" " * 8192 + b"\r\n")
            await asyncio.wait_for(writer.drain(), 5)
    except (ConnectionError, TimeoutError):
        pass
    assert _status(await asyncio.wait_for(answer, 10)) == 413
    writer.close()


async def test_a_body_that_never_finishes_gets_408(served: tuple[str, int]) -> None:
    head = (
        f"POST /reports/simulated?token={TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
    ).encode()
    started = time.monotonic()
    answer = await _raw(served, head, b'{"message_id":', then_wait=READ_TIMEOUT * 5)
    assert _status(answer) == 408
    assert time.monotonic() - started < READ_TIMEOUT * 4


async def test_headers_that_never_finish_are_cut_off(served: tuple[str, int]) -> None:
    started = time.monotonic()
    answer = await _raw(
        served, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ", then_wait=READ_TIMEOUT * 5
    )
    assert answer == b""  # closed, without an answer
    assert time.monotonic() - started < READ_TIMEOUT * 4


async def test_slow_headers_on_a_kept_alive_connection_are_cut_off_too(
    served: tuple[str, int],
) -> None:
    reader, writer = await asyncio.open_connection(*served)
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    first = await asyncio.wait_for(reader.read(4096), 5)
    assert _status(first) == 200
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # and nothing more
    await writer.drain()
    assert await asyncio.wait_for(reader.read(4096), READ_TIMEOUT * 8) == b""
    writer.close()


async def test_endless_headers_get_an_error_past_16_kib(served: tuple[str, int]) -> None:
    """Headers trickling in past 16 KiB are refused, not buffered without end."""
    reader, writer = await asyncio.open_connection(*served)
    answer = asyncio.create_task(reader.read(4096))
    writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ")
    sent = 0
    try:
        while sent < 1_000_000 and not answer.done():
            writer.write(b"a" * 4096)
            await asyncio.wait_for(writer.drain(), 5)
            sent += 4096
            await asyncio.sleep(0.001)
    except (ConnectionError, TimeoutError):
        pass
    try:
        status = _status(await asyncio.wait_for(answer, 10))
    except ConnectionError:
        status = -1
    writer.close()
    assert status in (400, -1)
    assert sent < 200_000


async def test_a_hang_up_half_way_is_no_error_in_the_log(
    served: tuple[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    for _ in range(20):
        _reader, writer = await asyncio.open_connection(*served)
        writer.write(
            f"POST /reports/simulated?token={TOKEN} HTTP/1.1\r\nHost: x\r\n"
            "Content-Length: 5000\r\n\r\n{".encode()
        )
        await writer.drain()
        writer.close()
    await asyncio.sleep(0.3)
    async with httpx.AsyncClient(base_url=_url(served)) as client:
        assert (await client.get("/health")).text == "ok"
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert all(r.exc_info is None for r in caplog.records)


# ---- authenticated, but wrong --------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (_report(10**20), "message id out of range"),
        (_report(-3), "message id out of range"),
        (_report("12"), ""),  # a digit string is read as an id: fine, and unknown
        (_report([1]), "message_id should be a number"),
        (_report({"a": 1}), "message_id should be a number"),
        (b"[" * 100_00 + b"]" * 100_00, "nested too deep"),
        (b'{"message_id": 1, "state": ["delivered"]}', "state should be one of"),
        (b"\xff\xfe not json", "the body is not JSON"),
    ],
)
async def test_malformed_reports_get_400_not_500(
    served: tuple[str, int], body: bytes, why: str
) -> None:
    async with httpx.AsyncClient(base_url=_url(served)) as client:
        answer = await client.post("/reports/simulated", params={"token": TOKEN}, content=body)
    if not why:
        assert answer.status_code == 200
        return
    assert answer.status_code == 400, answer.text
    assert why in answer.text


async def test_a_kannel_report_with_a_huge_id_gets_400(ctx: Context) -> None:
    from console.config import KannelConfig
    from console.sending.providers.kannel import KannelProvider

    provider = KannelProvider(KannelConfig(), "pw", f"{PUBLIC}/reports/kannel?token={TOKEN}")
    async for address in _serve(ctx, provider):
        async with httpx.AsyncClient(base_url=_url(address)) as client:
            answer = await client.get(
                "/reports/kannel", params={"token": TOKEN, "mid": str(10**20), "type": "1"}
            )
            fine = await client.get(
                "/reports/kannel", params={"token": TOKEN, "mid": "12", "type": "1"}
            )
    assert answer.status_code == 400 and "out of range" in answer.text
    assert fine.status_code == 200


async def test_an_inbound_reference_too_long_for_the_ledger_gets_400(
    served: tuple[str, int],
) -> None:
    sms = {"from": "+33650000010", "to": "MAIRIE", "text": "STOP", "id": "r" * 5000}
    async with httpx.AsyncClient(base_url=_url(served)) as client:
        answer = await client.post(
            "/inbound/simulated", params={"token": TOKEN}, content=json.dumps(sms)
        )
    assert answer.status_code == 400


# ---- Twilio: the signature over repeated names, on the public URL -----------------------


def _twilio_signature(url: str, pairs: list[tuple[str, str]]) -> str:
    """Twilio's helper libraries' algorithm, written out again: names sorted, each
    followed by each of its distinct values, sorted."""
    data = url
    for name in sorted({n for n, _ in pairs}):
        for value in sorted({v for n, v in pairs if n == name}):
            data += name + value
    mac = hmac.new(TWILIO_TOKEN.encode(), data.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


@pytest.fixture
async def twilio(ctx: Context) -> AsyncIterator[tuple[str, int]]:
    provider = TwilioProvider(
        TwilioConfig(account_sid="AC1"), TWILIO_TOKEN, f"{PUBLIC}/reports/twilio"
    )
    async for address in _serve(ctx, provider):
        yield address


async def _post_twilio(
    address: tuple[str, int], pairs: list[tuple[str, str]], signature: str, host: str = "x"
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=_url(address)) as client:
        return await client.post(
            "/inbound/twilio",
            content="&".join(f"{n}={v.replace('+', '%2B')}" for n, v in pairs),
            headers={
                "content-type": "application/x-www-form-urlencoded",
                "x-twilio-signature": signature,
                "host": host,
            },
        )


async def test_twilio_signs_every_value_of_a_repeated_name(
    ctx: Context, twilio: tuple[str, int]
) -> None:
    add_contact(ctx, ContactInput(number="06 50 00 00 11"))
    pairs = [
        ("From", "+33650000011"),
        ("Body", "STOP"),
        ("MediaUrl", "https://b.example/2"),
        ("MediaUrl", "https://a.example/1"),
    ]
    url = f"{PUBLIC}/inbound/twilio"
    good = _twilio_signature(url, pairs)
    # Signed over one of the two values only (what a dict of the form would check).
    only_last = _twilio_signature(url, pairs[:3])
    assert (await _post_twilio(twilio, pairs, only_last)).status_code == 403
    assert (await _post_twilio(twilio, pairs, good)).status_code == 200
    with Session(ctx.engine) as session:
        assert is_suppressed(session, ctx, "+33650000011")


async def test_twilio_checks_the_public_url_not_the_host_header(
    ctx: Context, twilio: tuple[str, int]
) -> None:
    """A signature Twilio made for another address of the account, replayed here with
    that address in the Host header, is refused."""
    pairs = [("From", "+33650000012"), ("Body", "STOP")]
    elsewhere = _twilio_signature("http://autre.example/inbound/twilio", pairs)
    answer = await _post_twilio(twilio, pairs, elsewhere, host="autre.example")
    assert answer.status_code == 403
    with Session(ctx.engine) as session:
        assert not is_suppressed(session, ctx, "+33650000012")
        assert session.exec(select(AuditEntry)).all() == []
