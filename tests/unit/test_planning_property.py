"""The property the planner promises: over random schedules, topics, time zones and
clocks, no non-emergency message is handed to the provider in a forbidden slot, over
the fatigue cap, or after its valid-until."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlmodel import col

from console.clock import FrozenClock
from console.config import parse_config
from console.consent.ledger import ConsentRequest, record_consent
from console.contacts.service import ContactInput, add_contact
from console.planning import scheduler
from console.planning.rules import send_rules
from console.planning.service import PlanError, PlanRequest, add_plan
from console.sending.campaigns import Audience
from console.sending.providers.base import SendResult
from console.sending.queue import claim_batch, record_results
from console.sending.states import SKIPPED
from storage.engine import read_session
from storage.models import Campaign, Contact, Message
from tests.conftest import make_context

TOWNS = [
    ('timezone = "Europe/Paris"\nregion = "FR"', ""),
    ('timezone = "Europe/Paris"\nregion = "FR"', 'holidays_subdivision = "57"'),
    ('timezone = "Indian/Reunion"\nregion = "RE"', ""),
    ('timezone = "America/Guadeloupe"\nregion = "GP"', ""),
]
TOPICS = ["evenements", "travaux", "infos", "elections"]
CRONS = ["every-day 12:15", "30 2 * * *", "every-monday 12:15", "0 21 * * *", "*/45 * * * *"]

plan = st.fixed_dictionaries(
    {
        "topic": st.sampled_from(TOPICS),
        "kind": st.sampled_from(["at", "cron", "best_slot"]),
        "hours": st.integers(min_value=1, max_value=24 * 20),
        "cron": st.sampled_from(CRONS),
    }
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    town=st.sampled_from(TOWNS),
    start_hours=st.integers(min_value=0, max_value=24 * 600),
    plans=st.lists(plan, min_size=1, max_size=3),
    steps=st.lists(st.integers(min_value=1, max_value=600), min_size=5, max_size=25),
)
def test_nothing_leaves_in_a_forbidden_slot_over_the_cap_or_late(
    engine: Engine,
    town: tuple[str, str],
    start_hours: int,
    plans: list[dict[str, object]],
    steps: list[int],
) -> None:
    config = parse_config(
        f"[town]\n{town[0]}\n[planning]\n{town[1]}\n"
        '[[planning.elections]]\nname = "Test"\nfirst_round = 2026-06-14\n'
        "second_round = 2026-06-21\n",
        "t",
    )
    clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=start_hours))
    ctx = make_context(engine, config, clock)
    rules = send_rules(config)
    with read_session(engine) as session:
        first_campaign = (
            session.execute(select(col(Campaign.id)).order_by(col(Campaign.id).desc())).first()
            or (0,)
        )[0]
        known = session.execute(select(col(Contact.id))).first()
    if known is None:
        for n in range(4):
            contact = add_contact(ctx, ContactInput(number=f"06 20 00 00 {n:02d}"))
            assert contact.id is not None
            for topic in TOPICS:
                record_consent(
                    ctx,
                    ConsentRequest(
                        contact_id=contact.id, topic=topic, action="grant", source="paper_form"
                    ),
                )
    for spec in plans:
        when = clock.now() + timedelta(hours=int(spec["hours"]))  # type: ignore[call-overload]
        request = PlanRequest(
            topic=str(spec["topic"]),
            text="Test",
            sender_id="MAIRIE",
            audience=Audience(everyone=True),
            when=spec["kind"],  # type: ignore[arg-type]
            at=when,
            best_day=when.astimezone(rules.zone).date(),
            cron=str(spec["cron"]),
            justification="test",
        )
        try:
            add_plan(ctx, request)
        except PlanError:
            continue
    for minutes in steps:
        clock.advance(timedelta(minutes=minutes))
        now = clock.now()
        scheduler.tick(ctx)
        claimed = claim_batch(engine, "w", now, 60, 1000)
        if not claimed:
            continue
        with read_session(engine) as session:
            campaigns = {
                c.id: c
                for c in session.execute(
                    select(Campaign).where(col(Campaign.id).in_({c.campaign_id for c in claimed}))
                ).scalars()
            }
        for message in claimed:
            campaign = campaigns[message.campaign_id]
            assert rules.blocked(campaign.topic, now) is None, (campaign.topic, now)
            assert campaign.valid_until is None or now < campaign.valid_until
        record_results(
            engine, "w", claimed, [SendResult(c.message_id, "submitted") for c in claimed], now, 5
        )
    # The cap: at most per_day messages a resident on a town day (planned ones).
    with read_session(engine) as session:
        rows = session.execute(
            select(col(Message.contact_id), col(Campaign.start_at))
            .join(Campaign, col(Campaign.id) == col(Message.campaign_id))
            .where(col(Message.state) != SKIPPED, col(Campaign.id) > first_campaign)
        ).all()
    per_day = Counter((contact, at.astimezone(rules.zone).date()) for contact, at in rows)
    assert all(count <= config.planning.fatigue.per_day for count in per_day.values())
