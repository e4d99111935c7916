"""Planning and the scheduler: plans, events and reminders, exactly-once occurrences,
missed ones, the fatigue cap and the slots planned campaigns send in."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from console.clock import FrozenClock
from console.consent.ledger import ConsentRequest, record_consent
from console.contacts.service import ContactInput, add_contact
from console.context import Context
from console.planning import scheduler
from console.planning.rules import localize, send_rules
from console.planning.service import (
    EventRequest,
    PlanError,
    PlanRequest,
    add_event,
    add_plan,
    cancel_event,
    cancel_plan,
    list_plans,
    move_event,
    parse_offsets,
    preview_plan,
)
from console.roles import PermissionDenied, Role
from console.sending.campaigns import Audience
from console.sending.queue import claim_batch
from storage.engine import read_session
from storage.models import AuditEntry, Campaign, Message, Occurrence, Schedule
from tests.conftest import make_context


def _residents(ctx: Context, count: int = 3) -> list[int]:
    ids = []
    for n in range(count):
        contact = add_contact(ctx, ContactInput(number=f"06 10 00 01 {n:02d}", name=f"r{n}"))
        assert contact.id is not None
        ids.append(contact.id)
        for topic in ("evenements", "travaux", "infos"):
            record_consent(
                ctx,
                ConsentRequest(
                    contact_id=contact.id, topic=topic, action="grant", source="paper_form"
                ),
            )
    return ids


def _plan(ctx: Context, **values: object) -> PlanRequest:
    base: dict[str, object] = {
        "topic": "evenements",
        "text": "Marché de Noël samedi",
        "sender_id": "MAIRIE",
        "audience": Audience(everyone=True),
        "when": "at",
    }
    return PlanRequest(**{**base, **values})  # type: ignore[arg-type]


def _paris(ctx: Context, *args: int) -> datetime:
    return localize(datetime(*args), send_rules(ctx.config).zone)  # type: ignore[misc]


def _campaigns(ctx: Context) -> list[Campaign]:
    with read_session(ctx.engine) as session:
        return list(session.execute(select(Campaign).order_by(col(Campaign.id))).scalars())


def _occurrences(ctx: Context) -> list[Occurrence]:
    with read_session(ctx.engine) as session:
        return list(session.execute(select(Occurrence).order_by(col(Occurrence.id))).scalars())


def test_one_off_in_quiet_hours_moves_and_fires_once(ctx: Context, clock: FrozenClock) -> None:
    _residents(ctx)
    # Saturday 14 March 2026, 21:00: moved to Monday 16 March 08:00.
    request = _plan(ctx, at=_paris(ctx, 2026, 3, 14, 21, 0))
    preview = preview_plan(ctx, request)
    assert [o.due for o in preview.occurrences] == [_paris(ctx, 2026, 3, 16, 8, 0)]
    assert [b.reason for b in preview.occurrences[0].moved_by] == ["quiet_hours", "sunday"]
    assert preview.recipients == 3
    [schedule_id] = add_plan(ctx, request)
    assert scheduler.tick(ctx).sent == 0
    clock.advance(_paris(ctx, 2026, 3, 16, 8, 1) - clock.now())
    assert scheduler.tick(ctx).sent == 1
    assert scheduler.tick(ctx).sent == 0
    [campaign] = _campaigns(ctx)
    assert campaign.schedule_id == schedule_id
    assert campaign.send_until == _paris(ctx, 2026, 3, 16, 20, 0)
    from console.sending.campaign_ops import get_campaign

    assert campaign.id is not None
    assert get_campaign(ctx, campaign.id).to_json()["schedule_id"] == schedule_id
    [plan] = list_plans(ctx, include_done=True)
    assert plan.status == "done" and plan.occurrences["sent"] == 1


def test_viewers_look_but_do_not_plan(engine, config, clock) -> None:  # type: ignore[no-untyped-def]
    viewer = make_context(engine, config, clock, role=Role.VIEWER)
    with pytest.raises(PermissionDenied):
        add_plan(viewer, _plan(viewer, at=_paris(viewer, 2026, 3, 16, 12, 15)))


def test_bad_requests_say_why(ctx: Context) -> None:
    with pytest.raises(PlanError):
        add_plan(ctx, _plan(ctx, at=_paris(ctx, 2026, 3, 1, 12, 0)))  # past
    with pytest.raises(PlanError):
        parse_offsets("J+3")
    assert parse_offsets("J-7, j-1") == (7, 1)


def test_worker_down_for_three_hours_misses_instead_of_sending_late(
    ctx: Context, clock: FrozenClock
) -> None:
    _residents(ctx)
    [schedule_id] = add_plan(ctx, _plan(ctx, when="cron", cron="every-day 12:15"))
    # Saturday 14 March 12:15 due; the worker comes back at 15:15.
    clock.advance(_paris(ctx, 2026, 3, 14, 15, 15) - clock.now())
    result = scheduler.tick(ctx)
    assert (result.sent, result.missed) == (0, 1)
    assert _campaigns(ctx) == []
    [missed] = _occurrences(ctx)
    assert missed.state == "missed" and missed.local_key == "2026-03-14T12:15"
    # The operator sends it: now (15:15 is allowed), once.
    assert scheduler.resolve_missed(ctx, schedule_id, "send") == 1
    assert scheduler.resolve_missed(ctx, schedule_id, "send") == 0
    [campaign] = _campaigns(ctx)
    assert campaign.schedule_id == schedule_id
    assert _occurrences(ctx)[0].state == "sent"
    # Sunday is skipped to Monday 08:00 (before the Monday 12:15 occurrence).
    clock.advance(_paris(ctx, 2026, 3, 16, 8, 5) - clock.now())
    assert scheduler.tick(ctx).sent == 1


def test_drop_a_missed_occurrence(ctx: Context, clock: FrozenClock) -> None:
    [schedule_id] = add_plan(ctx, _plan(ctx, when="cron", cron="every-day 12:15"))
    clock.advance(timedelta(hours=6))
    scheduler.tick(ctx)
    assert scheduler.resolve_missed(ctx, schedule_id, "drop") == 1
    assert [o.state for o in _occurrences(ctx)] == ["dropped"]


def test_a_crash_while_materialising_leaves_nothing_and_it_fires_later(
    ctx: Context, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _residents(ctx)
    add_plan(ctx, _plan(ctx, at=_paris(ctx, 2026, 3, 14, 12, 15)))
    clock.advance(_paris(ctx, 2026, 3, 14, 12, 16) - clock.now())
    real = scheduler.create_campaign

    def dies(*args: object, **kwargs: object) -> object:
        def boom(session: object, campaign_id: int) -> None:
            raise KeyboardInterrupt  # as SIGKILL: the transaction never commits

        kwargs["in_transaction"] = boom
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(scheduler, "create_campaign", dies)
    with pytest.raises(KeyboardInterrupt):
        scheduler.tick(ctx)
    assert _campaigns(ctx) == [] and _occurrences(ctx) == []
    monkeypatch.setattr(scheduler, "create_campaign", real)
    assert scheduler.tick(ctx).sent == 1
    assert len(_campaigns(ctx)) == 1


def test_two_workers_at_once_fire_each_occurrence_once(ctx: Context, clock: FrozenClock) -> None:
    _residents(ctx)
    for minute in range(5):
        add_plan(ctx, _plan(ctx, at=_paris(ctx, 2026, 3, 14, 12, minute)))
    clock.advance(_paris(ctx, 2026, 3, 14, 12, 10) - clock.now())
    errors: list[BaseException] = []

    def run() -> None:
        try:
            scheduler.tick(ctx)
        except BaseException as exc:  # pragma: no cover - shown by the assert
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(_campaigns(ctx)) == 5
    assert len(_occurrences(ctx)) == 5


def test_event_reminders_move_with_the_event_and_cancel_with_it(
    ctx: Context, clock: FrozenClock
) -> None:
    _residents(ctx)
    event_id = add_event(
        ctx,
        EventRequest(name="Brocante", starts_at=_paris(ctx, 2026, 3, 28, 9, 0), topic="evenements"),
    )
    ids = add_plan(ctx, _plan(ctx, when="event", event_id=event_id, offsets=(7, 1)))
    assert len(ids) == 2
    # J-7: Saturday 21 March 10:00 (best slot); fires.
    clock.advance(_paris(ctx, 2026, 3, 21, 10, 1) - clock.now())
    assert scheduler.tick(ctx).sent == 1
    # The event moves a week later: only the unsent J-1 reminder moves.
    assert move_event(ctx, event_id, _paris(ctx, 2026, 4, 4, 9, 0)) == 1
    with read_session(ctx.engine) as session:
        j1 = session.get(Schedule, ids[1])
    assert j1 is not None and j1.next_due_at == _paris(ctx, 2026, 4, 3, 12, 15)
    clock.advance(_paris(ctx, 2026, 3, 28, 10, 1) - clock.now())
    assert scheduler.tick(ctx).sent == 0
    assert cancel_event(ctx, event_id) == 1
    clock.advance(_paris(ctx, 2026, 4, 3, 12, 16) - clock.now())
    assert scheduler.tick(ctx).sent == 0
    assert len(_campaigns(ctx)) == 1
    with read_session(ctx.engine) as session:
        campaign = _campaigns(ctx)[0]
        assert campaign.valid_until == _paris(ctx, 2026, 3, 28, 9, 0)
        assert session.get(Schedule, ids[0]).status == "done"  # type: ignore[union-attr]


def test_cancel_one_occurrence_or_the_series(ctx: Context, clock: FrozenClock) -> None:
    _residents(ctx)
    [schedule_id] = add_plan(ctx, _plan(ctx, when="cron", cron="every-day 12:15"))
    assert cancel_plan(ctx, schedule_id, "2026-03-14T12:15") == 1
    clock.advance(_paris(ctx, 2026, 3, 14, 12, 20) - clock.now())
    assert scheduler.tick(ctx).sent == 0
    assert cancel_plan(ctx, schedule_id) == 1
    assert cancel_plan(ctx, schedule_id) == 0
    clock.advance(timedelta(days=2))
    assert scheduler.tick(ctx).sent == 0


def test_fatigue_cap_at_planning_and_at_send(ctx: Context, clock: FrozenClock) -> None:
    _residents(ctx)
    for minute in (0, 30):
        add_plan(ctx, _plan(ctx, topic="travaux", at=_paris(ctx, 2026, 3, 14, 12, minute)))
    clock.advance(_paris(ctx, 2026, 3, 14, 12, 1) - clock.now())
    assert scheduler.tick(ctx).sent == 1
    # The forecast for another send today: everyone is capped (1 a day).
    preview = preview_plan(ctx, _plan(ctx, at=_paris(ctx, 2026, 3, 14, 16, 0)))
    assert preview.capped == 3
    clock.advance(timedelta(minutes=30))
    assert scheduler.tick(ctx).sent == 1
    second = _campaigns(ctx)[1]
    with read_session(ctx.engine) as session:
        reasons = set(
            session.execute(
                select(col(Message.reason)).where(col(Message.campaign_id) == second.id)
            ).scalars()
        )
    assert reasons == {"fatigue_cap"}
    # The calendar's load for the day: 3 messages sent, 3 residents held by the cap.
    from console.planning.calendar_view import read_period

    day = date(2026, 3, 14)
    info = read_period(ctx, day, day).days[day]
    assert (info.messages, info.capped) == (3, 3)


def test_planned_campaigns_never_send_outside_their_slot(ctx: Context, clock: FrozenClock) -> None:
    _residents(ctx)
    add_plan(ctx, _plan(ctx, at=_paris(ctx, 2026, 3, 14, 19, 55)))
    clock.advance(_paris(ctx, 2026, 3, 14, 19, 56) - clock.now())
    scheduler.tick(ctx)
    # 20:01: quiet hours; nothing may be claimed until Monday 08:00.
    clock.advance(timedelta(minutes=5))
    scheduler.tick(ctx)
    assert claim_batch(ctx.engine, "w", clock.now(), 60, 100) == []
    clock.advance(_paris(ctx, 2026, 3, 16, 8, 0) - clock.now())
    scheduler.tick(ctx)
    # Past the default valid-until (24 h after its slot): skipped, with the reason.
    with read_session(ctx.engine) as session:
        states = dict(
            session.execute(
                select(col(Message.state), func.count()).group_by(col(Message.state))
            ).all()
        )
    assert states == {"skipped": 3}
    assert claim_batch(ctx.engine, "w", clock.now(), 60, 100) == []


def test_l52_justification_is_required_and_audited(engine, clock) -> None:  # type: ignore[no-untyped-def]
    from console.config import parse_config

    config = parse_config(
        '[[planning.elections]]\nname = "Départementales"\nfirst_round = 2026-06-14\n', "t"
    )
    ctx = make_context(engine, config, clock)
    request = _plan(ctx, at=_paris(ctx, 2026, 3, 16, 12, 15))
    assert preview_plan(ctx, request).needs_justification
    with pytest.raises(PlanError):
        add_plan(ctx, request)
    add_plan(ctx, _plan(ctx, at=_paris(ctx, 2026, 3, 16, 12, 15), justification="Fête annuelle"))
    with read_session(ctx.engine) as session:
        entry = session.execute(
            select(AuditEntry).where(col(AuditEntry.action) == "plan.create")
        ).scalar_one()
    assert "Fête annuelle" in entry.details and "L52-1" in entry.details


def test_an_alert_passing_a_rule_is_audited(ctx: Context, clock: FrozenClock) -> None:
    from console.sending.campaigns import CampaignRequest, create_campaign

    _residents(ctx)
    clock.advance(_paris(ctx, 2026, 3, 15, 23, 0) - clock.now())  # Sunday night
    create_campaign(
        ctx,
        CampaignRequest(
            topic="alertes",
            text="Crue",
            sender_id="MAIRIE",
            audience=Audience(everyone=True),
            kind="emergency",
        ),
    )
    with read_session(ctx.engine) as session:
        passed = session.execute(
            select(AuditEntry).where(col(AuditEntry.action) == "rules.passed")
        ).scalar_one()
    assert "quiet_hours" in passed.details


def test_a_scheduler_tick_with_nothing_due_touches_nothing(ctx: Context) -> None:
    assert scheduler.tick(ctx) == scheduler.TickResult()
    assert date(2026, 3, 14) == ctx.clock.now().date()
    assert ctx.clock.now().tzinfo == UTC


def test_the_calendar_forecasts_the_load_of_days_to_come(ctx: Context) -> None:
    """A future day shows what its planned sends would reach and what the cap would
    hold: one COUNT per audience, assuming the audiences nest (see forecast_day)."""
    from console.planning.calendar_view import audience_reach, read_period

    ids = _residents(ctx)
    # A resident with no consent and one in a quartier with consent to works only.
    add_contact(ctx, ContactInput(number="06 10 00 02 00", name="sans consentement"))
    gare = add_contact(ctx, ContactInput(number="06 10 00 02 01", name="g", zone="La Gare"))
    assert gare.id is not None
    record_consent(
        ctx, ConsentRequest(contact_id=gare.id, topic="travaux", action="grant", source="counter")
    )
    add_plan(ctx, _plan(ctx, at=_paris(ctx, 2026, 3, 17, 12, 15)))
    add_plan(
        ctx,
        _plan(
            ctx,
            topic="travaux",
            audience=Audience(zones=("La Gare",)),
            at=_paris(ctx, 2026, 3, 17, 18, 30),
        ),
    )
    day = date(2026, 3, 17)
    info = read_period(ctx, day, day).days[day]
    assert (info.messages, info.capped) == (0, 0)
    # 3 residents opted in to events, 1 in La Gare to works: the largest send goes
    # out, the other is held for whoever is in both (at most 1).
    assert (info.forecast, info.forecast_capped) == (3, 1)
    # The count agrees with the plan's own preview (the audience resolved in full).
    with read_session(ctx.engine) as session:
        reach = audience_reach(session, ctx.config, "travaux", Audience(everyone=True).to_json())
    preview = preview_plan(ctx, _plan(ctx, topic="travaux", at=_paris(ctx, 2026, 3, 18, 12, 15)))
    assert reach == preview.recipients == len(ids) + 1
    # A day with nothing planned forecasts nothing.
    quiet = date(2026, 3, 19)
    assert read_period(ctx, quiet, quiet).days[quiet].forecast == 0


def test_the_forecast_never_caps_alerts_but_counts_them(ctx: Context) -> None:
    from console.planning.calendar_view import forecast_day

    alert = ctx.config.alert.topic
    assert forecast_day(ctx.config, []) == (0, 0)
    assert forecast_day(ctx.config, [("evenements", 10), ("travaux", 4)]) == (10, 4)
    # The alert goes to all 100; it uses up the day's one message for the rest.
    assert forecast_day(ctx.config, [(alert, 100), ("evenements", 10)]) == (100, 10)
