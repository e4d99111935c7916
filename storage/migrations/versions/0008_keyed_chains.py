"""keyed chains: where each chain's HMAC links begin, and the head's own HMAC

Revision ID: 0008
Revises: 0004

A migration has no key, so it cannot re-hash anything: the entries already in a
chain keep their plain SHA-256 links, and `keyed_from` says the next entry is the
first one linked by HMAC. `tocsin audit rekey`, run once by the admin with the key,
re-hashes the old entries under it (see docs/decisions.md, "Keyed chains").
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0008"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chain_head", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("keyed_from", sa.Integer(), nullable=False, server_default="1")
        )
        batch_op.add_column(
            sa.Column(
                "mac",
                sqlmodel.sql.sqltypes.AutoString(length=64),
                nullable=False,
                server_default="",
            )
        )
    op.execute("UPDATE chain_head SET keyed_from = seq + 1")


def downgrade() -> None:
    with op.batch_alter_table("chain_head", schema=None) as batch_op:
        batch_op.drop_column("mac")
        batch_op.drop_column("keyed_from")
