"""Benchmark: the consent audit on a real-sized town.

    .venv/bin/python bench/bench_consent.py [--residents 100000] [--events 1000000] [--keep DIR]

Builds a town (residents imported with consents to the five topics for about half of
them, a few hundred STOPs), then times, each against a baseline in the same process:
(a) the coverage matrix (topic x state, reachable share) / one GROUP BY count of
    consent_state; the issue's target is < 0.3 s for 100,000 residents x 5 topics;
(b) the register PDF of every resident for one topic / the same rows written as CSV;
    target < 30 s and < 300 MB (peak resident memory of the process is printed);
(c) the point-in-time replay of 1,000,000 consent events (added to the ledger in
    bulk) / fetching the same rows with one plain SELECT; target < 5 s.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select, text

from bench.town import bench_context, import_residents
from console.consent.coverage import coverage
from console.consent.replay import state_at
from console.consent.reports import write_register_csv, write_register_pdf
from console.contacts.importer import ImportOptions, import_contacts
from console.sending.inbound import handle_inbound
from console.sending.providers.base import InboundSms
from storage.models import ConsentEvent, ConsentState


def timed(label: str, fn: object) -> float:
    started = time.perf_counter()
    fn()  # type: ignore[operator]
    took = time.perf_counter() - started
    print(f"  {label}: {took:.3f} s")
    return took


def peak_mb() -> float:
    """This process's peak resident memory. VmHWM, not getrusage: Linux carries the
    parent's peak over fork and exec into ru_maxrss."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(folder: Path, kind: str) -> tuple[float, float]:
    """Run one register in a fresh process: its peak memory is the report's alone."""
    import subprocess

    out = subprocess.run(
        [sys.executable, __file__, "--register", kind, "--keep", str(folder)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    print(f"  {kind.upper()}: {float(out[0]):.3f} s, peak RSS {float(out[1]):.0f} MB")
    return float(out[0]), float(out[1])


def register_only(folder: Path, kind: str) -> None:
    ctx = bench_context(folder, f"sqlite:///{folder / 'town.db'}")
    started = time.perf_counter()
    if kind == "pdf":
        write_register_pdf(ctx, folder / "registre.pdf", "evenements")
    else:
        with (folder / "registre.csv").open("w", encoding="utf-8") as out:
            write_register_csv(ctx, out, "evenements")
    print(time.perf_counter() - started, peak_mb())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--register", choices=["csv", "pdf"], help=argparse.SUPPRESS)
    parser.add_argument("--residents", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--keep", help="build the town in this folder and keep it")
    args = parser.parse_args()
    if args.register:
        register_only(Path(args.keep), args.register)
        return
    folder = Path(args.keep or tempfile.mkdtemp(prefix="tocsin-bench-consent-"))
    folder.mkdir(parents=True, exist_ok=True)
    ctx = bench_context(folder, f"sqlite:///{folder / 'town.db'}")
    print(f"town: {args.residents} residents in {folder}")
    import_residents(ctx, folder, args.residents, zones=8)
    lines = (folder / "residents.csv").read_text(encoding="utf-8").splitlines()[1:]
    numbers = [line.split(";")[1] for line in lines]
    rng = random.Random(11)
    for topic in ctx.config.topics:
        chosen = [n for n in numbers if rng.random() < 0.5]
        path = folder / f"consent-{topic}.csv"
        path.write_text("telephone\n" + "\n".join(chosen) + "\n", encoding="utf-8")
        import_contacts(ctx, path, ImportOptions(consent_topic=topic, consent_source="paper_form"))
    for number in rng.sample(numbers, 300):
        handle_inbound(ctx, InboundSms(number, "", "STOP"), "bench")

    print("(a) coverage matrix, 5 alternated rounds (the first hashes every number)")
    ratios, took = [], []
    state: object = ConsentState

    def baseline_a() -> None:
        with ctx.engine.connect() as conn:
            conn.execute(
                select(state.topic, state.granted, func.count()).group_by(  # type: ignore[attr-defined]
                    state.topic,
                    state.granted,  # type: ignore[attr-defined]
                )
            ).all()

    for _ in range(5):
        base = timed("GROUP BY count", baseline_a)
        mine = timed("coverage()", lambda: coverage(ctx))
        ratios.append(mine / base)
        took.append(mine)
    print(f"  coverage: best {min(took):.3f} s (target < 0.3 s), x{min(ratios):.1f} the baseline")
    timed("coverage(by_zone=True)", lambda: coverage(ctx, by_zone=True))

    print("(b) register of every resident for one topic, each in a process of its own")
    base, base_mb = _child(folder, "csv")
    mine, mine_mb = _child(folder, "pdf")
    pdf_path = folder / "registre.pdf"
    print(
        f"  PDF: {mine:.1f} s (target < 30 s), x{mine / base:.1f} the CSV; "
        f"{pdf_path.stat().st_size / 1e6:.1f} MB file; peak RSS {mine_mb:.0f} MB against "
        f"{base_mb:.0f} MB for the CSV (target < 300 MB)"
    )

    print(f"(c) point-in-time replay of {args.events:,} events")
    with ctx.engine.begin() as conn:
        start = int(conn.execute(select(func.max(ConsentEvent.seq))).scalar_one() or 0)  # type: ignore[arg-type]
        already = int(conn.execute(text("SELECT count(*) FROM consent_event")).scalar_one())
        to_add = max(0, args.events - already)
        at = datetime(2025, 1, 1, tzinfo=UTC)
        topics = list(ctx.config.topics)
        batch = []
        for i in range(to_add):
            batch.append(
                {
                    "seq": start + i + 1,
                    "contact_id": rng.randint(1, args.residents),
                    "topic": topics[i % len(topics)],
                    "action": "grant" if rng.random() < 0.7 else "withdraw",
                    "source": "paper_form",
                    "proof_ref": "",
                    "text_version": "v1",
                    "operator": "bench",
                    "occurred_at": at + timedelta(seconds=i),
                    "recorded_at": at + timedelta(seconds=i),
                    "prev_hash": "",
                    "hash": "",
                }
            )
            if len(batch) == 50_000:
                conn.execute(insert(ConsentEvent), batch)
                batch = []
        if batch:
            conn.execute(insert(ConsentEvent), batch)
    print(f"  the ledger holds {already + to_add:,} events (the chain is not linked: bench only)")
    event: object = ConsentEvent

    def baseline_c() -> None:
        with ctx.engine.connect() as conn:
            conn.execute(
                select(event.contact_id, event.topic, event.action, event.occurred_at)  # type: ignore[attr-defined]
            ).all()

    when = datetime.now(UTC)
    base = timed("plain SELECT of every event", baseline_c)
    mine = timed("state_at()", lambda: state_at(ctx.engine, when))
    print(f"  replay: {mine:.2f} s (target < 5 s), x{mine / base:.1f} the plain SELECT")


if __name__ == "__main__":
    main()
