"""city scale: per-campaign state tallies kept by triggers, indexes for what grew

Revision ID: 0013
Revises: 0012

- campaign_tally: messages per (campaign, state), kept by triggers on `message` in
  the same transaction as every insert, state change and delete, so live figures
  read a few rows instead of counting the ledger (docs/decisions.md, "City scale").
  SQLite (one writer) keeps one row per (campaign, state). PostgreSQL's statement
  triggers append one delta row per (campaign, state) a statement touched, so
  concurrent workers never wait on a shared counter row; the worker folds them
  (console.sending.tallies.fold_tallies). A reader sums the rows either way.
- ix_message_campaign_id (campaign, id): a campaign's message page in id order,
  read off the index instead of sorting the whole campaign.
- ix_message_campaign_state is 0012's (campaign, state, next_attempt_at, id): the
  claim's order, and a campaign's pages by state.
- ix_suppression_created_at: an enqueue reads the STOP list once, then per chunk
  only the entries recorded since.
- ix_contact_live_zone and ix_contact_live_sendable, partial on erased_at IS NULL:
  the quartier list and the base's counts from the index alone.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_SQLITE_ADD = """
    UPDATE campaign_tally SET n = n + 1
    WHERE campaign_id = NEW.campaign_id AND state = NEW.state;
    INSERT INTO campaign_tally (campaign_id, state, n)
    SELECT NEW.campaign_id, NEW.state, 1
    WHERE NOT EXISTS (
        SELECT 1 FROM campaign_tally WHERE campaign_id = NEW.campaign_id AND state = NEW.state
    );"""
_SQLITE_REMOVE = """
    UPDATE campaign_tally SET n = n - 1
    WHERE campaign_id = OLD.campaign_id AND state = OLD.state;"""
SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER message_tally_insert AFTER INSERT ON message
    BEGIN {_SQLITE_ADD}
    END""",
    f"""CREATE TRIGGER message_tally_update AFTER UPDATE OF state, campaign_id ON message
    WHEN OLD.state IS NOT NEW.state OR OLD.campaign_id IS NOT NEW.campaign_id
    BEGIN {_SQLITE_REMOVE} {_SQLITE_ADD}
    END""",
    f"""CREATE TRIGGER message_tally_delete AFTER DELETE ON message
    BEGIN {_SQLITE_REMOVE}
    END""",
)

# PostgreSQL: statement triggers with transition tables (one INSERT of a claim's 200
# rows appends two delta rows, not 400 updates of one hot row).
_PG_FUNCTION = """
CREATE FUNCTION message_tally_{name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO campaign_tally (campaign_id, state, n)
    SELECT campaign_id, state, sum(n) FROM ({rows}) AS d
    GROUP BY campaign_id, state HAVING sum(n) <> 0;
    RETURN NULL;
END $$"""
_NEW = "SELECT campaign_id, state, 1 AS n FROM new_rows"
_OLD = "SELECT campaign_id, state, -1 AS n FROM old_rows"
PG_TRIGGERS = (
    ("insert", "INSERT", "NEW TABLE AS new_rows", _NEW),
    ("update", "UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows", f"{_NEW} UNION ALL {_OLD}"),
    ("delete", "DELETE", "OLD TABLE AS old_rows", _OLD),
)


def upgrade() -> None:
    op.create_table(
        "campaign_tally",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_campaign_tally", "campaign_tally", ["campaign_id", "state"])
    op.execute(
        "INSERT INTO campaign_tally (campaign_id, state, n) "
        "SELECT campaign_id, state, count(*) FROM message GROUP BY campaign_id, state"
    )
    if op.get_bind().dialect.name == "sqlite":
        for trigger in SQLITE_TRIGGERS:
            op.execute(trigger)
    else:
        for name, event, tables, rows in PG_TRIGGERS:
            op.execute(_PG_FUNCTION.format(name=name, rows=rows))
            op.execute(
                f"CREATE TRIGGER message_tally_{name} AFTER {event} ON message "
                f"REFERENCING {tables} FOR EACH STATEMENT "
                f"EXECUTE FUNCTION message_tally_{name}()"
            )
    op.create_index("ix_message_campaign_id", "message", ["campaign_id", "id"])
    live = sa.text("erased_at IS NULL")
    for name, column in (
        ("ix_contact_live_zone", "zone"),
        ("ix_contact_live_sendable", "sendable"),
    ):
        # erased_at in the index too: SQLite reads a partial index's own condition
        # from the table unless the index carries the column (then the count is covered).
        op.create_index(
            name, "contact", [column, "erased_at"], sqlite_where=live, postgresql_where=live
        )
    op.create_index("ix_suppression_created_at", "suppression", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_suppression_created_at", table_name="suppression")
    op.drop_index("ix_contact_live_sendable", table_name="contact")
    op.drop_index("ix_contact_live_zone", table_name="contact")
    op.drop_index("ix_message_campaign_id", table_name="message")
    if op.get_bind().dialect.name == "sqlite":
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER message_tally_{name}")
    else:
        for name, *_ in PG_TRIGGERS:
            op.execute(f"DROP TRIGGER message_tally_{name} ON message")
            op.execute(f"DROP FUNCTION message_tally_{name}()")
    op.drop_index("ix_campaign_tally", table_name="campaign_tally")
    op.drop_table("campaign_tally")
