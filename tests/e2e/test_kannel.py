"""The Kannel provider through the real Kannel (bearerbox, smsbox, fakesmsc on loopback):
messages reach the SMSC exactly once and intact, every delivery report lands at our
endpoint, an MO "STOP" reaches our sms-service get-url."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from console.composing.gsm import needs_ucs2, segment_count
from console.config import KannelConfig
from console.sending.providers.base import HttpRequest, OutgoingSms, ProviderAuthError, SendResult
from console.sending.providers.kannel import KannelProvider, sms_service_get_url
from tests.e2e.kannel_harness import Kannel, running_kannel

pytestmark = pytest.mark.e2e

TOKEN = "e2e-Token_123"
SENDER = "MAIRIE"
SHORT_CODE = "38100"


class _Server(ThreadingHTTPServer):
    # Kannel loses reports a receiver drops: give the listen queue room.
    request_queue_size = 1024
    daemon_threads = True


class Receiver:
    """Our side of the callbacks: records every request Kannel makes to it."""

    def __init__(self) -> None:
        self.requests: list[HttpRequest] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                split = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
                request = HttpRequest(
                    method="GET",
                    path=split.path,
                    query=query,
                    headers=dict(self.headers.items()),
                    url=f"http://{self.headers.get('Host', '')}{self.path}",
                )
                with receiver._cond:
                    receiver.requests.append(request)
                    receiver._cond.notify_all()
                status = 200 if query.get("token") == TOKEN else 403
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def on(self, path: str) -> list[HttpRequest]:
        with self._cond:
            return [r for r in self.requests if r.path == path]

    def wait_for(
        self, path: str, done: Callable[[list[HttpRequest]], bool], timeout: float = 30.0
    ) -> list[HttpRequest]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [r for r in self.requests if r.path == path]
                left = deadline - time.monotonic()
                if done(got) or left <= 0:
                    return got
                self._cond.wait(min(left, 0.5))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


def _kannel(
    tmp_path: Path, receiver: Receiver, immediate_sendsms_reply: bool = True
) -> Iterator[Kannel]:
    mo_url = sms_service_get_url(f"{receiver.base}/kannel/mo?token={TOKEN}")
    with running_kannel(
        tmp_path / "kannel", mo_url, immediate_sendsms_reply=immediate_sendsms_reply
    ) as kannel:
        yield kannel


@pytest.fixture
def kannel(tmp_path: Path, receiver: Receiver) -> Iterator[Kannel]:
    yield from _kannel(tmp_path, receiver)


def provider_for(kannel: Kannel, receiver: Receiver, password: str | None = None) -> KannelProvider:
    return KannelProvider(
        KannelConfig(url=kannel.sendsms_url, username=kannel.username),
        kannel.password if password is None else password,
        f"{receiver.base}/kannel/dlr?token={TOKEN}",
    )


@pytest.fixture
def provider(kannel: Kannel, receiver: Receiver) -> KannelProvider:
    return provider_for(kannel, receiver)


def number(i: int) -> str:
    return f"+336{i:08d}"


async def send_all(
    provider: KannelProvider, messages: list[OutgoingSms], concurrency: int = 4
) -> list[SendResult]:
    queue = list(reversed(messages))
    results: list[SendResult] = []
    async with httpx.AsyncClient(timeout=10) as client:

        async def lane() -> None:
            while queue:
                results.extend(await provider.send(client, [queue.pop()]))

        await asyncio.gather(*(lane() for _ in range(concurrency)))
    return results


async def test_a_thousand_messages_reach_the_smsc_once_and_are_all_delivered(
    kannel: Kannel, receiver: Receiver, provider: KannelProvider
) -> None:
    count = 1000
    messages = [
        OutgoingSms(i, number(i), f"Exercice d'alerte crue n°{i} : évacuez les quais", SENDER)
        for i in range(1, count + 1)
    ]
    # n° forces UCS-2 for every other message: both codings go through.
    messages = [
        m
        if m.message_id % 2
        else OutgoingSms(m.message_id, m.to, m.text.replace("n°", "no"), SENDER)
        for m in messages
    ]
    started = time.monotonic()
    results = await send_all(provider, messages)
    sent_in = time.monotonic() - started
    assert Counter(r.outcome for r in results) == {"submitted": count}
    assert sorted(r.message_id for r in results) == list(range(1, count + 1))

    received = kannel.wait_received(count, timeout=30)
    at_smsc = time.monotonic() - started
    expected = {m.text: m for m in messages}
    bodies = Counter(r.body for r in received)
    assert len(received) == count, f"{len(received)} of {count} reached fakesmsc"
    assert set(bodies) == set(expected) and set(bodies.values()) == {1}
    for r in received:
        m = expected[r.body]
        assert (r.sender, r.to) == (SENDER, m.to)
        assert r.coding == ("ucs-2" if m.message_id % 2 else "text")

    def all_delivered(got: list[HttpRequest]) -> bool:
        return len({r.query.get("mid") for r in got if r.query.get("type") == "1"}) >= count

    reports = receiver.wait_for("/kannel/dlr", all_delivered, timeout=30)
    reported_in = time.monotonic() - started
    parsed = [(r.query.get("type"), provider.parse_report(r)) for r in reports]
    delivered = Counter(rep.message_id for kind, reps in parsed if kind == "1" for rep in reps)
    # Every message delivered (a report may come twice: the ledger ignores duplicates).
    assert set(delivered) == set(range(1, count + 1))
    assert {kind for kind, _ in parsed} <= {"1", "8"}  # all fakesmsc can produce
    for kind, reps in parsed:
        (report,) = reps
        assert report.state == {"1": "delivered", "8": "submitted"}[kind or ""]
        assert 1 <= (report.message_id or 0) <= count
    assert all(r.query["token"] == TOKEN for r in reports)
    print(
        f"\nkannel: {count} sendsms in {sent_in:.1f} s ({count / sent_in:.0f}/s), "
        f"all at fakesmsc after {at_smsc:.1f} s, all delivery reports after "
        f"{reported_in:.1f} s ({len(reports)} reports, "
        f"{sum(delivered.values()) - count} duplicate type-1)"
    )


async def test_french_texts_arrive_intact(kannel: Kannel, provider: KannelProvider) -> None:
    texts = {
        1: "Fête de la musique ce soir : rendez-vous place de l'Église, entrée libre",  # ê
        2: "Leçon de français à la médiathèque, île de loisirs fermée, cœur du village",
        3: "Crue de la Moselle : évacuez les quais, ouverture du gymnase à 18h, 5 € [repas]",
    }
    results = await send_all(
        provider, [OutgoingSms(i, number(i), t, SENDER) for i, t in texts.items()]
    )
    assert {r.outcome for r in results} == {"submitted"}
    received = {r.to: r for r in kannel.wait_received(len(texts), timeout=10)}
    for i, text in texts.items():
        got = received[number(i)]
        assert got.body == text
        assert got.coding == ("text" if i == 3 else "ucs-2")  # é, à, € and [ ] are GSM-7


async def test_a_three_part_text_is_not_truncated(kannel: Kannel, provider: KannelProvider) -> None:
    gsm7 = (
        "Travaux rue de la Gare du lundi 3 au vendredi 21 : circulation alternée, "
        "stationnement interdit, déviation par l'avenue de la Libération. " * 3
    ).strip()
    ucs2 = ("Fête du village : la rue du Château sera fermée de 8h à 23h. " * 3).strip()
    assert not needs_ucs2(gsm7) and needs_ucs2(ucs2)
    assert segment_count(gsm7) == 3 and segment_count(ucs2) == 3
    results = await send_all(
        provider, [OutgoingSms(1, number(1), gsm7, SENDER), OutgoingSms(2, number(2), ucs2, SENDER)]
    )
    assert {r.outcome for r in results} == {"submitted"}
    received = {r.to: r for r in kannel.wait_received(2, timeout=10)}
    assert (received[number(1)].parts, received[number(1)].body) == (3, gsm7)
    assert (received[number(2)].parts, received[number(2)].body) == (3, ucs2)


async def test_a_wrong_password_raises_provider_auth_error(
    kannel: Kannel, receiver: Receiver
) -> None:
    wrong = provider_for(kannel, receiver, password="not-the-password")
    with pytest.raises(ProviderAuthError, match="Authorization failed for sendsms"):
        await send_all(wrong, [OutgoingSms(1, number(1), "Essai", SENDER)], concurrency=1)
    await asyncio.sleep(0.5)
    assert kannel.received() == []


async def test_smsbox_stopped_means_retry(kannel: Kannel, provider: KannelProvider) -> None:
    kannel.stop_smsbox()
    (result,) = await send_all(
        provider, [OutgoingSms(1, number(1), "Essai", SENDER)], concurrency=1
    )
    assert result.outcome == "retry"
    assert result.reason.startswith("kannel unreachable")


@pytest.fixture
def kannel_acking(tmp_path: Path, receiver: Receiver) -> Iterator[Kannel]:
    """smsbox answering only after bearerbox's ack (immediate-sendsms-reply = false)."""
    yield from _kannel(tmp_path, receiver, immediate_sendsms_reply=False)


