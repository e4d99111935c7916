"""An emergency alert to 50,000 residents: time from the confirming key to the first
provider request (target: under 0.5 s) and to the last message enqueued.

`tocsin worker` runs as its own process, idle, against a local Twilio-compatible server
that notes when the first request arrives; the alert is then confirmed as the console
does it (`send_alert`). The baseline, in the same run, is the same audience enqueued in
one transaction (a planned send): before it commits, no message can go.

    .venv/bin/python bench/bench_alert.py [--recipients 50000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx

from bench.town import bench_context, import_residents
from console.sending.alerts import AlertDraft, send_alert
from console.sending.campaigns import Audience, CampaignRequest, create_campaign
from console.sending.workers import ALIVE_WITHIN_S, alive_workers

SERVER = """
import sys, time, uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
mark = sys.argv[2]
async def create(request):
    await request.body()
    # The wall clock of the first request of each alert (the file is emptied between).
    with open(mark, "a") as out:
        out.write(f"{time.time()}\\n")
    return Response(b'{"sid": "SM1", "status": "queued"}', status_code=201,
                    media_type="application/json")
app = Starlette(routes=[Route("/2010-04-01/Accounts/{sid}/Messages.json", create,
                              methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise SystemExit(f"bench: {what} never happened")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--residents", "--recipients", dest="recipients", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tocsin-bench-") as tmp:
        folder = Path(tmp)
        url = f"sqlite:///{folder}/bench.db"
        port, endpoint = free_port(), free_port()
        mark = folder / "first-request"
        (folder / "config.toml").write_text(
            f"""
[database]
url = "{url}"
[privacy]
hash_key_file = "{folder}/key"
[provider]
name = "twilio"
rate = 100000.0
concurrency = 8
[provider.twilio]
account_sid = "AC0123456789"
api_url = "http://127.0.0.1:{port}"
[worker]
listen_port = {endpoint}
public_url = "http://127.0.0.1:{endpoint}"
""",
            encoding="utf-8",
        )
        ctx = bench_context(folder, url)
        engine = ctx.engine
        import_residents(ctx, folder, args.recipients, zones=12)

        server = subprocess.Popen([sys.executable, "-c", SERVER, str(port), str(mark)])
        env = {
            **os.environ,
            "TOCSIN_TWILIO_AUTH_TOKEN": "bench",
            "TOCSIN_ENDPOINT_TOKEN": "bench",
            "PYTHONPATH": str(ROOT),
        }
        log = (folder / "worker.log").open("wb")
        worker = subprocess.Popen(
            [sys.executable, "-m", "console", "--config", str(folder / "config.toml"), "worker"],
            env=env,
            stderr=log,
        )
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
                    lambda: alive_workers(engine, ctx.clock.now(), ALIVE_WITHIN_S),
                    "the worker beating",
                )
            except SystemExit:
                print((folder / "worker.log").read_text(), file=sys.stderr)
                raise
            time.sleep(1)  # the worker is idle, polling the queue, as on a quiet night
            first, started, last, baseline = [], [], [], []
            for _ in range(args.runs):
                # Baseline: one transaction, scheduled tomorrow so the worker leaves it.
                t0 = time.perf_counter()
                create_campaign(
                    ctx,
                    CampaignRequest(
                        topic="alertes",
                        text="Exercice",
                        sender_id="MAIRIE",
                        audience=Audience(everyone=True),
                        start_at=ctx.clock.now() + timedelta(days=1),
                    ),
                )
                baseline.append(time.perf_counter() - t0)

                mark.write_text("")
                marks: list[float] = []
                wall0, t0 = time.time(), time.perf_counter()
                send_alert(
                    ctx,
                    AlertDraft(text="Exercice d'alerte : crue de la Sèvre", sender_id="MAIRIE"),
                    on_started=lambda _, marks=marks: marks.append(time.perf_counter()),
                )
                end = time.perf_counter()
                last.append(end - t0)
                started.append(marks[0] - t0)
                wait_for(lambda: mark.read_text().strip() != "", "a first request")
                first.append(float(mark.read_text().split()[0]) - wall0)
                # Let the worker drain this alert before the next run.
                time.sleep(2)
        finally:
            worker.terminate()
            server.terminate()
            worker.wait(30)
            server.wait(10)
            log.close()
        engine.dispose()

    def line(label: str, values: list[float], target: str = "") -> str:
        shown = ", ".join(f"{v:.3f}" for v in values)
        return (
            f"{label:<46} median {statistics.median(values):6.3f} s  ({shown})"
            f"{'  ' + target if target else ''}"
        )

    print(f"{args.recipients:,} residents, worker in its own process, ledger on SQLite")
    print(line("confirm -> first provider request", first, "(target < 0.5 s)"))
    print(line("confirm -> alert visible (first chunk committed)", started))
    print(line("confirm -> last message enqueued", last))
    print(line("baseline: same audience in one transaction", baseline))
    print(
        f"ratio first request / one-transaction enqueue: "
        f"{statistics.median(first) / statistics.median(baseline):.2f}"
    )


if __name__ == "__main__":
    main()
