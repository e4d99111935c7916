"""The worker's throughput, with the ledger committed, as a ratio to a bare httpx loop
sending the same requests to the same server in the same run (target: 0.8 or more).

Two servers: a local Twilio-compatible HTTP provider (in its own process), and the
real Kannel from Debian (bearerbox, smsbox, fakesmsc on loopback) when installed.

    .venv/bin/python bench/bench_worker.py [--messages 2000] [--rounds 3] [--no-kannel]

Each round runs the bare loop and then the worker, on a fresh database; rounds
alternate so that a slow spell of a shared machine hits both sides. Every round is
printed, and the median of the rounds' ratios is the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx
from sqlalchemy import text

from bench.town import bench_context
from console.config import (
    Config,
    KannelConfig,
    ProviderConfig,
    TwilioConfig,
    WorkerConfig,
)
from console.contacts.importer import ImportOptions, import_contacts
from console.context import Context
from console.sending.campaigns import Audience, CampaignRequest, create_campaign
from console.sending.providers.base import OutgoingSms, Provider
from console.sending.providers.kannel import KannelProvider
from console.sending.providers.twilio import TwilioProvider
from console.sending.worker_main import serve

CONCURRENCY = 4
SERVER = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
async def create(request):
    await request.body()
    return Response(b'{"sid": "SM1", "status": "queued"}', status_code=201,
                    media_type="application/json")
app = Starlette(routes=[Route("/2010-04-01/Accounts/{sid}/Messages.json", create,
                              methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            backlog=2048)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def town(folder: Path, count: int, provider: ProviderConfig) -> Context:
    ctx = bench_context(
        folder,
        f"sqlite:///{folder}/bench.db",
        Config(provider=provider, worker=WorkerConfig(batch_size=200, lease_seconds=120)),
    )
    # Mobiles only: every message must come back submitted.
    csv_path = folder / "residents.csv"
    csv_path.write_text(
        "telephone\n"
        + "".join(
            f"06 9{i // 1000000} {i // 10000 % 100:02d} {i // 100 % 100:02d} {i % 100:02d}\n"
            for i in range(count)
        ),
        encoding="utf-8",
    )
    import_contacts(ctx, csv_path, ImportOptions())
    return ctx


async def bare_loop(provider: Provider, count: int) -> float:
    """The same requests through the same provider code, with no database at all."""
    batch = [
        OutgoingSms(i + 1, f"+3369{i:07d}", "Exercice d'alerte", "MAIRIE") for i in range(count)
    ]
    slots = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=CONCURRENCY * 2)) as c:

        async def one(sms: OutgoingSms) -> None:
            async with slots:
                results = await provider.send(c, [sms])
                assert results[0].outcome == "submitted", results[0]

        start = time.perf_counter()
        await asyncio.gather(*(one(sms) for sms in batch))
        return count / (time.perf_counter() - start)


async def worker_run(ctx: Context, provider: Provider, count: int) -> float:
    create_campaign(
        ctx,
        CampaignRequest(
            topic="alertes",
            text="Exercice d'alerte",
            sender_id="MAIRIE",
            audience=Audience(everyone=True),
            kind="emergency",
        ),
    )
    stop = asyncio.Event()

    # The harness's own polling must take as little as it can from the process being
    # measured: an indexed look for any message still to answer (a count of the
    # submitted ones scanned the whole campaign every 50 ms), then one count at the end.
    left = text("SELECT 1 FROM message WHERE state IN ('queued', 'sending') LIMIT 1")
    count_submitted = text("SELECT count(*) FROM message WHERE state = 'submitted'")

    def unanswered() -> bool:
        with ctx.engine.connect() as conn:
            return conn.execute(left).first() is not None

    start = time.perf_counter()
    task = asyncio.create_task(serve(ctx, provider, "bench", stop=stop, listen=False))
    while await asyncio.to_thread(unanswered):
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - start
    stop.set()
    await task
    with ctx.engine.connect() as conn:
        submitted = int(conn.execute(count_submitted).scalar_one())
    assert submitted == count, f"{submitted} of {count} submitted"
    return count / elapsed


async def compare(make: Callable[[], Provider], ctx: Context, count: int) -> tuple[float, float]:
    """One round: (worker msg/s, bare msg/s)."""
    bare = await bare_loop(make(), count)
    worker = await worker_run(ctx, make(), count)
    return worker, bare


def report(label: str, pairs: Sequence[tuple[float, float]], lines: list[str]) -> None:
    for number, (worker, bare) in enumerate(pairs, 1):
        lines.append(
            f"{label:<22} round {number}  worker {worker:7.0f} msg/s   "
            f"bare httpx {bare:7.0f} msg/s   ratio {worker / bare:.2f}"
        )
    median = statistics.median(worker / bare for worker, bare in pairs)
    lines.append(f"{label:<22} median ratio {median:.2f} (target >= 0.8)")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--residents", "--messages", dest="messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-kannel", action="store_true")
    args = parser.parse_args(argv)
    count, rounds = args.messages, args.rounds
    lines: list[str] = []
    rate = 1_000_000.0
    with tempfile.TemporaryDirectory(prefix="tocsin-bench-") as tmp:
        folder = Path(tmp)
        port = free_port()
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)])
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)
                    break
                except httpx.HTTPError:
                    time.sleep(0.05)
            twilio = TwilioConfig(account_sid="AC0123456789", api_url=f"http://127.0.0.1:{port}")
            pairs = []
            for number in range(rounds):
                (folder / f"http{number}").mkdir()
                ctx = town(
                    folder / f"http{number}",
                    count,
                    ProviderConfig(
                        name="twilio", rate=rate, concurrency=CONCURRENCY, twilio=twilio
                    ),
                )
                pairs.append(
                    asyncio.run(
                        compare(
                            lambda: TwilioProvider(twilio, "token", "http://127.0.0.1:1/cb"),
                            ctx,
                            count,
                        )
                    )
                )
            report("local HTTP provider", pairs, lines)
        finally:
            server.terminate()
            server.wait(10)
        if not args.no_kannel:
            run_kannel(folder, count, rounds, rate, lines)
    print(f"{count:,} messages, {CONCURRENCY} requests in flight, ledger on SQLite")
    for line in lines:
        print(line)


def run_kannel(folder: Path, count: int, rounds: int, rate: float, lines: list[str]) -> None:
    from tests.e2e.kannel_harness import running_kannel

    with running_kannel(folder / "kannel-run", "http://127.0.0.1:9/mo") as kannel:
        config = KannelConfig(url=kannel.sendsms_url, username=kannel.username)

        def make() -> Provider:
            return KannelProvider(config, kannel.password, "http://127.0.0.1:9/dlr")

        pairs = []
        for number in range(rounds):
            (folder / f"kannel{number}").mkdir()
            ctx = town(
                folder / f"kannel{number}",
                count,
                ProviderConfig(name="kannel", rate=rate, concurrency=CONCURRENCY, kannel=config),
            )
            pairs.append(asyncio.run(compare(make, ctx, count)))
        report("real Kannel (smsbox)", pairs, lines)


if __name__ == "__main__":
    main()
