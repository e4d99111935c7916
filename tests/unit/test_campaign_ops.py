"""Operators acting on queued campaigns, between the worker's batches."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from console.contacts.service import ContactInput, add_contact
from console.context import Context
from console.sending.campaign_ops import (
    change_campaign,
    get_campaign,
    list_campaigns,
    queue_status,
    resolve_uncertain,
)
from console.sending.campaigns import Audience, CampaignError, CampaignRequest, create_campaign
from console.sending.providers.base import SendResult
from console.sending.queue import claim_batch, record_results
from console.sending.status import PostgresqlDatabase, read_queue_status
from console.sending.workers import beat


def _campaign(ctx: Context, count: int) -> int:
    for i in range(count):
        add_contact(ctx, ContactInput(number=f"06 60 00 00 {i:02d}"))
    return create_campaign(
        ctx,
        CampaignRequest(
            topic="alertes", text="Essai", sender_id="MAIRIE", audience=Audience(everyone=True)
        ),
    ).campaign_id


def test_pause_stops_claims_and_resume_restarts(ctx: Context) -> None:
    cid = _campaign(ctx, 3)
    assert change_campaign(ctx, cid, "pause").status == "paused"
    assert claim_batch(ctx.engine, "w", ctx.clock.now(), 60, 10) == []
    assert change_campaign(ctx, cid, "resume").status == "running"
    assert len(claim_batch(ctx.engine, "w", ctx.clock.now(), 60, 10)) == 3


def test_cancel_skips_what_is_still_queued_and_keeps_what_is_in_flight(ctx: Context) -> None:
    cid = _campaign(ctx, 4)
    claimed = claim_batch(ctx.engine, "w", ctx.clock.now(), 60, 1)
    view = change_campaign(ctx, cid, "cancel")
    assert view.status == "cancelled"
    assert view.counts["skipped"] == 3 and view.counts["sending"] == 1
    # The call in flight still finishes and is recorded.
    record_results(
        ctx.engine,
        "w",
        claimed,
        [SendResult(claimed[0].message_id, "submitted")],
        ctx.clock.now(),
        5,
    )
    assert get_campaign(ctx, cid).counts["submitted"] == 1
    with pytest.raises(CampaignError) as raised:
        change_campaign(ctx, cid, "resume")
    assert raised.value.code == "campaign_change"


def test_resolve_uncertain(ctx: Context) -> None:
    cid = _campaign(ctx, 2)
    claimed = claim_batch(ctx.engine, "w", ctx.clock.now(), 60, 2)
    record_results(
        ctx.engine,
        "w",
        claimed,
        [SendResult(c.message_id, "unknown", reason="timeout") for c in claimed],
        ctx.clock.now(),
        5,
    )
    assert get_campaign(ctx, cid).counts["uncertain"] == 2
    assert resolve_uncertain(ctx, cid, "mark-sent") == 2
    assert get_campaign(ctx, cid).counts["submitted"] == 2
    assert resolve_uncertain(ctx, cid, "resend") == 0


def test_list_and_status_json(ctx: Context) -> None:
    cid = _campaign(ctx, 2)
    views = list_campaigns(ctx)
    assert [v.id for v in views] == [cid]
    data = views[0].to_json()
    assert data["counts"]["queued"] == 2 and data["total"] == 2
    assert all(isinstance(v, int) for v in data["counts"].values())
    status = queue_status(ctx)
    assert status["messages"]["queued"] == 2 and status["worker_alive"] is False
    claimed = claim_batch(ctx.engine, "w", ctx.clock.now(), 60, 1)
    record_results(
        ctx.engine,
        "w",
        claimed,
        [SendResult(claimed[0].message_id, "submitted")],
        ctx.clock.now(),
        5,
    )
    assert queue_status(ctx)["no_report"] == 0
    ctx.clock.advance(timedelta(minutes=61))  # type: ignore[attr-defined]
    assert queue_status(ctx)["no_report"] == 1
    beat(ctx.engine, "host:1:abc", "simulated", ctx.clock.now())
    status = queue_status(ctx)
    assert status["worker_alive"] is True and status["workers"][0]["provider"] == "simulated"


@pytest.mark.sqlite_file
def test_status_reads_the_same_from_the_sqlite_file_as_through_the_engine(ctx: Context) -> None:
    """`tocsin status` reads a SQLite file with sqlite3 alone (console.sending.status):
    the same figures as the engine's, times compared and read back alike."""
    database = Path(str(ctx.engine.url.database))
    minutes = ctx.config.worker.report_timeout_minutes

    def both() -> dict[str, Any]:
        through_engine = queue_status(ctx)
        assert read_queue_status(database, ctx.clock.now(), minutes) == through_engine
        return through_engine

    cid = _campaign(ctx, 3)
    assert both()["active_campaigns"] == 1
    claimed = claim_batch(ctx.engine, "w", ctx.clock.now(), 60, 2)
    record_results(
        ctx.engine,
        "w",
        claimed,
        [SendResult(c.message_id, "submitted") for c in claimed],
        ctx.clock.now(),
        5,
    )
    assert both()["rate_per_second"] == 0.03  # two in the last minute
    ctx.clock.advance(timedelta(minutes=61))  # type: ignore[attr-defined]
    beat(ctx.engine, "host:1:abc", "simulated", ctx.clock.now(), sent=2)
    status = both()
    assert status["no_report"] == 2 and status["rate_per_second"] == 0.0
    assert status["workers"][0]["last_seen"] == ctx.clock.now().isoformat()
    ctx.clock.advance(timedelta(seconds=14))  # type: ignore[attr-defined]
    assert both()["worker_alive"] is True
    ctx.clock.advance(timedelta(seconds=2))  # type: ignore[attr-defined]
    assert both()["worker_alive"] is False
    assert get_campaign(ctx, cid).counts["queued"] == 1


@pytest.mark.postgresql
def test_status_reads_the_same_with_psycopg_alone_as_through_the_engine(ctx: Context) -> None:
    """On PostgreSQL `tocsin status` reads with psycopg alone: the same figures."""
    url = ctx.engine.url.render_as_string(hide_password=False)
    database = PostgresqlDatabase(url, "postgresql://" + url.split("://", 1)[1])
    minutes = ctx.config.worker.report_timeout_minutes

    def both() -> dict[str, Any]:
        through_engine = queue_status(ctx)
        assert read_queue_status(database, ctx.clock.now(), minutes) == through_engine
        return through_engine

    _campaign(ctx, 3)
    claimed = claim_batch(ctx.engine, "w", ctx.clock.now(), 60, 2)
    record_results(
        ctx.engine,
        "w",
        claimed,
        [SendResult(c.message_id, "submitted") for c in claimed],
        ctx.clock.now(),
        5,
    )
    assert both()["rate_per_second"] == 0.03
    ctx.clock.advance(timedelta(minutes=61))  # type: ignore[attr-defined]
    beat(ctx.engine, "host:1:abc", "simulated", ctx.clock.now(), sent=2)
    status = both()
    assert status["no_report"] == 2 and status["workers"][0]["sent"] == 2
    # psycopg refused (here: a database that is not there): the engine's way, whose
    # error the command words.
    gone = PostgresqlDatabase(url, database.conninfo.rsplit("/", 1)[0] + "/no_such_database")
    assert read_queue_status(gone, ctx.clock.now(), minutes) == status
