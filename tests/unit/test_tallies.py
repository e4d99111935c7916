"""The per-campaign state tallies the ledger keeps (migration 0012): exact against a
full count after every kind of change, folded or not, and built for old ledgers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, event, func, select, text, update
from sqlmodel import Session

from console.clock import FrozenClock
from console.contacts.service import ContactInput, add_contact
from console.context import Context
from console.sending import campaigns
from console.sending.campaign_ops import queue_status
from console.sending.campaigns import Audience, CampaignRequest, create_campaign
from console.sending.providers.base import DeliveryReport, SendResult
from console.sending.queue import (
    apply_reports,
    claim_batch,
    expire_leases,
    record_results,
    release,
    skip_cancelled,
)
from console.sending.states import STATES
from console.sending.tallies import campaign_counts, fold_tallies, ledger_counts
from storage.migrate import downgrade, upgrade
from storage.models import (
    campaign_table,
    campaign_tally_table,
    delivery_event_table,
    message_table,
)


def _campaign(ctx: Context, numbers: range, kind: str = "planned") -> int:
    return create_campaign(
        ctx,
        CampaignRequest(
            topic="alertes",
            text="Essai",
            sender_id="MAIRIE",
            audience=Audience(
                numbers=tuple(f"06 21 00 {i // 100:02d} {i % 100:02d}" for i in numbers)
            ),
            kind=kind,  # type: ignore[arg-type]
        ),
    ).campaign_id


def _counted(engine: Engine) -> dict[int, dict[str, int]]:
    """The full count the tallies must equal."""
    message = message_table.c
    with Session(engine) as session:
        ids = list(session.execute(select(campaign_table.c.id)).scalars())
        counts = {cid: dict.fromkeys(STATES, 0) for cid in ids}
        for cid, state, n in session.execute(
            select(message.campaign_id, message.state, func.count()).group_by(
                message.campaign_id, message.state
            )
        ):
            counts[cid][state] = int(n)
    return counts


def _check(engine: Engine) -> None:
    counted = _counted(engine)
    with Session(engine) as session:
        assert campaign_counts(session, counted) == counted
        totals = ledger_counts(session)
    assert totals == {s: sum(c[s] for c in counted.values()) for s in STATES}


def test_tallies_follow_every_change_of_the_ledger(ctx: Context, clock: FrozenClock) -> None:
    add_contact(ctx, ContactInput(number="06 21 00 00 00"))
    first = _campaign(ctx, range(0, 40))
    second = _campaign(ctx, range(30, 60), kind="emergency")
    _check(ctx.engine)
    now = clock.now()
    claimed = claim_batch(ctx.engine, "w1", now, 60, 50)
    _check(ctx.engine)
    results = [
        SendResult(c.message_id, outcome, provider_ref=f"ref{c.message_id}", reason="x")
        for c, outcome in zip(
            claimed[:30], ["submitted", "retry", "failed", "unknown", "rejected"] * 6, strict=True
        )
    ]
    record_results(ctx.engine, "w1", claimed[:30], results, now, max_attempts=3)
    _check(ctx.engine)
    release(ctx.engine, "w1", claimed[30:40], now, "stopped")
    _check(ctx.engine)
    expire_leases(ctx.engine, now + timedelta(seconds=120))
    _check(ctx.engine)
    reports = [
        DeliveryReport(
            message_id=r.message_id, provider_ref="", state="delivered", provider_status="DELIVRD"
        )
        for r in results
    ]
    apply_reports(ctx.engine, reports + reports[:5], now)  # duplicates change nothing
    _check(ctx.engine)
    with ctx.engine.begin() as conn:
        conn.execute(
            update(campaign_table).where(campaign_table.c.id == first).values(status="cancelled")
        )
    skip_cancelled(ctx.engine, now)
    _check(ctx.engine)
    with ctx.engine.begin() as conn:
        theirs = select(message_table.c.id).where(message_table.c.campaign_id == second)
        conn.execute(
            delivery_event_table.delete().where(delivery_event_table.c.message_id.in_(theirs))
        )
        conn.execute(message_table.delete().where(message_table.c.campaign_id == second))
    _check(ctx.engine)
    fold_tallies(ctx.engine)
    _check(ctx.engine)
    status = queue_status(ctx)
    assert status["messages"] == ledger_counts_of(ctx.engine)


def ledger_counts_of(engine: Engine) -> dict[str, int]:
    with Session(engine) as session:
        return ledger_counts(session)


def test_folding_leaves_one_row_per_campaign_and_state(ctx: Context, clock: FrozenClock) -> None:
    _campaign(ctx, range(0, 20))
    now = clock.now()
    for _ in range(4):
        claimed = claim_batch(ctx.engine, "w1", now, 60, 5)
        release(ctx.engine, "w1", claimed, now, "again")
    fold_tallies(ctx.engine)
    tally = campaign_tally_table.c
    with Session(ctx.engine) as session:
        keys = session.execute(select(tally.campaign_id, tally.state)).all()
    assert len(keys) == len(set(keys))
    _check(ctx.engine)


def test_the_migration_tallies_an_existing_ledger(ctx: Context, clock: FrozenClock) -> None:
    _campaign(ctx, range(0, 25))
    claim_batch(ctx.engine, "w1", clock.now(), 60, 7)
    downgrade(ctx.engine, "0009")
    with ctx.engine.begin() as conn:
        # Changes made by a Tocsin without the tallies...
        conn.execute(text("UPDATE message SET state = 'submitted' WHERE state = 'sending'"))
    upgrade(ctx.engine)
    # ... are counted when they come back.
    _check(ctx.engine)
    claim_batch(ctx.engine, "w1", clock.now(), 60, 3)
    _check(ctx.engine)


@pytest.mark.postgresql
def test_an_enqueue_inserts_a_chunk_in_one_statement(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: one INSERT a chunk (its varying columns as arrays), not one a row:
    each fired the tally trigger, and a send to 1,000,000 left as many delta rows."""
    monkeypatch.setattr(campaigns, "CHUNK", 4)
    for i in range(10):
        add_contact(ctx, ContactInput(number=f"06 22 00 00 {i:02d}", name=f"Habitant {i}"))
    inserts: list[bool] = []

    def seen(_conn: object, _cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().startswith("INSERT INTO message "):
            inserts.append(bool(args[-1]))  # executemany

    event.listen(ctx.engine, "before_cursor_execute", seen)
    try:
        everyone = create_campaign(
            ctx,
            CampaignRequest(
                topic="alertes", text="Essai", sender_id="MAIRIE", audience=Audience(everyone=True)
            ),
        )
        typed = _campaign(ctx, range(0, 6))  # numbers of no contact: contact_id NULL
    finally:
        event.remove(ctx.engine, "before_cursor_execute", seen)
    assert inserts and not any(inserts)
    _check(ctx.engine)
    counted = _counted(ctx.engine)
    assert sum(counted[everyone.campaign_id].values()) == 10
    assert sum(counted[typed].values()) == 6
    tally = campaign_tally_table.c
    with Session(ctx.engine) as session:
        keys = session.execute(select(tally.campaign_id, tally.state)).all()
    assert len(keys) == len(set(keys))
