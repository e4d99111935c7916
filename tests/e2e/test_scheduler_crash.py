"""The scheduler killed with SIGKILL while it materialises occurrences, restarted each
time: every occurrence becomes exactly one campaign, whole (never half enqueued),
on SQLite and PostgreSQL.

The scheduler runs in a child process on a simulated clock (five minutes a tick over
twelve hours of quarter-hourly alert schedules, 50 residents each); the child resumes
from the last campaign it finds, so each restart re-tries what it may have made.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import col

from console.clock import FrozenClock
from console.config import Config
from console.contacts.service import ContactInput, add_contact
from console.planning.service import PlanRequest, add_plan
from console.sending.campaigns import Audience
from storage.engine import read_session
from storage.models import Campaign, Message, Occurrence
from tests.conftest import TEST_KEY, make_context

pytestmark = pytest.mark.e2e
START = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)
END = START + timedelta(hours=12)
SCHEDULES = 6
RESIDENTS = 50
KILLS = 8

CHILD = """
import sys
from datetime import datetime, timedelta
from sqlalchemy import func, select
from console.clock import FrozenClock
from console.config import Config
from console.context import Context
from console.planning import scheduler
from console.roles import Role
from storage.engine import make_engine, read_session
from storage.models import Campaign

url, key, start, end = sys.argv[1], bytes.fromhex(sys.argv[2]), sys.argv[3], sys.argv[4]
engine = make_engine(url)
with read_session(engine) as session:
    last = session.execute(select(func.max(Campaign.start_at))).scalar_one()
at = last or datetime.fromisoformat(start)
end_at = datetime.fromisoformat(end)
clock = FrozenClock(at)
ctx = Context(engine=engine, config=Config(), clock=clock, operator="worker", role=Role.ADMIN,
              hash_key=key)
while clock.now() < end_at:
    scheduler.tick(ctx)
    clock.advance(timedelta(minutes=5))
print("done", flush=True)
"""


def _counts(engine: Engine) -> tuple[int, int, list[int]]:
    with read_session(engine) as session:
        campaigns = session.execute(select(func.count()).select_from(Campaign)).scalar_one()
        occurrences = session.execute(
            select(func.count()).select_from(Occurrence).where(col(Occurrence.state) == "sent")
        ).scalar_one()
        sizes = list(
            session.execute(
                select(func.count()).select_from(Message).group_by(col(Message.campaign_id))
            ).scalars()
        )
    return int(campaigns), int(occurrences), [int(s) for s in sizes]


def test_sigkill_while_materialising_never_doubles_nor_halves(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    ctx = make_context(engine, Config(), FrozenClock(START))
    for n in range(RESIDENTS):
        add_contact(ctx, ContactInput(number=f"06 30 {n // 100:02d} {n % 100:02d} 00"))
    for minute in range(SCHEDULES):
        add_plan(
            ctx,
            PlanRequest(
                topic="alertes",
                text=f"Exercice {minute}",
                sender_id="MAIRIE",
                audience=Audience(everyone=True),
                when="cron",
                cron=f"{minute}-59/15 * * * *",
            ),
        )
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    repo = Path(__file__).resolve().parents[2]
    args = [sys.executable, str(script), db_url, TEST_KEY.hex(), START.isoformat(), END.isoformat()]
    rng = random.Random(10)
    for _ in range(KILLS):
        child = subprocess.Popen(args, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(1.0, 3.0))
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
        child.wait()
    finished = subprocess.run(args, cwd=repo, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    campaigns, sent, sizes = _counts(engine)
    # Twelve hours of quarter-hours for each schedule, each exactly once, each whole.
    assert sent == campaigns == SCHEDULES * 12 * 4
    assert set(sizes) == {RESIDENTS}
    with read_session(engine) as session:
        keys = session.execute(select(col(Occurrence.schedule_id), col(Occurrence.local_key))).all()
    assert len(keys) == len(set(keys))
