"""Benchmark: importing a town's resident CSV against phonenumbers.parse alone.

    .venv/bin/python bench/bench_import.py [--rows 100000] [--seed 1] [--repeat 1] [--keep DIR]
    .venv/bin/python bench/bench_import.py --memory [--rows 1000000]

Generates a deterministic CSV (French names, 8 quarters, groups, numbers in every
French habit, ~1% invalid, some duplicates, some landlines), then times
(a) phonenumbers.parse(n, "FR") over the same number strings and
(b) console.contacts.importer.import_contacts into a fresh, migrated SQLite base,
and prints both, the ratio b/a against the target (<= 1.5) and the peak RSS. With
--repeat N the two alternate N times and the best of each counts.

--memory measures the peak RSS (ru_maxrss) of an import into a fresh base and of a
re-import of the same file into it, each in its own process (a child's ru_maxrss
starts from its parent's peak, so the CSV is written by a third one), with their
times; and the peak of the child process that checks a big file's rows (its VmHWM,
sampled every 50 ms), added to it (both peaks summed, though they need not
coincide).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import phonenumbers

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from console.clock import SystemClock
from console.config import Config
from console.contacts.importer import ImportOptions, ImportReport, import_contacts
from console.context import Context, sync_topics
from console.roles import Role
from storage.engine import make_engine
from storage.migrate import upgrade

TARGET = 1.5

FIRST_NAMES = (  # noqa: SIM905
    "Jean Marie Pierre Michel André Philippe Nathalie Isabelle Sylvie Catherine Françoise "
    "Élodie Chloé Léa Manon Camille Inès Zoé Noémie Hélène Gaëlle Loïc Jérôme Benoît "
    "François Gérard Thérèse Cécile Agnès Amélie Raphaël Maël Anaïs Joël Noël Stéphane"
).split()
LAST_NAMES = (  # noqa: SIM905
    "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent "
    "Lefèvre Michel Garcia David Bertrand Roux Vincent Fournier Morel Girard André "
    "Lefebvre Mercier Dupont Lambert Bonnet François Martinez Legrand Garnier Faure "
    "Rousseau Blanc Guérin Muller Henry Roussel Nicolas Perrin Morin Mathieu Clément "
    "Gauthier Dumont Lopez Fontaine Chevalier Robin Masson Sanchez Gérard Nguyen Boyer "
    "Denis Lemaire Duval Joly Gautier Roger Roche Roy Noël Meyer Lucas Meunier Jean Pérez "
    "Marchand Dufour Blanchard"
).split()
ZONES = (
    "Centre-bourg",
    "Les Prés",
    "La Gare",
    "Hameau de Sainte-Agnès",
    "Zone artisanale",
    "Le Moulin",
    "Les Écoles",
    "Côte Saint-Jean",
)
GROUPS = ("parents", "aînés", "commerçants", "associations", "agriculteurs", "élus")


def _habit(rng: random.Random, nsn: str) -> str:
    """One French way of writing the number whose national significant part is nsn."""
    pairs = " ".join([nsn[0], *(nsn[i : i + 2] for i in range(1, 9, 2))])
    dotted = ".".join(nsn[i : i + 2] for i in range(1, 9, 2))
    choice = rng.randrange(8)
    if choice == 0:
        return f"0{nsn}"
    if choice == 1:
        return f"0{pairs}"
    if choice == 2:
        return f"0{nsn[0]}.{dotted}"
    if choice == 3:
        return f"+33 {pairs}"
    if choice == 4:
        return f"+33 (0){pairs}"
    if choice == 5:
        return f"0033{nsn}"
    if choice == 6:
        return f"33 {pairs}"
    return f"0{nsn[0]}-{'-'.join(nsn[i : i + 2] for i in range(1, 9, 2))}"


def generate(path: Path, rows: int, seed: int) -> list[str]:
    """Write the CSV (cp1252, ';', French headers); return the number cells."""
    rng = random.Random(seed)
    numbers: list[str] = []
    lines = ["Nom;Prénom;Téléphone portable;Quartier;Groupes;Remarques"]
    used: list[str] = []
    for _ in range(rows):
        roll = rng.random()
        if roll < 0.01:
            number = rng.choice(("06 12 34", "0612345678901", "n/a", "07 00 00 00 0", "+33 6"))
        elif roll < 0.015 and used:
            # The same resident typed twice, in another habit.
            number = _habit(rng, rng.choice(used))
        else:
            if roll < 0.05:
                prefix = rng.choice(("1", "2", "3", "4", "5"))
                prefix += rng.choice("12345678") if prefix in "24" else rng.choice("0123456789")
                nsn = f"{prefix}{rng.randrange(10**7):07d}"  # landline
            else:
                # Metropolitan mobile ranges (069x belongs to the overseas regions).
                prefix = rng.choice(("60", "61", "62", "64", "65", "66", "67", "68", "75", "76"))
                nsn = f"{prefix}{rng.randrange(10**7):07d}"
            used.append(nsn)
            number = _habit(rng, nsn)
        numbers.append(number)
        groups = ",".join(rng.sample(GROUPS, rng.choice((0, 1, 1, 2))))
        note = "" if rng.random() < 0.9 else f'Appeler avant {rng.randrange(8, 19)}h; "portail"'
        cells = [
            rng.choice(LAST_NAMES).upper(),
            rng.choice(FIRST_NAMES),
            number,
            rng.choice(ZONES),
            groups,
            note,
        ]
        lines.append(";".join(_quote(cell) for cell in cells))
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))
    return numbers


def _quote(cell: str) -> str:
    if any(c in cell for c in ';"\n'):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def time_phonenumbers(numbers: list[str]) -> float:
    start = time.perf_counter()
    for number in numbers:
        # A bare try costs nothing when nothing is raised; contextlib.suppress would
        # add a call per number to the baseline.
        try:  # noqa: SIM105
            phonenumbers.parse(number, "FR")
        except phonenumbers.NumberParseException:
            pass
    return time.perf_counter() - start


def fresh_base(work: Path) -> None:
    """An empty, migrated SQLite base in work/, as `tocsin db init` leaves it."""
    for leftover in ("bench.db", "bench.db-wal", "bench.db-shm", "bench.db-waiters"):
        (work / leftover).unlink(missing_ok=True)
    ctx = _context(work)
    upgrade(ctx.engine)
    sync_topics(ctx.engine, ctx.config)
    ctx.engine.dispose()


def time_import(work: Path, csv_path: Path) -> tuple[float, ImportReport]:
    """One import into the base in work/."""
    ctx = _context(work)
    gc.collect()
    start = time.perf_counter()
    report = import_contacts(ctx, csv_path, ImportOptions())
    elapsed = time.perf_counter() - start
    ctx.engine.dispose()
    return elapsed, report


def _context(work: Path) -> Context:
    return Context(
        engine=make_engine(f"sqlite:///{work / 'bench.db'}"),
        config=Config(),
        clock=SystemClock(),
        operator="bench",
        role=Role.ADMIN,
        hash_key=b"0123456789abcdef" * 4,
    )


def child(what: str, work: Path, rows: int, seed: int) -> None:
    """One step of --memory, in its own process; prints its figures as JSON."""
    if what == "generate":
        generate(work / "habitants.csv", rows, seed)
        # The base exists before the import, as a town's does: the import's process
        # is not the one that ran the migrations.
        fresh_base(work)
        return
    children = ChildrenPeak()
    # "import" into the fresh base, then "reimport" of the same file into it.
    elapsed, report = time_import(work, work / "habitants.csv")
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "peak_mib": _peak_mib(),
                "checker_peak_mib": children.mib(),
                "counts": report.to_json()["counts"],
            }
        )
    )


def _peak_mib() -> float:
    """This process's own peak RSS: VmHWM belongs to its memory map, made at exec, where
    ru_maxrss starts from the parent's (bench/scale.py holds a whole town)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class ChildrenPeak:
    """The peak RSS of this process's children (the row checker): VmHWM, its own
    memory map's high-water mark, read every 50 ms while it lives. (ru_maxrss of
    the children would count this process's RSS when it started the child.)"""

    def __init__(self) -> None:
        self.peaks: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        me = str(os.getpid())
        while not self._stop.wait(0.05):
            for stat in Path("/proc").glob("[0-9]*/stat"):
                try:
                    fields = stat.read_text().rsplit(")", 1)[1].split()
                    if fields[1] != me:  # the parent's pid
                        continue
                    status = (stat.parent / "status").read_text()
                except (OSError, IndexError):
                    continue
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        pid = int(stat.parent.name)
                        peak = int(line.split()[1]) / 1024
                        self.peaks[pid] = max(self.peaks.get(pid, 0.0), peak)

    def mib(self) -> float:
        self._stop.set()
        self._thread.join()
        return max(self.peaks.values(), default=0.0)


