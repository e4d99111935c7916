"""planning: events, schedules, occurrences; campaigns tagged with their schedule

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_str = sqlmodel.sql.sqltypes.AutoString
_time = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.add_column(sa.Column("schedule_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("send_until", _time(), nullable=True))
        batch_op.add_column(sa.Column("valid_until", _time(), nullable=True))
        batch_op.create_index("ix_campaign_schedule_id", ["schedule_id"], unique=False)
    op.create_table(
        "event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", _str(length=500), nullable=True),
        sa.Column("name", _str(length=300), nullable=False),
        sa.Column("place", _str(length=300), nullable=False),
        sa.Column("topic", _str(length=50), nullable=False),
        sa.Column("audience", _str(), nullable=False),
        sa.Column("starts_at", _time(), nullable=False),
        sa.Column("status", _str(length=16), nullable=False),
        sa.Column("source", _str(length=100), nullable=False),
        sa.Column("created_by", _str(length=100), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.ForeignKeyConstraint(["topic"], ["topic.key"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uid"),
    )
    op.create_index("ix_event_starts_at", "event", ["starts_at"], unique=False)
    op.create_table(
        "schedule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", _str(length=16), nullable=False),
        sa.Column("topic", _str(length=50), nullable=False),
        sa.Column("text", _str(), nullable=False),
        sa.Column("sender_id", _str(length=11), nullable=False),
        sa.Column("audience", _str(), nullable=False),
        sa.Column("at_local", _str(length=16), nullable=False),
        sa.Column("cron", _str(length=100), nullable=False),
        sa.Column("first_day", _str(length=10), nullable=False),
        sa.Column("last_day", _str(length=10), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("offset_days", sa.Integer(), nullable=False),
        sa.Column("valid_until", _time(), nullable=True),
        sa.Column("justification", _str(length=1000), nullable=False),
        sa.Column("status", _str(length=16), nullable=False),
        sa.Column("next_due_at", _time(), nullable=True),
        sa.Column("cursor_local", _str(length=16), nullable=False),
        sa.Column("created_by", _str(length=100), nullable=False),
        sa.Column("created_at", _time(), nullable=False),
        sa.Column("updated_at", _time(), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["event.id"]),
        sa.ForeignKeyConstraint(["topic"], ["topic.key"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_schedule_due", "schedule", ["status", "next_due_at"], unique=False)
    op.create_index("ix_schedule_event_id", "schedule", ["event_id"], unique=False)
    op.create_table(
        "occurrence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule_id", sa.Integer(), nullable=False),
        sa.Column("local_key", _str(length=16), nullable=False),
        sa.Column("due_at", _time(), nullable=False),
        sa.Column("state", _str(length=16), nullable=False),
        sa.Column("reason", _str(length=200), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("capped", sa.Integer(), nullable=False),
        sa.Column("recorded_at", _time(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
        sa.ForeignKeyConstraint(["schedule_id"], ["schedule.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("schedule_id", "local_key", name="uq_occurrence_schedule_local"),
    )
    op.create_index("ix_occurrence_state", "occurrence", ["state"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_occurrence_state", table_name="occurrence")
    op.drop_table("occurrence")
    op.drop_index("ix_schedule_event_id", table_name="schedule")
    op.drop_index("ix_schedule_due", table_name="schedule")
    op.drop_table("schedule")
    op.drop_index("ix_event_starts_at", table_name="event")
    op.drop_table("event")
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.drop_index("ix_campaign_schedule_id")
        batch_op.drop_column("valid_until")
        batch_op.drop_column("send_until")
        batch_op.drop_column("schedule_id")
