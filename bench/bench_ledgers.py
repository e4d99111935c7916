"""Benchmark: what keyed chains, `audit verify` and backups cost on a real-sized town.

    .venv/bin/python bench/bench_ledgers.py [--residents 100000] [--url URL] [--keep DIR]

Builds a town (residents imported with a consent per topic for some), then times,
each against a baseline run in the same process:
(a) linking 200,000 consent events: HMAC-SHA256 under the chain key / plain SHA-256;
(b) `audit verify` (both chains, the consent state and the suppression list
    re-derived) / reading the same rows with one plain SELECT each;
(c) `db backup` / the same SELECTs written to a gzip'd file as JSON lines without
    the snapshot or the HMAC; and `db restore` into a new database / the bare inserts.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select

from bench.town import bench_context, import_residents
from console.audit import verify_chains
from console.backup import backup_database, restore_database
from console.config import Config, DatabaseConfig, PrivacyConfig
from console.consent.integrity import check_consent_state, check_suppression
from console.contacts.importer import ImportOptions, import_contacts
from console.roles import Role
from storage.backup import data_tables
from storage.chain import derive_chain_key, legacy_link_hash, link_mac
from storage.engine import make_engine
from storage.migrate import upgrade


def timed(label: str, fn: object) -> float:
    started = time.perf_counter()
    fn()  # type: ignore[operator]
    took = time.perf_counter() - started
    print(f"  {label}: {took:.3f} s")
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--residents", type=int, default=100_000)
    parser.add_argument("--keep", help="build the town in this folder and keep it")
    args = parser.parse_args()
    folder = Path(args.keep or tempfile.mkdtemp(prefix="tocsin-bench-ledgers-"))
    folder.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{folder / 'town.db'}"
    ctx = bench_context(folder, url)
    print(f"town: {args.residents} residents in {folder}")
    import_residents(ctx, folder, args.residents, zones=8)
    numbers = (folder / "residents.csv").read_text(encoding="utf-8").splitlines()[1:]
    rng = random.Random(3)
    for topic in ("evenements", "travaux", "infos"):
        chosen = [line.split(";")[1] for line in numbers if rng.random() < 0.5]
        path = folder / f"consent-{topic}.csv"
        path.write_text("telephone\n" + "\n".join(chosen) + "\n", encoding="utf-8")
        import_contacts(ctx, path, ImportOptions(consent_topic=topic, consent_source="paper_form"))

    print("(a) linking 200,000 entries, 5 alternated rounds each")
    fields = {"seq": 1, "contact_id": 12, "topic": "infos", "action": "grant", "source": "x"}
    key = derive_chain_key(ctx.hash_key, "consent")
    zero = "0" * 64
    ratios = []
    for _ in range(5):
        base = timed(
            "plain SHA-256", lambda: [legacy_link_hash(zero, fields) for _ in range(40_000)]
        )
        keyed = timed("HMAC-SHA256", lambda: [link_mac(key, zero, fields) for _ in range(40_000)])
        ratios.append(keyed / base)
    print(f"  median ratio {statistics.median(ratios):.2f}")

    print("(b) audit verify")
    read = ("consent_event", "audit_entry", "consent_state", "suppression")
    tables = [t for t in data_tables() if t.name in read]

    def plain_reads() -> None:
        with ctx.engine.connect() as conn:
            for table in tables:
                conn.execute(select(table)).all()

    def verify() -> None:
        results = verify_chains(ctx.engine)
        assert all(not p for _, p in results.values()), results
        assert not check_consent_state(ctx.engine).problems
        assert not check_suppression(ctx.engine).problems

    base = timed("plain SELECT of the same tables", plain_reads)
    full = timed("verify (chains + consent state + suppression)", verify)
    print(f"  ratio {full / base:.2f}")

    print("(c) backup and restore")
    bare_file = folder / "bare.jsonl.gz"

    def bare_dump() -> None:
        with ctx.engine.connect() as conn, gzip.open(bare_file, "wt", encoding="utf-8") as out:
            for table in data_tables():
                for row in conn.execute(select(table)):
                    out.write(json.dumps(list(row), default=str) + "\n")

    backup = folder / "town.tocsin-backup"
    base = timed("bare dump (SELECT, JSON lines, gzip)", bare_dump)
    took = timed("tocsin db backup", lambda: backup_database(ctx, backup))
    print(f"  ratio {took / base:.2f}  ({backup.stat().st_size / 1e6:.1f} MB)")

    bare_url = f"sqlite:///{folder / 'bare.db'}"
    bare = make_engine(bare_url)
    upgrade(bare)

    def bare_load() -> None:
        with ctx.engine.connect() as source, bare.begin() as target:
            for table in data_tables():
                rows = [dict(r._mapping) for r in source.execute(select(table))]
                if rows:
                    target.execute(table.delete())
                    for i in range(0, len(rows), 5000):
                        target.execute(insert(table), rows[i : i + 5000])

    target = Config(
        database=DatabaseConfig(url=f"sqlite:///{folder / 'restored.db'}"),
        privacy=PrivacyConfig(hash_key_file=str(folder / "key")),
    )
    base = timed("bare copy (SELECT then INSERT, one transaction)", bare_load)
    took = timed("tocsin db restore", lambda: restore_database(target, backup, role=Role.ADMIN))
    print(f"  ratio {took / base:.2f}")


if __name__ == "__main__":
    main()
