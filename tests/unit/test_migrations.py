"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import importlib
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel

import storage.models  # noqa: F401
from console.sending.states import CampaignStatus, MessageState, ReportState
from storage.engine import make_engine
from storage.migrate import current_revision, downgrade, head_revision, upgrade
from storage.models import Campaign, DeliveryEvent, Message, Topic


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert differences == []


def test_the_head_read_from_the_versions_folder_is_alembics() -> None:
    """head_revision reads the migration files instead of loading Alembic (every start
    asks it); what it finds is what Alembic finds."""
    from alembic.script import ScriptDirectory

    from storage.migrate import _config

    assert head_revision() == ScriptDirectory.from_config(_config()).get_current_head()


def test_the_revision_read_without_alembic_is_alembics(fresh_engine: Engine) -> None:
    assert current_revision(fresh_engine) is None  # never migrated
    upgrade(fresh_engine, "0008")
    with fresh_engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == "0008"
    assert current_revision(fresh_engine) == "0008"


@pytest.fixture
def fresh_engine(tmp_path: Path) -> Iterator[Engine]:
    """An empty database of the kind under test, for migrating up and down."""
    wanted = os.environ.get("TOCSIN_TEST_DATABASE", "sqlite")
    if wanted == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
        yield engine
        engine.dispose()
        return
    url = make_url(wanted)
    name = f"tocsin_mig_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url.render_as_string(False))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(url.set(database=name).render_as_string(False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_the_state_checks_list_the_ledger_names() -> None:
    # The migration writes the values out (a migration is frozen at its revision):
    # they must be the enums' today.
    checks = importlib.import_module("storage.migrations.versions.0009_state_checks")
    assert tuple(MessageState) == checks.MESSAGE_STATES
    assert tuple(CampaignStatus) == checks.CAMPAIGN_STATUSES
    assert {state.value for state in ReportState} <= set(checks.MESSAGE_STATES)


def _seed(engine: Engine, at: datetime) -> None:
    with Session(engine) as session:
        session.add(Topic(key="alerts", label="Alertes", legal_basis="public_safety"))
        session.flush()
        # The campaign table as it was at 0008: a Core insert names only its columns
        # (the model has more since, planning's 0010).
        campaign_id = session.execute(
            Campaign.__table__.insert()  # type: ignore[attr-defined]
            .values(
                topic="alerts",
                text="x",
                sender_id="MAIRIE",
                kind="planned",
                priority=0,
                audience="{}",
                status=CampaignStatus.RUNNING,
                status_reason="",
                created_by="test",
                created_at=at,
                start_at=at,
                resend_uncertain=False,
                enqueued=True,
            )
            .returning(Campaign.__table__.c.id)  # type: ignore[attr-defined]
        ).scalar_one()
        message = Message(
            campaign_id=campaign_id,
            number="+33612345678",
            state=MessageState.SUBMITTED,
            next_attempt_at=at,
            updated_at=at,
        )
        session.add(message)
        session.flush()
        assert message.id is not None
        session.add(
            DeliveryEvent(
                message_id=message.id,
                state=MessageState.SUBMITTED,
                applied=True,
                source="send",
                at=at,
            )
        )
        session.commit()


def _bad_state(engine: Engine, sql: str) -> bool:
    """Whether the database refuses the statement."""
    try:
        with engine.begin() as conn:
            conn.execute(text(sql))
    except IntegrityError:
        return True
    return False


def test_the_state_checks_go_up_and_down_keeping_the_rows(fresh_engine: Engine) -> None:
    engine = fresh_engine
    upgrade(engine, "0008")
    _seed(engine, datetime(2026, 3, 14, 9, 0, tzinfo=UTC))
    upgrade(engine, "0009")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT state FROM message")).scalar_one() == "submitted"
        assert conn.execute(text("SELECT status FROM campaign")).scalar_one() == "running"
        assert conn.execute(text("SELECT count(*) FROM delivery_event")).scalar_one() == 1
    assert _bad_state(engine, "UPDATE message SET state = 'sent'")
    assert _bad_state(engine, "UPDATE delivery_event SET state = 'DELIVRD'")
    assert _bad_state(engine, "UPDATE campaign SET status = 'finished'")
    # A name of the ledger still goes in.
    assert not _bad_state(engine, "UPDATE message SET state = 'delivered'")
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            claim = conn.execute(
                text("SELECT sql FROM sqlite_master WHERE name = 'ix_message_claim'")
            ).scalar_one()
        assert "priority DESC" in claim

    downgrade(engine, "0008")
    assert current_revision(engine) == "0008"
    assert not _bad_state(engine, "UPDATE campaign SET status = 'finished'")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM delivery_event")).scalar_one() == 1
    with engine.begin() as conn:
        conn.execute(text("UPDATE campaign SET status = 'running'"))
    upgrade(engine)
    assert current_revision(engine) == head_revision()
