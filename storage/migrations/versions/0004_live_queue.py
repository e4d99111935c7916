"""live queue: send events by time, campaigns still being enqueued, the claim order

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        # Existing campaigns were enqueued in one transaction: they are complete.
        batch_op.add_column(
            sa.Column("enqueued", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    with op.batch_alter_table("delivery_event", schema=None) as batch_op:
        batch_op.create_index("ix_delivery_event_source_at", ["source", "at"], unique=False)
    # Emergencies first, in the index itself: no sort of the whole queue on each claim.
    op.drop_index("ix_message_claim", table_name="message")
    op.create_index(
        "ix_message_claim", "message", ["state", sa.text("priority DESC"), "next_attempt_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_message_claim", table_name="message")
    op.create_index("ix_message_claim", "message", ["state", "priority", "next_attempt_at", "id"])
    with op.batch_alter_table("delivery_event", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_event_source_at")
    with op.batch_alter_table("campaign", schema=None) as batch_op:
        batch_op.drop_column("enqueued")
