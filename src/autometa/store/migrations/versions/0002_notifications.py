"""Notifications: subscriptions, the event outbox, deliveries, the attempt log and used intent
nonces.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from autometa.store.types import BigIntPK, JSONDoc, UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notify_subscriptions",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(length=42), nullable=True),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("target_hint", sa.String(length=255), nullable=False),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("events", JSONDoc, nullable=False),
        sa.Column("workflow_ids", JSONDoc, nullable=True),
        sa.Column("runway_runs", sa.Integer(), nullable=False),
        sa.Column("runway_days", sa.Float(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_subscriptions")),
        sa.UniqueConstraint("owner", "name", name=op.f("uq_notify_subscriptions_owner_name")),
    )
    op.create_index(
        op.f("ix_notify_subscriptions_chain_id_owner_active"), "notify_subscriptions", ["chain_id", "owner", "active"]
    )
    op.create_table(
        "notify_events",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("owner", sa.String(length=42), nullable=True),
        sa.Column("workflow_id", sa.BigInteger(), nullable=True),
        sa.Column("payload", JSONDoc, nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_events")),
        sa.UniqueConstraint("key", name=op.f("uq_notify_events_key")),
    )
    op.create_index(
        op.f("ix_notify_events_chain_id_kind_created_at"), "notify_events", ["chain_id", "kind", "created_at"]
    )
    op.create_table(
        "notify_deliveries",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("subscription_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("lease_token", sa.String(length=36), nullable=True),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_deliveries")),
        sa.UniqueConstraint("event_id", "subscription_id", name=op.f("uq_notify_deliveries_event_id_subscription_id")),
    )
    op.create_index(
        op.f("ix_notify_deliveries_status_next_attempt_at"), "notify_deliveries", ["status", "next_attempt_at"]
    )
    op.create_index(op.f("ix_notify_deliveries_subscription_id_id"), "notify_deliveries", ["subscription_id", "id"])
    op.create_table(
        "notify_attempts",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("delivery_id", sa.BigInteger(), nullable=False),
        sa.Column("subscription_id", sa.BigInteger(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("worker", sa.String(length=128), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_attempts")),
    )
    op.create_index(op.f("ix_notify_attempts_subscription_id_id"), "notify_attempts", ["subscription_id", "id"])
    op.create_index(op.f("ix_notify_attempts_delivery_id"), "notify_attempts", ["delivery_id"])
    op.create_table(
        "notify_intents",
        sa.Column("owner", sa.String(length=42), nullable=False),
        sa.Column("nonce", sa.String(length=78), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("owner", "nonce", name=op.f("pk_notify_intents")),
    )


def downgrade() -> None:
    for table in ("notify_intents", "notify_attempts", "notify_deliveries", "notify_events", "notify_subscriptions"):
        op.drop_table(table)
