"""state checks: the database holds message states and campaign statuses to the ledger's names

Revision ID: 0009
Revises: 0008

The values are written out here, not imported: a migration describes the schema as it
was at this revision (console/sending/states.py may grow a state later, with its own
migration). tests/unit/test_migrations.py checks they equal the enums today.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

MESSAGE_STATES = (
    "queued",
    "sending",
    "submitted",
    "delivered",
    "undelivered",
    "expired",
    "rejected",
    "failed",
    "skipped",
    "uncertain",
)
CAMPAIGN_STATUSES = ("queued", "running", "paused", "cancelled", "done")

# (table, constraint, column, allowed values). A delivery event records the state it
# reports or moved to, so it takes the message states too.
CHECKS = (
    ("message", "ck_message_state", "state", MESSAGE_STATES),
    ("delivery_event", "ck_delivery_event_state", "state", MESSAGE_STATES),
    ("campaign", "ck_campaign_status", "status", CAMPAIGN_STATUSES),
)


def _condition(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def _restore_claim_index() -> None:
    # The copy reflects the claim index without its DESC (SQLite's reflection drops
    # it): put back the one 0004 made, so claims still read the queue off the index.
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index("ix_message_claim", table_name="message")
        op.create_index(
            "ix_message_claim",
            "message",
            ["state", sa.text("priority DESC"), "next_attempt_at", "id"],
        )


def upgrade() -> None:
    for table, name, column, values in CHECKS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_check_constraint(name, _condition(column, values))
    _restore_claim_index()


def downgrade() -> None:
    for table, name, _column, _values in reversed(CHECKS):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(name, type_="check")
    _restore_claim_index()
