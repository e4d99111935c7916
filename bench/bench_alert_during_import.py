"""An emergency alert confirmed while a 600,000-row import runs: time from the
confirmation to the worker's first provider request (target: under 2 s), against
the same alert with no import running (the baseline, in the same run).

`tocsin worker` runs as its own process against a local Twilio-compatible server
that notes when each alert's first request arrives (bench_alert.py's); the town has
a few hundred residents in its own quartiers, which the alert goes to. The import
(`tocsin import contacts`, its own process, into the same SQLite base) writes other
residents; the alert is confirmed as the console does it (`send_alert`) once the
import has written its first rows, then again every 5 s while it runs.

    .venv/bin/python bench/bench_alert_during_import.py [--residents 600000] [--runs 3] [--every 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx
from sqlalchemy import func, select

from bench.bench_alert import SERVER, free_port, wait_for
from bench.bench_import import generate
from bench.town import bench_context, import_residents
from console.context import Context
from console.sending.alerts import AlertDraft, send_alert
from console.sending.workers import ALIVE_WITHIN_S, alive_workers
from storage.engine import read_session
from storage.models import contact_table

TARGET_S = 2.0
TOWN = 300
ZONES = 3


def contacts(ctx: Context) -> int:
    with read_session(ctx.engine) as session:
        return int(session.execute(select(func.count()).select_from(contact_table)).scalar_one())


def alert(ctx: Context, mark: Path) -> float:
    """Confirm an alert to the town's quartiers; seconds to its first provider request."""
    mark.write_text("")
    wall0 = time.time()
    send_alert(
        ctx,
        AlertDraft(
            everyone=False,
            zones=tuple(f"Zone {i}" for i in range(ZONES)),
            text="Exercice d'alerte : crue de la Sèvre",
            sender_id="MAIRIE",
        ),
    )
    wait_for(lambda: mark.read_text().strip() != "", "a first request", timeout=600)
    return float(mark.read_text().split()[0]) - wall0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--residents", "--rows", dest="rows", type=int, default=600_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--after",
        type=float,
        default=0.0,
        help="first alert this many seconds after the import starts (default: once its "
        "first rows are in; an import in one transaction shows none before its end)",
    )
    parser.add_argument("--every", type=float, default=5.0, help="seconds between alerts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tocsin-bench-") as tmp:
        folder = Path(tmp)
        url = f"sqlite:///{folder}/bench.db"
        port, endpoint = free_port(), free_port()
        mark = folder / "first-request"
        config = folder / "config.toml"
        config.write_text(
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
        import_residents(ctx, folder, TOWN, zones=ZONES)
        csv_path = folder / "habitants.csv"
        generate(csv_path, args.rows, 1)

        env = {
            **os.environ,
            "TOCSIN_TWILIO_AUTH_TOKEN": "bench",
            "TOCSIN_ENDPOINT_TOKEN": "bench",
            "PYTHONPATH": str(ROOT),
        }
        tocsin = [sys.executable, "-m", "console", "--config", str(config)]
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(port), str(mark)])
        log = (folder / "worker.log").open("wb")
        worker = subprocess.Popen([*tocsin, "worker"], env=env, stderr=log)
        importer: subprocess.Popen[bytes] | None = None
        try:

            def server_up() -> bool:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)
                    return True
                except httpx.HTTPError:
                    return False

            wait_for(server_up, "the local provider starting")
            wait_for(
                lambda: alive_workers(ctx.engine, ctx.clock.now(), ALIVE_WITHIN_S),
                "the worker beating",
            )
            time.sleep(1)  # the worker is idle, polling the queue
            baseline = []
            for _ in range(args.runs):
                baseline.append(alert(ctx, mark))
                time.sleep(1)

            started = time.perf_counter()
            importer = subprocess.Popen(
                [*tocsin, "import", "contacts", str(csv_path), "--json"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            if args.after:
                time.sleep(args.after)
            else:
                wait_for(lambda: contacts(ctx) > TOWN, "the import's first rows", timeout=120)
            during: list[float] = []
            imported: list[int] = []
            while importer.poll() is None and len(during) < args.runs:
                imported.append(contacts(ctx) - TOWN)
                during.append(alert(ctx, mark))
                time.sleep(args.every)
            _, errors = importer.communicate(timeout=3600)
            import_s = time.perf_counter() - started
            if importer.returncode != 0:
                raise SystemExit(f"bench: the import failed: {errors.decode()[-2000:]}")
        finally:
            for process in (importer, worker, server):
                if process is not None and process.poll() is None:
                    process.terminate()
                    process.wait(30)
            log.close()
        ctx.engine.dispose()

    def line(label: str, values: list[float], target: str = "") -> str:
        shown = ", ".join(f"{v:.3f}" for v in values)
        return f"{label:<40} median {statistics.median(values):6.3f} s  ({shown}){target}"

    print(f"{args.rows:,}-row import, worker in its own process, ledger on SQLite")
    print(line("alert alone: confirm -> first request", baseline))
    if not during:
        raise SystemExit("bench: the import ended before an alert could be sent during it")
    print(
        line("during the import", during, f"  (target < {TARGET_S:.0f} s)")
        + f"  rows already imported: {', '.join(f'{n:,}' for n in imported)}"
    )
    print(f"import:                                  {import_s:.1f} s")
    ratio = statistics.median(during) / statistics.median(baseline)
    print(f"ratio during / alone (median):           {ratio:.2f}")
    print(f"worst during:                            {max(during):.3f} s")
    sys.exit(0 if max(during) < TARGET_S else 1)


if __name__ == "__main__":
    main()
