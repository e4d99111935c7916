"""consent audit: inbound messages (proof and review queue), rented lists' provenance,
the replay's index on consent events

Revision ID: 0011
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "inbound_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("provider", _text(32), nullable=False),
        sa.Column("provider_ref", _text(100), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("number", _text(20), nullable=False),
        sa.Column("text", _text(2000), nullable=False),
        sa.Column("kind", _text(16), nullable=False),
        sa.Column("status", _text(16), nullable=False),
        sa.Column("decision", _text(500), nullable=False),
        sa.Column("classified_by", _text(100), nullable=False),
        sa.Column("classified_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["contact_id"], ["contact.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_inbound_message_contact_id", "inbound_message", ["contact_id"], unique=False
    )
    op.create_index(
        "ix_inbound_message_review", "inbound_message", ["status", "received_at"], unique=False
    )
    op.create_table(
        "contact_list",
        sa.Column("name", _text(64), nullable=False),
        sa.Column("provider", _text(200), nullable=False),
        sa.Column("contract_ref", _text(200), nullable=False),
        sa.Column("consented_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("wording", _text(2000), nullable=False),
        sa.Column("topics", _text(500), nullable=False),
        sa.Column("proof_file", _text(300), nullable=False),
        sa.Column("proof_sha256", _text(64), nullable=False),
        sa.Column("expiry_months", sa.Integer(), nullable=False),
        sa.Column("created_by", _text(100), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )

    op.create_index(
        "ix_consent_event_replay",
        "consent_event",
        [
            "contact_id",
            "topic",
            sa.text("occurred_at DESC"),
            sa.text("seq DESC"),
            "recorded_at",
            "action",
        ],
    )


def downgrade() -> None:
    op.drop_index("ix_consent_event_replay", table_name="consent_event")
    op.drop_table("contact_list")
    op.drop_index("ix_inbound_message_review", table_name="inbound_message")
    op.drop_index("ix_inbound_message_contact_id", table_name="inbound_message")
    op.drop_table("inbound_message")