def measure_memory(rows: int, seed: int = 1789) -> dict[str, dict[str, Any]]:
    """Time and peak RSS of an import into a fresh base and of a re-import of the same
    file, each in a process of its own (bench/scale.py prints them per size too)."""
    with tempfile.TemporaryDirectory(prefix="tocsin-bench-") as tmp:
        results = {}
        for what in ("generate", "import", "reimport"):
            command = [sys.executable, __file__, "--child", what, tmp, "--rows", str(rows)]
            done = subprocess.run(
                [*command, "--seed", str(seed)],
                check=True,
                capture_output=True,
                text=True,
            )
            if what != "generate":
                results[what] = json.loads(done.stdout)
    return results


def memory(rows: int, seed: int) -> int:
    results = measure_memory(rows, seed)
    print(f"rows:                     {rows}")
    for what, label in (("import", "import (fresh base)"), ("reimport", "re-import (same file)")):
        found = results[what]
        print(
            f"{label + ':':<26}{found['seconds']:.2f} s, peak RSS {found['peak_mib']:.0f} MiB"
            f" + {found['checker_peak_mib']:.0f} MiB the row checker's"
            f" = {found['peak_mib'] + found['checker_peak_mib']:.0f} MiB"
        )
    print(f"counts (re-import):       {results['reimport']['counts']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--residents", "--rows", dest="rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="write the CSV and base here and keep them")
    parser.add_argument("--profile", action="store_true", help="cProfile the import")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="best of N alternated runs of each (the machine is shared)",
    )
    parser.add_argument("--memory", action="store_true", help="peak RSS, each run in a process")
    parser.add_argument("--child", nargs=2, metavar=("STEP", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], Path(args.child[1]), args.rows, args.seed)
        return 0
    if args.memory:
        return memory(args.rows, args.seed)
    with tempfile.TemporaryDirectory(prefix="tocsin-bench-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        csv_path = work / "habitants.csv"
        numbers = generate(csv_path, args.rows, args.seed)
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
        # Alternated rounds, the best of each kind: a load that comes and goes on a
        # shared machine then weighs on both sides of the ratio alike.
        parse_times: list[float] = []
        runs = []
        for _ in range(args.repeat):
            parse_times.append(time_phonenumbers(numbers))
            fresh_base(work)
            if args.profile:
                profiler.enable()
            runs.append(time_import(work, csv_path))
            if args.profile:
                profiler.disable()
        if args.profile:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    parse_time = min(parse_times)
    import_time, report = min(runs, key=lambda run: run[0])
    ratio = import_time / parse_time
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    counts = report.to_json()["counts"]
    print(f"rows:                     {args.rows}")
    print(f"(a) phonenumbers.parse:   {parse_time:.3f} s")
    print(f"(b) import_contacts:      {import_time:.3f} s")
    print(f"ratio b/a:                {ratio:.2f} (target <= {TARGET})")
    print(f"peak RSS:                 {peak_kib / 1024:.0f} MiB")
    print(f"counts:                   {counts}")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
