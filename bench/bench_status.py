"""`tocsin status --json` as scripts and monitoring run it: a process of its own, on a
town of 10k, 100k and 1M residents with an all-town send queued.

Each figure is the best of `--runs` runs (a shared machine's noise only adds), and
is printed with, from the same run:

- the interpreter alone (`python -c pass`);
- the floor: a process that only loads what `status` cannot do without (the
  pydantic config: a config error must still be the one line and exit 2 it is);
- the whole start-up, as any verb makes it (a Context: SQLAlchemy, the ORM, the
  models, the hash chains, phonenumbers), then the same figures;
- with `--before DIR`, `tocsin status --json` run from the tree in DIR (a checkout of
  the code before, with this interpreter and its packages).

Python's compiled files are written and used, as an installed Tocsin has them (a
first run, not counted, writes them even where PYTHONDONTWRITEBYTECODE is set:
the project's own modules compiled at every start add about 0.03 s).

and the growth from the smallest town to the largest (1.0: the same at any size).

    .venv/bin/python bench/bench_status.py [--sizes 10000,100000,1000000]
        [--towns DIR] [--runs 9] [--before DIR] [--postgresql ADMIN_URL]

`--towns DIR` keeps each town in DIR/<size>/ and uses it again next time (a town of
1,000,000 takes about a minute and a half to build and queue); with `--postgresql`,
its database (tocsin_status_<size>) is kept too, and used again while DIR/<size>/
names it.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scale import build_town, kept_database, measure_enqueue, scratch_database

FLOOR = "import console.config"
WHOLE_START_UP = """
import sys
from console.cli import _configuration
from console.cli.common import context, print_json
from console.sending.campaign_ops import queue_status
print_json(queue_status(context(_configuration(sys.argv[1]))))
"""


def town(folder: Path, size: int, url: str | None = None) -> Path:
    """The config of a town of `size` with an all-town send queued (built if new), in
    SQLite or in the PostgreSQL database at `url`."""
    config = folder / "tocsin.toml"
    if not config.exists():
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        ctx = build_town(folder, size, url=url)
        measure_enqueue(ctx, size)
        ctx.engine.dispose()
        config.write_text(
            f'[database]\nurl = "{url or f"sqlite:///{folder}/town.db"}"\n'
            f'[privacy]\nhash_key_file = "{folder}/key"\n',
            encoding="utf-8",
        )
        print(f"  built and queued in {time.perf_counter() - start:.0f} s", flush=True)
    return config


def timed(argv: list[str], runs: int, cwd: Path = ROOT) -> tuple[float, float]:
    """Best and median wall time of `runs` runs of `argv`, in seconds."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(argv, check=True, capture_output=True, cwd=cwd, env=env)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, cwd=cwd, env=env)
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def measure(config: Path, runs: int, before: Path | None) -> dict[str, tuple[float, float]]:
    python = sys.executable
    status = [python, "-m", "console", "--config", str(config), "status", "--json"]
    figures = {
        "interpreter alone": timed([python, "-c", "pass"], runs),
        "floor (the config)": timed([python, "-c", FLOOR], runs),
        "whole start-up, then the figures": timed(
            [python, "-c", WHOLE_START_UP, str(config)], runs
        ),
        "tocsin status --json": timed(status, runs),
    }
    if before is not None:
        figures["tocsin status --json, before"] = timed(status, runs, cwd=before)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", "--residents", default="10000,100000,1000000")
    parser.add_argument("--towns", type=Path, help="keep the towns here, and use them again")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--before", type=Path, help="a tree of the code before, to compare")
    parser.add_argument(
        "--postgresql", metavar="ADMIN_URL", help="each town in a scratch database there"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    towns = args.towns or Path(tempfile.mkdtemp(prefix="tocsin-status-"))
    results: dict[int, dict[str, tuple[float, float]]] = {}
    for size in sizes:
        print(f"town of {size:,}:", flush=True)
        if args.postgresql and args.towns:
            url = kept_database(args.postgresql, f"tocsin_status_{size}", towns / str(size))
            results[size] = measure(town(towns / str(size), size, url), args.runs, args.before)
        else:
            with scratch_database(args.postgresql) as url:
                if url is not None:
                    shutil.rmtree(towns / str(size), ignore_errors=True)  # its database goes
                config = town(towns / str(size), size, url)
                results[size] = measure(config, args.runs, args.before)
        figures = results[size]
        for name, (best, median) in figures.items():
            print(f"  {name:<34} best {best:6.3f} s  median {median:6.3f} s", flush=True)
        status = figures["tocsin status --json"][0]
        ratios = [
            f"status / {name}: {status / figures[name][0]:.2f}"
            for name in (
                "floor (the config)",
                "whole start-up, then the figures",
                "tocsin status --json, before",
            )
            if name in figures
        ]
        print("  " + "   ".join(ratios), flush=True)
    if len(sizes) > 1:
        first, last = sizes[0], sizes[-1]
        print()
        print(f"{'best of each (s)':<34}" + "".join(f"{s:>12,}" for s in sizes) + "    growth")
        for name in results[first]:
            values = [results[s][name][0] for s in sizes]
            exponent = math.log(values[-1] / values[0]) / math.log(last / first)
            cells = "".join(f"{v:12.3f}" for v in values)
            print(f"{name:<34}{cells}{exponent:10.2f}")
    if args.towns is None:
        shutil.rmtree(towns)


if __name__ == "__main__":
    main()
