"""A second alert while an all-town one is sending: how soon, and at whose expense.

An all-town alert (50,000 residents) is confirmed and sends through a local
Twilio-compatible server that answers each request after a realistic latency; once
it is in its stride, a second alert to one quartier (300 residents) is confirmed as
the console does it (`send_alert`). The server notes every request it gets, so the
figures are the provider's view:

- confirm -> the second alert's first provider request (target < 1 s),
- confirm -> its last one,
- how many of the big alert's messages the provider got in between (target: the
  300 all go before the big one's next 1,000),
- the baseline: the big alert's own pace just before, and the ratio of the time the
  300 took to the time the big one takes for 300 of its own.

Then the big alert is cancelled as an operator would, and the bench prints what the
cancel reports: how many messages still left after it (calls already in flight).

    .venv/bin/python bench/bench_two_alerts.py [--big 50000] [--small 300] [--runs 3]
        [--postgresql postgresql://postgres@127.0.0.1:5432/postgres --workers 2]

The worker runs as its own process (`tocsin worker`), or several on PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.town import bench_context
from console.contacts.importer import ImportOptions, import_contacts
from console.demo import resident_rows
from console.sending.alerts import AlertDraft, send_alert
from console.sending.campaign_ops import change_campaign
from console.sending.workers import ALIVE_WITHIN_S, alive_workers

QUARTIER = "Le Moulin"

SERVER = """
import asyncio, json, sys, time, urllib.parse, uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
latency = float(sys.argv[2])
marks = []
async def create(request):
    form = urllib.parse.parse_qs((await request.body()).decode())
    body = form.get("Body", [""])[0]
    # When the request arrived, and which alert it belongs to (its text says).
    marks.append((time.time(), body.split(" ", 1)[0]))
    await asyncio.sleep(latency)
    return Response(b'{"sid": "SM1", "status": "queued"}', status_code=201,
                    media_type="application/json")
async def seen(request):
    return Response(json.dumps(marks), media_type="application/json")
async def ping(request):
    return Response(b"ok")
