"""Workflows keep their trigger's data (the STATE / CRON / LOG kinds' packed `triggerData`).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("workflows") as batch:
        batch.add_column(sa.Column("trigger_data", sa.Text(), nullable=False, server_default="0x"))


def downgrade() -> None:
    with op.batch_alter_table("workflows") as batch:  # SQLite rebuilds the table
        batch.drop_column("trigger_data")
