"""Benchmark: the planner at a town's real size.

    .venv/bin/python bench/bench_calendar.py [--residents 100000] [--plans 500] [--keep DIR]

Builds a town (residents, half of them opted in to events, two all-town sends in the
last days so the fatigue cap has history), plans `--plans` sends (one-off, daily,
weekly, event reminders) and times, each against a baseline in the same process:
(a) the Calendrier's month view (read_period, with the forecast of the days to come:
    one COUNT per distinct audience) / one plain SELECT of the schedules; the issue's
    target: < 0.3 s;
(b) the cap forecast for an all-town send (capped_contacts, then the plan preview
    with the audience resolved) / a plain SELECT of the audience's ids; target < 1 s;
(c) a scheduler tick with 1,000 schedules, none due / one plain indexed SELECT;
    target < 50 ms.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select, text

from bench.town import bench_context, import_residents
from console.clock import FrozenClock
from console.contacts.importer import ImportOptions, import_contacts
from console.planning import scheduler
from console.planning.calendar_view import read_period
from console.planning.fatigue import capped_contacts
from console.planning.service import EventRequest, PlanRequest, add_event, add_plan, preview_plan
from console.sending.campaigns import Audience, CampaignRequest, create_campaign
from storage.engine import read_session, write_session
from storage.models import Contact, Schedule

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)  # a Tuesday, 10:00 in Paris
ROUNDS = 5
ZONE = ZoneInfo("Europe/Paris")


def best_of(label: str, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    took = statistics.median(times)
    print(f"  {label}: median {took * 1000:.1f} ms over {ROUNDS}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--residents", type=int, default=100_000)
    parser.add_argument("--plans", type=int, default=500)
    parser.add_argument("--keep", help="build the town in this folder and keep it")
    args = parser.parse_args()
    folder = Path(args.keep or tempfile.mkdtemp(prefix="tocsin-bench-calendar-"))
    folder.mkdir(parents=True, exist_ok=True)
    clock = FrozenClock(NOW - timedelta(days=3))
    ctx = dataclasses.replace(bench_context(folder, f"sqlite:///{folder / 'town.db'}"), clock=clock)
    print(f"town: {args.residents} residents in {folder}")
    import_residents(ctx, folder, args.residents, zones=8)
    numbers = (folder / "residents.csv").read_text(encoding="utf-8").splitlines()[1:]
    consent = folder / "consent.csv"
    consent.write_text(
        "telephone\n" + "\n".join(line.split(";")[1] for line in numbers[::2]) + "\n",
        encoding="utf-8",
    )
    import_contacts(
        ctx, consent, ImportOptions(consent_topic="evenements", consent_source="paper_form")
    )
    everyone = Audience(everyone=True)
    for days in (3, 2):
        clock.advance(timedelta(days=1) if days == 2 else timedelta(0))
        create_campaign(
            ctx,
            CampaignRequest(
                topic="evenements", text="Passé", sender_id="MAIRIE", audience=everyone
            ),
        )
    clock.advance(NOW - clock.now())
    kinds = ("at", "daily", "weekly", "event")
    event_id = add_event(
        ctx, EventRequest(name="Fête", starts_at=NOW + timedelta(days=18), topic="evenements")
    )
    started = time.perf_counter()
    # One plan of each kind goes through add_plan (preview, audience, audit); the
    # rest are copies of their rows with other times (add_plan resolves the whole
    # audience each time: 500 of them would take the bench's time, not the view's).
    models: dict[str, Schedule] = {}
    for kind in kinds:
        base = {
            "topic": "evenements",
            "text": f"Envoi {kind}",
            "sender_id": "MAIRIE",
            "audience": everyone,
        }
        if kind == "at":
            request = PlanRequest(when="at", at=NOW + timedelta(hours=1), **base)  # type: ignore[arg-type]
        elif kind == "daily":
            request = PlanRequest(when="cron", cron="0 12 * * *", **base)  # type: ignore[arg-type]
        elif kind == "weekly":
            request = PlanRequest(when="cron", cron="every-monday 10:15", **base)  # type: ignore[arg-type]
        else:
            request = PlanRequest(when="event", event_id=event_id, offsets=(7,), **base)  # type: ignore[arg-type]
        [schedule_id] = add_plan(ctx, request)
        with read_session(ctx.engine) as session:
            found = session.get(Schedule, schedule_id)
            assert found is not None
            models[kind] = found
    with write_session(ctx.engine) as session:
        for n in range(len(kinds), args.plans):
            kind = kinds[n % len(kinds)]
            values = models[kind].model_dump(exclude={"id"})
            if kind == "at":
                at = NOW + timedelta(hours=1 + n % 400)
                # One-offs go to one quartier each: the month's forecast then counts
                # nine distinct audiences, not one.
                values.update(
                    at_local=at.astimezone(ZONE).strftime("%Y-%m-%dT%H:%M"),
                    next_due_at=at,
                    audience=Audience(zones=(f"Zone {n % 8}",)).to_json(),
                )
            elif kind == "daily":
                values.update(cron=f"{n % 60} 12 * * *")
            elif kind == "weekly":
                values.update(cron=f"15 1{n % 10} * * 1")
            else:
                values.update(offset_days=1 + n % 14)
            session.add(Schedule(**values))
    print(f"{args.plans} plans saved in {time.perf_counter() - started:.1f} s")

    print("(a) the month view")
    base = best_of(
        "baseline: SELECT * FROM schedule", lambda: _plain(ctx, "SELECT * FROM schedule")
    )
    month = best_of(
        "read_period, March 2026",
        lambda: read_period(ctx, datetime(2026, 2, 23).date(), datetime(2026, 4, 5).date()),
    )
    print(f"  ratio {month / base:.1f}x; target < 300 ms: {'met' if month < 0.3 else 'MISSED'}")

    print("(b) the cap forecast for an all-town send")
    base = best_of(
        "baseline: SELECT id FROM contact", lambda: _plain(ctx, "SELECT id FROM contact")
    )
    cap = best_of("capped_contacts", lambda: capped_contacts(ctx.engine, ctx.config, NOW))
    request = PlanRequest(
        when="at",
        at=NOW + timedelta(hours=2),
        topic="evenements",
        text="x",
        sender_id="MAIRIE",
        audience=everyone,
    )
    forecast = best_of("preview_plan (cap + audience)", lambda: preview_plan(ctx, request))
    print(
        f"  ratios {cap / base:.1f}x and {forecast / base:.1f}x; "
        f"target < 1 s: {'met' if forecast < 1 else 'MISSED'}"
    )

    print("(c) a scheduler tick with 1,000 schedules, none due")
    with write_session(ctx.engine) as session:
        for n in range(max(0, 1000 - args.plans)):
            at = NOW + timedelta(days=40, minutes=n)
            values = models["at"].model_dump(exclude={"id"})
            values.update(at_local=at.astimezone(ZONE).strftime("%Y-%m-%dT%H:%M"), next_due_at=at)
            session.add(Schedule(**values))
    with read_session(ctx.engine) as session:
        total = session.execute(text("SELECT count(*) FROM schedule")).scalar_one()
    print(f"  {total} schedules")
    base = best_of(
        "baseline: one indexed SELECT",
        lambda: _plain(
            ctx, "SELECT id FROM schedule WHERE status = 'active' AND next_due_at <= '2000-01-01'"
        ),
    )
    tick = best_of("scheduler.tick", lambda: scheduler.tick(ctx))
    print(f"  ratio {tick / base:.1f}x; target < 50 ms: {'met' if tick < 0.05 else 'MISSED'}")
    with read_session(ctx.engine) as session:
        assert session.execute(select(Contact.id).limit(1)).first() is not None


def _plain(ctx: object, sql: str) -> None:
    with read_session(ctx.engine) as session:  # type: ignore[attr-defined]
        session.execute(text(sql)).all()


if __name__ == "__main__":
    main()
