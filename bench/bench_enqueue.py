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

from bench.town import bench_context, import_residents
from console.sending.campaigns import Audience, CampaignRequest, create_campaign
from storage.engine import write_session
from storage.models import Message


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--residents", "--recipients", dest="recipients", type=int, default=50_000)
    parser.add_argument("--database", help="default: a temporary SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tocsin-bench-") as folder:
        url = args.database or f"sqlite:///{folder}/bench.db"
        ctx = bench_context(Path(folder), url)
        engine = ctx.engine
        import_residents(ctx, Path(folder), args.recipients)

        start = time.perf_counter()
        result = create_campaign(
            ctx,
            CampaignRequest(
                topic="alertes",
                text="Bench",
                sender_id="MAIRIE",
                audience=Audience(everyone=True),
                kind="emergency",
            ),
        )
        enqueue = time.perf_counter() - start

        with write_session(engine) as session:
            rows = [
                dict(r._mapping)
                for r in session.execute(
                    select(Message.__table__).where(  # type: ignore[attr-defined]
                        col(Message.campaign_id) == result.campaign_id
                    )
                )
            ]
            session.execute(delete(Message).where(col(Message.campaign_id) == result.campaign_id))
        for row in rows:
            row.pop("id")
        start = time.perf_counter()
        with write_session(engine) as session:
            session.execute(insert(Message.__table__), rows)  # type: ignore[attr-defined]
        bulk = time.perf_counter() - start
        engine.dispose()

    total = sum(result.counts.values())
    print(
        f"recipients:          {total:,} ({result.counts['queued']:,} queued, "
        f"{result.counts['skipped']:,} skipped)"
    )
    print(f"enqueue (campaign):  {enqueue:.3f} s")
    print(f"plain bulk insert:   {bulk:.3f} s")
    print(f"ratio:               {enqueue / bulk:.2f} (target <= 2)")


if __name__ == "__main__":
    main()
