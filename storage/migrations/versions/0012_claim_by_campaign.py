"""claim by campaign: one campaign's due messages in order, off an index

Revision ID: 0012
Revises: 0011

The claim takes an equal share from each alert (docs/decisions.md, "Priority between
alerts"): one query per campaign, `campaign_id = ? AND state = 'queued' AND
next_attempt_at <= now ORDER BY next_attempt_at, id`. With (campaign_id, state) alone
PostgreSQL walked the primary key instead, through every message already sent
(26 ms a claim for an alert confirmed behind a 50,000-message one; 67 ms once 40,000
of a campaign were sent and the statistics lagged), and a campaign whose messages
all wait for a retry was read to its end on each claim. With the due time and the id
in the index, the order and the range are in it, on both databases; it still serves
the counts per (campaign, state).
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_message_campaign_state", table_name="message")
    op.create_index(
        "ix_message_campaign_state", "message", ["campaign_id", "state", "next_attempt_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_message_campaign_state", table_name="message")
    op.create_index("ix_message_campaign_state", "message", ["campaign_id", "state"])
