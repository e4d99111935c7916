"""City scale: what each hot path costs at 10k, 100k and 1M residents, and how it grows.

A town of each size is built straight into a migrated SQLite database by bulk SQL
(seconds, not the importer's minutes): the demo's quartiers, groups, landlines,
consent shares and a few withdrawals, plus a 50,000-entry STOP list; on PostgreSQL
it is then vacuumed and analysed, as the importer does after an import.
Then, at each size:

- Contacts: first rows (the screen's first page, its counts and its filter lists),
  a search, zones(), the SMS-reachable count;
- enqueue: an all-town planned send (the STOP list checked for every recipient);
- claim: ms per claim of 200 with the whole town queued;
- a campaign's message page deep in the campaign (and filtered by state);
- a live figures poll (Envois' snapshot, `status`'s figures) and `tocsin status
  --json` as its own process;
- the worker's rate with the whole town queued (simulated provider, no latency),
  between its 1,000th and 6,000th answer;
- the import of a CSV of that many residents into a fresh base and its re-import:
  time and peak RSS, each in a process of its own (`bench_import.py --memory`;
  `--no-import` leaves it out).

Each figure is printed per size with the growth ratio largest/smallest: a path that
costs what its own work costs stays near 1.0 (the enqueue, whose work is the whole
town, is printed per 1,000 recipients).

    .venv/bin/python bench/scale.py [--sizes 10000,100000,1000000] [--keep DIR]
        [--postgresql postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.bench_import import measure_memory
from bench.town import bench_context
from console.config import Config, ProviderConfig, SimulatedConfig, WorkerConfig
from console.consent.suppression import number_hasher
from console.contacts.browser import ContactBrowser
from console.context import Context
from console.demo import FIRST_NAMES, GROUPS, LAST_NAMES, OPT_IN, ZONES
from console.sending import queue
from console.sending.campaign_messages import page_messages
from console.sending.campaign_ops import queue_status
from console.sending.campaigns import Audience, CampaignRequest, create_campaign
from console.sending.providers.simulated import SimulatedProvider
from console.sending.send_queue import queue_snapshot
from console.sending.worker_main import serve
from console.text import fold
from storage.engine import CONTACT_TABLES, read_session, refresh_statistics
from storage.queries import ContactQuery, count_contacts, group_names, zones
from storage.rawsql import dialect

STOP_ENTRIES = 50_000
WORKER_FROM, WORKER_TO = 1000, 6000
WORKER_DEADLINE_S = 90.0


def _best(fn: Callable[[], Any], repeat: int = 3) -> float:
    """Seconds of the fastest of `repeat` runs (a shared machine's noise only adds)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def build_town(folder: Path, size: int, seed: int = 1789, url: str | None = None) -> Context:
    """`size` residents by bulk SQL, distributed like the demo town (in SQLite in
    `folder`, or in the PostgreSQL database at `url`)."""
    config = Config(
        provider=ProviderConfig(
            rate=100_000,
            concurrency=8,
            simulated=SimulatedConfig(latency_ms=0, failure_rate=0, undelivered_rate=0),
        ),
        worker=WorkerConfig(batch_size=200, lease_seconds=120),
    )
    ctx = bench_context(folder, url or f"sqlite:///{folder}/town.db", config)
    rng = random.Random(seed)
    db = dialect(ctx.engine)
    now = db.datetime(datetime.now(UTC))
    folded = {z: fold(z) for z in ZONES}
    names = [f"{first} {last}" for first in FIRST_NAMES for last in LAST_NAMES]
    name_keys = {name: fold(name) for name in names}
    numbers = rng.sample(range(2 * 10**8), size)
    contacts, groups, consents = [], [], []
    for i, n in enumerate(numbers, start=1):
        name, zone = rng.choice(names), rng.choice(ZONES)
        landline = rng.random() < 0.03
        prefix = str((1 if landline else 6) + n // 10**8)
        number = f"+33{prefix}{n % 10**8:08d}"
        chosen = sorted(rng.sample(GROUPS, k=rng.choice((0, 0, 1, 1, 2))))
        contacts.append(
            (
                i,
                number,
                "fixed_line" if landline else "mobile",
                not landline,
                name,
                zone,
                "".join(f",{g}" for g in chosen) + ("," if chosen else ""),
                "scale",
                name_keys[name],
                f"{name_keys[name]} {folded[zone]}",
                now,
                now,
            )
        )
        groups.extend((i, g) for g in chosen)
        for topic, (share, _source) in OPT_IN.items():
            if rng.random() < share:
                consents.append((i, topic, True, 0, now))
        if rng.random() < 0.02:
            consents.append((i, "alertes", False, 0, now))
    # INSERT OR IGNORE: the first of a resident's rows for a topic stays.
    first: dict[tuple[int, str], tuple[Any, ...]] = {}
    for consent in consents:
        first.setdefault((consent[0], consent[1]), consent)
    consents = list(first.values())
    # STOP entries: a share of the town's own mobiles, the rest numbers from elsewhere.
    hasher = number_hasher(ctx.hash_key)
    town_numbers = [c[1] for c in contacts[: min(size // 20, STOP_ENTRIES)]]
    others = [f"+3378{i:07d}" for i in range(STOP_ENTRIES - len(town_numbers))]
    stops = [(h, now) for h in dict.fromkeys(hasher(number) for number in town_numbers + others)]
    tables = (
        (
            "contact",
            "id, number, number_kind, sendable, name, zone, groups, notes, source, "
            "sort_key, search_key, created_at, updated_at",
            [(*c[:7], "", *c[7:]) for c in contacts],
        ),
        ("contact_group", "contact_id, name", groups),
        ("consent_state", "contact_id, topic, granted, event_id, updated_at", consents),
        ("suppression", "number_hash, created_at, reason", [(*s, "stop") for s in stops]),
    )
    with ctx.engine.begin() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        if db.sqlite:
            for table, columns, rows in tables:
                marks = ", ".join("?" * len(rows[0]))
                raw.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)
        else:
            with raw.cursor() as cursor:
                for table, columns, rows in tables:
                    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
                # Rows were given their ids: the sequence goes on after them.
                cursor.execute("SELECT setval('contact_id_seq', %s)", (size,))
    # What the importer does after it wrote the residents (PostgreSQL: VACUUM (ANALYZE)).
    refresh_statistics(ctx.engine, CONTACT_TABLES, size)
    return ctx


def measure_contacts(ctx: Context) -> dict[str, float]:
    def first_rows() -> None:
        browser = ContactBrowser(ctx)
        browser.next_page()
        browser.counts()
        with read_session(ctx.engine) as session:
            zones(session), group_names(session)

    opened = ContactBrowser(ctx)
    opened.next_page()
    opened.counts()

    def search() -> None:
        # As the screen does it: the base's totals are known, the search restarts.
        opened.restart(search="joel ")  # names sort apart: the walk goes far
        opened.next_page()
        opened.counts(refresh_totals=False)
        opened.restart(search="")

    def zone_list() -> None:
        with read_session(ctx.engine) as session:
            zones(session)

    def reachable() -> None:
        with read_session(ctx.engine) as session:
            count_contacts(session, ContactQuery(sendable=True))

    return {
        "contacts first rows (s)": _best(first_rows),
        "contacts search (s)": _best(search),
        "zones() (s)": _best(zone_list),
        "SMS-reachable count (s)": _best(reachable),
    }


def measure_enqueue(ctx: Context, size: int) -> tuple[int, dict[str, float]]:
    request = CampaignRequest(
        topic="alertes",
        text="Coupure d'eau demain matin",
        sender_id="Mairie",
        audience=Audience(everyone=True),
    )
    start = time.perf_counter()
    done = create_campaign(ctx, request)
    took = time.perf_counter() - start
    return done.campaign_id, {"enqueue per 1,000 recipients (s)": took * 1000 / size}


def measure_queue(ctx: Context, campaign_id: int, size: int) -> dict[str, float]:
    now = datetime.now(UTC)
    claims = []
    for _ in range(10):
        start = time.perf_counter()
        taken = queue.claim_batch(ctx.engine, "bench", now, 120, 200)
        claims.append(time.perf_counter() - start)
        queue.release(ctx.engine, "bench", taken, now, "bench")
    deep = _deep_id(ctx, campaign_id)
    return {
        "claim of 200 (ms)": statistics.median(claims) * 1000,
        "message page, deep (ms)": _best(lambda: page_messages(ctx, campaign_id, after_id=deep))
        * 1000,
        "message page, deep, by state (ms)": _best(
            lambda: page_messages(ctx, campaign_id, state="skipped", after_id=deep)
        )
        * 1000,
        "Envois poll (ms)": _best(lambda: queue_snapshot(ctx)) * 1000,
        "status figures (ms)": _best(lambda: queue_status(ctx)) * 1000,
    }


def _deep_id(ctx: Context, campaign_id: int) -> int:
    with ctx.engine.connect() as conn:
        low, high = conn.execute(
            text("SELECT min(id), max(id) FROM message WHERE campaign_id = :c"), {"c": campaign_id}
        ).one()
    return int(low + (high - low) * 0.7)


def measure_status_command(folder: Path, url: str) -> dict[str, float]:
    config = folder / "tocsin.toml"
    config.write_text(
        f'[database]\nurl = "{url}"\n[privacy]\nhash_key_file = "{folder}/key"\n',
        encoding="utf-8",
    )

    def run() -> None:
        subprocess.run(
            [sys.executable, "-m", "console", "--config", str(config), "status", "--json"],
            check=True,
            capture_output=True,
            cwd=ROOT,
        )

    return {"tocsin status --json (s)": _best(run)}


def measure_worker(ctx: Context) -> dict[str, float]:
    """Messages answered per second between the 1,000th and the 6,000th answer, with
    the rest of the town still queued behind them (or up to where the worker got in
    WORKER_DEADLINE_S: it has been seen to stop claiming with messages left)."""
    provider = SimulatedProvider(ctx.config.provider.simulated)

    async def until(count: int, deadline: float) -> tuple[int, float]:
        while (done := _answered(ctx)) < count and time.perf_counter() < deadline:
            await asyncio.sleep(0.02)
        return done, time.perf_counter()

    async def run() -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(serve(ctx, provider, "bench", stop=stop, listen=False))
        deadline = time.perf_counter() + WORKER_DEADLINE_S
        first, start = await until(WORKER_FROM, deadline)
        last, end = await until(WORKER_TO, deadline)
        stop.set()
        await task
        if last < WORKER_TO:
            print(f"  (the worker stalled at {last} answers)", flush=True)
        return (last - first) / (end - start) if end > start else 0.0

    return {"worker rate, town queued (msg/s)": asyncio.run(run())}


def _answered(ctx: Context) -> int:
    with ctx.engine.connect() as conn:
        return int(
            conn.exec_driver_sql(
                "SELECT count(*) FROM delivery_event WHERE source = 'send'"
            ).scalar_one()
        )


def run_size(
    size: int, keep: Path | None, postgresql: str | None = None, with_import: bool = True
) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix=f"tocsin-scale-{size}-", dir=keep))
    with scratch_database(postgresql) as url:
        # The import's figures are SQLite's (the bench makes its own base).
        wanted = with_import and postgresql is None
        return _run_size(size, keep, folder, url or f"sqlite:///{folder}/town.db", wanted)


@contextmanager
def scratch_database(admin_url: str | None) -> Iterator[str | None]:
    """A new PostgreSQL database made at `admin_url` and dropped after (None: SQLite)."""
    if admin_url is None:
        yield None
        return
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    scratch = f"tocsin_scale_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{scratch}"'))
    try:
        yield make_url(admin_url).set(database=scratch).render_as_string(False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
        admin.dispose()


def kept_database(admin_url: str, name: str, folder: Path) -> str:
    """The URL of the PostgreSQL database `name` at `admin_url`, kept between runs: made
    afresh (and `folder`, the town's files, emptied) unless `folder` holds a town built
    in it."""
    url = make_url(admin_url).set(database=name).render_as_string(False)
    config = folder / "tocsin.toml"
    if config.exists() and f'url = "{url}"' in config.read_text(encoding="utf-8"):
        return url
    shutil.rmtree(folder, ignore_errors=True)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return url


def measure_import(size: int) -> dict[str, float]:
    found = measure_memory(size)
    return {
        "import (s)": found["import"]["seconds"],
        # The importing process and its row checker (bench_import.measure_memory).
        "import peak RSS (MiB)": found["import"]["peak_mib"] + found["import"]["checker_peak_mib"],
        "re-import (s)": found["reimport"]["seconds"],
        "re-import peak RSS (MiB)": found["reimport"]["peak_mib"]
        + found["reimport"]["checker_peak_mib"],
    }


def _run_size(
    size: int, keep: Path | None, folder: Path, url: str, with_import: bool = True
) -> dict[str, float]:
    start = time.perf_counter()
    ctx = build_town(folder, size, url=url)
    print(f"  {size:,} residents built in {time.perf_counter() - start:.1f} s", flush=True)
    figures = measure_contacts(ctx)
    campaign_id, enqueue = measure_enqueue(ctx, size)
    figures |= enqueue
    figures |= measure_queue(ctx, campaign_id, size)
    figures |= measure_status_command(folder, url)
    figures |= measure_worker(ctx)
    ctx.engine.dispose()
    if with_import:
        figures |= measure_import(size)
    if keep is None:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--keep", type=Path, help="build the towns here and keep them")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--postgresql", metavar="ADMIN_URL", help="build each town in a scratch database there"
    )
    parser.add_argument(
        "--no-import", action="store_true", help="leave out the import's time and memory"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[int, dict[str, float]] = {}
    for size in sizes:
        print(f"town of {size:,}:", flush=True)
        results[size] = run_size(size, args.keep, args.postgresql, not args.no_import)
        for name, value in results[size].items():
            print(f"  {name:<36} {value:10.3f}", flush=True)
    first, last = sizes[0], sizes[-1]
    print()
    header = "".join(f"{s:>12,}" for s in sizes)
    print(f"{'figure':<36}{header}{f'x {last // first}':>10}{'growth':>9}")
    for name in results[first]:
        values = [results[s][name] for s in sizes]
        ratio = values[-1] / values[0] if values[0] else math.inf
        # One size only: no growth to speak of.
        grows = ratio > 0 and math.isfinite(ratio) and last > first
        exponent = math.log(ratio) / math.log(last / first) if grows else 0.0
        cells = "".join(f"{v:12.3f}" for v in values)
        print(f"{name:<36}{cells}{ratio:10.2f}{exponent:9.2f}")
    if args.json:
        args.json.write_text(json.dumps({str(k): v for k, v in results.items()}, indent=1))


if __name__ == "__main__":
    main()
