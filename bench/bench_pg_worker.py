"""One worker's rate on PostgreSQL against SQLite, on the same machine, in the same run.

A town of each size is built by bulk SQL (bench/scale.py) into a SQLite file and into
a scratch PostgreSQL database, the whole town is enqueued (an all-town planned
send), and one worker sends to the simulated provider with no latency: its rate is
the number of answers committed between the 1,000th and the 9,000th (`--window`), the
rest of the town still queued behind them. Rounds alternate SQLite and PostgreSQL so that a slow
spell of a shared machine hits both; each round prints both rates and their ratio
(target: PostgreSQL >= 1.0x SQLite), then each database's rate at the largest size
over its rate at the smallest (target: >= 0.9 with 1,000,000 queued).

    .venv/bin/python bench/bench_pg_worker.py \\
        --postgresql postgresql://postgres@127.0.0.1:5432/postgres \\
        [--sizes 10000,1000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import scale
from bench.scale import build_town, measure_enqueue, measure_worker, scratch_database


def one_rate(size: int, admin_url: str | None) -> float:
    """Build, enqueue and measure one town (SQLite when `admin_url` is None)."""
    with (
        tempfile.TemporaryDirectory(prefix="tocsin-pgw-") as tmp,
        scratch_database(admin_url) as url,
    ):
        folder = Path(tmp)
        start = time.perf_counter()
        ctx = build_town(folder, size, url=url or f"sqlite:///{folder}/town.db")
        measure_enqueue(ctx, size)
        built = time.perf_counter() - start
        rate = measure_worker(ctx)["worker rate, town queued (msg/s)"]
        ctx.engine.dispose()
    name = "PostgreSQL" if admin_url else "SQLite"
    print(
        f"    {name:<10} {size:>9,} queued: {rate:8,.0f} msg/s (built in {built:.0f} s)", flush=True
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgresql", metavar="ADMIN_URL", required=True)
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--window",
        default="1000,9000",
        help="the answers between which the rate is measured (smallest size above the end)",
    )
    args = parser.parse_args()
    scale.WORKER_FROM, scale.WORKER_TO = (int(n) for n in args.window.split(","))
    sizes = [int(s) for s in args.sizes.split(",")]
    rates: dict[tuple[str, int], list[float]] = {}
    for number in range(1, args.rounds + 1):
        print(f"round {number}:", flush=True)
        for size in sizes:
            # Alternate which database goes first from one round to the next.
            order = (None, args.postgresql) if number % 2 else (args.postgresql, None)
            got = {url is not None: one_rate(size, url) for url in order}
            rates.setdefault(("sqlite", size), []).append(got[False])
            rates.setdefault(("pg", size), []).append(got[True])
            print(f"    PostgreSQL / SQLite at {size:,}: {got[True] / got[False]:.2f}", flush=True)
    print()
    print(
        f"{'median of ' + str(args.rounds) + ' rounds':<28}" + "".join(f"{s:>12,}" for s in sizes)
    )
    for key, label in (("sqlite", "SQLite (msg/s)"), ("pg", "PostgreSQL (msg/s)")):
        print(f"{label:<28}" + "".join(f"{statistics.median(rates[key, s]):12,.0f}" for s in sizes))
    ratios = [
        statistics.median(p / q for p, q in zip(rates["pg", s], rates["sqlite", s], strict=True))
        for s in sizes
    ]
    print(
        f"{'PostgreSQL / SQLite':<28}"
        + "".join(f"{r:12.2f}" for r in ratios)
        + "   (target >= 1.0)"
    )
    if len(sizes) > 1:
        first, last = sizes[0], sizes[-1]
        for key, label in (("sqlite", "SQLite"), ("pg", "PostgreSQL")):
            growth = statistics.median(rates[key, last]) / statistics.median(rates[key, first])
            print(f"{label} at {last:,} / at {first:,}: {growth:.2f}   (target >= 0.9)")


if __name__ == "__main__":
    main()