async def test_smsc_offline_is_queued_for_later(kannel_acking: Kannel, receiver: Receiver) -> None:
    provider = provider_for(kannel_acking, receiver)
    (ok,) = await send_all(provider, [OutgoingSms(1, number(1), "Essai", SENDER)])
    assert (ok.outcome, ok.reason) == ("submitted", "")
    kannel_acking.stop_sink()
    (queued,) = await send_all(provider, [OutgoingSms(2, number(2), "Essai", SENDER)])
    assert queued.outcome == "submitted"
    assert queued.reason.startswith("kannel: 3: Queued for later delivery")


async def test_an_mo_stop_reaches_the_get_url(
    kannel: Kannel, receiver: Receiver, provider: KannelProvider
) -> None:
    sent = [("+33698765432", "STOP"), ("+33698765433", "Stop  infos événements, merci Ève")]
    for sender, text in sent:
        kannel.send_mo(sender, SHORT_CODE, text)
    got = receiver.wait_for("/kannel/mo", lambda got: len(got) >= len(sent), timeout=15)
    inbound = [provider.parse_inbound(r) for r in got]
    # smsbox calls the get-url from several threads: any order.
    assert sorted((i.sender, i.recipient, i.text) for i in inbound if i is not None) == [
        (sender, SHORT_CODE, text) for sender, text in sent
    ]
    assert all(i is not None and i.provider_ref for i in inbound)
    assert all(r.query["token"] == TOKEN for r in got)
    # max-messages = 0 in the sms-service: nothing is texted back to the resident.
    await asyncio.sleep(1)
    assert kannel.received() == []