app = Starlette(routes=[
    Route("/2010-04-01/Accounts/{sid}/Messages.json", create, methods=["POST"]),
    Route("/marks", seen), Route("/", ping)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise SystemExit(f"bench: {what} never happened")


def marks(port: int) -> list[tuple[float, str]]:
    return [tuple(m) for m in httpx.get(f"http://127.0.0.1:{port}/marks", timeout=10).json()]  # type: ignore[misc]


def town_csv(folder: Path, big: int, small: int) -> Path:
    """`big` residents (seeded), `small` of them, with a mobile number each, in one
    quartier (the others include landlines, skipped at enqueue)."""
    path = folder / "residents.csv"
    rows = resident_rows(big, 7)
    mobiles = [
        i for i, row in enumerate(rows) if row[1][:2] in ("06", "07") and row[1][:5] != "06 92"
    ]
    quartier = set(mobiles[-small:])
    path.write_text(
        "nom;telephone;quartier\n"
        + "".join(
            f"{name};{number};{QUARTIER if i in quartier else f'Zone {i % 12}'}\n"
            for i, (name, number, *_) in enumerate(rows)
        ),
        encoding="utf-8",
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--residents", "--big", dest="big", type=int, default=50_000)
    parser.add_argument("--small", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=40.0, help="the provider's answer")
    parser.add_argument("--rate", type=float, default=200.0, help="messages/s (provider.rate)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--postgresql", help="admin URL: a scratch database is made there")
    parser.add_argument("--workers", type=int, default=1, help="PostgreSQL only")
    args = parser.parse_args()
    if args.workers > 1 and not args.postgresql:
        raise SystemExit("bench: several workers need --postgresql")
    with tempfile.TemporaryDirectory(prefix="tocsin-bench-") as tmp:
        folder = Path(tmp)
        admin = None
        scratch = f"tocsin_bench_{uuid.uuid4().hex[:8]}"
        if args.postgresql:
            admin = create_engine(args.postgresql, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{scratch}"'))
            url = make_url(args.postgresql).set(database=scratch).render_as_string(False)
        else:
            url = f"sqlite:///{folder}/bench.db"
        try:
            run(args, folder, url)
        finally:
            if admin is not None:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
                admin.dispose()


def run(args: argparse.Namespace, folder: Path, url: str) -> None:
    port = free_port()
    config = folder / "config.toml"
    config.write_text(
        f"""
[database]
url = "{url}"
[privacy]
hash_key_file = "{folder}/key"
[provider]
name = "twilio"
rate = {args.rate}
concurrency = {args.concurrency}
[provider.twilio]
account_sid = "AC0123456789"
api_url = "http://127.0.0.1:{port}"
""",
        encoding="utf-8",
    )
    ctx = bench_context(folder, url)
    engine = ctx.engine
    import_contacts(ctx, town_csv(folder, args.big, args.small), ImportOptions())
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(port), str(args.latency_ms / 1000)]
    )
    env = {
        **os.environ,
        "TOCSIN_TWILIO_AUTH_TOKEN": "bench",
        "TOCSIN_ENDPOINT_TOKEN": "bench",
        "PYTHONPATH": str(ROOT),
    }
    workers, logs = [], []
    for n in range(args.workers):
        (folder / f"w{n}.toml").write_text(
            config.read_text()
            + f'[worker]\nlisten_port = {free_port()}\npublic_url = "http://127.0.0.1:1"\n',
            encoding="utf-8",
        )
        logs.append((folder / f"worker{n}.log").open("wb"))
        workers.append(
            subprocess.Popen(
                [sys.executable, "-m", "console", "--config", str(folder / f"w{n}.toml"), "worker"],
                env=env,
                stderr=logs[-1],
            )
        )
    first, last, between, pace, ratio = [], [], [], [], []
    sizes: list[int] = []
    skipped_reasons: Counter[str] = Counter()
    try:

        def server_up() -> bool:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)
                return True
            except httpx.HTTPError:
                return False

        wait_for(server_up, "the local provider starting")
        try:
            wait_for(
                lambda: len(alive_workers(engine, ctx.clock.now(), ALIVE_WITHIN_S)) >= args.workers,
                "the workers beating",
            )
        except SystemExit:
            for n in range(args.workers):
                print((folder / f"worker{n}.log").read_text(), file=sys.stderr)
            raise
        big = send_alert(ctx, AlertDraft(text="GRANDE crue de la Sèvre", sender_id="MAIRIE"))
        assert big.campaign_id is not None
        # In its stride: the whole audience enqueued and a good part of it sent (a
        # tenth of a small town, which has fewer than 2,000 mobiles to reach).
        stride = min(2_000, args.big // 10)
        wait_for(lambda: len(marks(port)) >= stride, "the big alert sending", timeout=120)
        for run_no in range(args.runs):
            wall0 = time.time()
            second = send_alert(
                ctx,
                AlertDraft(
                    everyone=False,
                    zones=(QUARTIER,),
                    text=f"PETITE{run_no} coupure d'eau au Moulin",
                    sender_id="MAIRIE",
                ),
            )
            tag = f"PETITE{run_no}"
            # Residents without a usable number or consent are skipped at enqueue; the
            # counts are taken at the end of the enqueue, some already sent.
            expected = sum(second.counts.values()) - second.counts.get("skipped", 0)
            skipped_reasons.update(second.skipped)
            try:
                wait_for(
                    lambda tag=tag, n=expected: sum(1 for _, t in marks(port) if t == tag) >= n,
                    f"the {expected} messages of the second alert",
                )
            except SystemExit:
                with engine.connect() as conn:
                    print(
                        conn.execute(
                            text(
                                "SELECT campaign_id, state, count(*) FROM message "
                                "GROUP BY campaign_id, state ORDER BY 1, 2"
                            )
                        ).all(),
                        file=sys.stderr,
                    )
                raise
            seen = marks(port)
            small = sorted(at for at, t in seen if t == tag)
            big_before = sorted(at for at, t in seen if t == "GRANDE" and at < wall0)
            first.append(small[0] - wall0)
            last.append(small[-1] - wall0)
            between.append(sum(1 for at, t in seen if t == "GRANDE" and wall0 <= at <= small[-1]))
            # The big one's own pace over the 5 s before the confirm: the baseline.
            recent = [at for at in big_before if at >= wall0 - 5]
            rate = len(recent) / 5
            pace.append(rate)
            ratio.append((small[-1] - wall0) / (len(small) / rate))
            sizes.append(len(small))
            time.sleep(1)
        # The operator cancels the big alert: what it still sends after that.
        cancelled = change_campaign(ctx, big.campaign_id, "cancel")
        after = time.time()
        time.sleep(1)
        late = sum(1 for at, t in marks(port) if t == "GRANDE" and at > after)
    finally:
        for worker in workers:
            worker.terminate()
        server.terminate()
        for worker in workers:
            worker.wait(30)
        server.wait(10)
        for log in logs:
            log.close()
        engine.dispose()

    def line(label: str, values: list[float], unit: str, target: str = "") -> str:
        shown = ", ".join(f"{v:.0f}" if unit in ("msg", "msg/s") else f"{v:.3f}" for v in values)
        median = statistics.median(values)
        return (
            f"{label:<52} median {median:8.3f} {unit}  ({shown}){'  ' + target if target else ''}"
        )

    database = "PostgreSQL" if args.postgresql else "SQLite"
    print(
        f"{args.big:,} residents sending, second alert to {args.small} "
        f"({max(sizes, default=0)} to send, skipped: {dict(skipped_reasons) or 0}) "
        f"({database}, {args.workers} worker(s), provider {args.latency_ms:.0f} ms, "
        f"rate {args.rate:.0f}/s, concurrency {args.concurrency})"
    )
    print(line("confirm -> its first provider request", first, "s", "(target < 1 s)"))
    print(line("confirm -> its last provider request", last, "s"))
    print(
        line(
            "big alert's requests in between",
            [float(b) for b in between],
            "msg",
            "(target < 1,000)",
        )
    )
    print(line("baseline: big alert's pace before", pace, "msg/s"))
    print(line("ratio: its time / the big one's time for as many", ratio, "x"))
    stop = cancelled.stop
    print(
        "cancel of the big alert: "
        + json.dumps(stop.to_json() if stop is not None else None)
        + f"; provider requests after the cancel returned: {late}"
    )


if __name__ == "__main__":
    main()
