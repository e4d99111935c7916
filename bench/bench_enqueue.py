"""Enqueue of a 50,000-recipient campaign, as a ratio to a plain bulk insert of the same
message rows in the same run (target: 2 or less).

    .venv/bin/python bench/bench_enqueue.py [--recipients 50000] [--database URL]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import delete, insert, select
from sqlmodel import col

from console.campaigns import Audience, CampaignRequest, create_campaign
from console.clock import SystemClock
from console.config import Config, DatabaseConfig, PrivacyConfig
from console.context import Context, load_hash_key, sync_topics
from console.demo import resident_rows
from console.importer import ImportOptions, import_contacts
from console.roles import Role
from storage.engine import make_engine, write_session
from storage.migrate import upgrade
from storage.models import Message


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=50_000)
    parser.add_argument("--database", help="default: a temporary SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tocsin-bench-") as folder:
        url = args.database or f"sqlite:///{folder}/bench.db"
        config = Config(database=DatabaseConfig(url=url),
                        privacy=PrivacyConfig(hash_key_file=f"{folder}/key"))
        engine = make_engine(url)
        upgrade(engine)
        sync_topics(engine, config)
        ctx = Context(engine=engine, config=config, clock=SystemClock(), operator="bench",
                      role=Role.ADMIN, hash_key=load_hash_key(engine, Path(f"{folder}/key")))
        csv_path = Path(folder) / "residents.csv"
        csv_path.write_text("nom;telephone\n" + "".join(
            f"{name};{number}\n" for name, number, *_ in resident_rows(args.recipients, 7)),
            encoding="utf-8")
        import_contacts(ctx, csv_path, ImportOptions())

        start = time.perf_counter()
        result = create_campaign(ctx, CampaignRequest(
            topic="alertes", text="Bench", sender_id="MAIRIE",
            audience=Audience(everyone=True), kind="emergency"))
        enqueue = time.perf_counter() - start

        with write_session(engine) as session:
            rows = [dict(r._mapping) for r in session.execute(
                select(Message.__table__).where(  # type: ignore[attr-defined]
                    col(Message.campaign_id) == result.campaign_id))]
            session.execute(delete(Message).where(col(Message.campaign_id) ==
                                                  result.campaign_id))
        for row in rows:
            row.pop("id")
        start = time.perf_counter()
        with write_session(engine) as session:
            session.execute(insert(Message.__table__), rows)  # type: ignore[attr-defined]
        bulk = time.perf_counter() - start
        engine.dispose()

    total = sum(result.counts.values())
    print(f"recipients:          {total:,} ({result.counts['queued']:,} queued, "
          f"{result.counts['skipped']:,} skipped)")
    print(f"enqueue (campaign):  {enqueue:.3f} s")
    print(f"plain bulk insert:   {bulk:.3f} s")
    print(f"ratio:               {enqueue / bulk:.2f} (target <= 2)")


if __name__ == "__main__":
    main()
