"""Workflows keep their trigger's data (the STATE / CRON / LOG kinds' packed `triggerData`).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("workflows", sa.Column("trigger_data", sa.Text(), nullable=False, server_default="0x"))


def downgrade() -> None:
    op.drop_column("workflows", "trigger_data")
