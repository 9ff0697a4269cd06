"""Initial schema: workflows, executions, escrow events, heartbeats, checkpoints, block hashes
and the transaction journal.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from autometa.store.types import Uint256, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "block_hashes",
        sa.Column("chain_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("block_number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "block_number", name=op.f("pk_block_hashes")),
    )
    op.create_table(
        "checkpoints",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_checkpoints")),
    )
    op.create_table(
        "escrow_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("account", sa.String(length=42), nullable=False),
        sa.Column("counterparty", sa.String(length=42), nullable=True),
        sa.Column("amount", Uint256(), nullable=False),
        sa.Column("workflow_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escrow_events")),
        sa.UniqueConstraint(
            "chain_id", "tx_hash", "log_index", "kind", name=op.f("uq_escrow_events_chain_id_tx_hash_log_index_kind")
        ),
    )
    op.create_index(op.f("ix_escrow_events_chain_id_account"), "escrow_events", ["chain_id", "account"], unique=False)
    op.create_index(
        op.f("ix_escrow_events_chain_id_block_number"), "escrow_events", ["chain_id", "block_number"], unique=False
    )
    op.create_index(
        op.f("ix_escrow_events_chain_id_counterparty"), "escrow_events", ["chain_id", "counterparty"], unique=False
    )
    op.create_table(
        "executions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("workflow_id", sa.BigInteger(), nullable=False),
        sa.Column("run_index", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("skip_reason", sa.String(length=32), nullable=True),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("gas_used", sa.BigInteger(), nullable=True),
        sa.Column("gas_price", Uint256(), nullable=True),
        sa.Column("fee", Uint256(), nullable=True),
        sa.Column("premium_bps", sa.Integer(), nullable=True),
        sa.Column("price", Uint256(), nullable=True),
        sa.Column("price_source", sa.String(length=32), nullable=True),
        sa.Column("executor", sa.String(length=42), nullable=True),
        sa.Column("revert_reason", sa.Text(), nullable=True),
        sa.Column("triggered_at", UTCDateTime(), nullable=True),
        sa.Column("included_at", UTCDateTime(), nullable=True),
        sa.Column("latency_s", sa.Float(), nullable=True),
        sa.Column("log_index", sa.Integer(), nullable=True),
        sa.Column("reported_at", UTCDateTime(), nullable=True),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_executions")),
        sa.UniqueConstraint("chain_id", "tx_hash", "log_index", name=op.f("uq_executions_chain_id_tx_hash_log_index")),
    )
    op.create_index(
        op.f("ix_executions_chain_id_block_number"), "executions", ["chain_id", "block_number"], unique=False
    )
    op.create_index(
        op.f("ix_executions_chain_id_workflow_id_run_index"),
        "executions",
        ["chain_id", "workflow_id", "run_index"],
        unique=False,
    )
    op.create_index(op.f("ix_executions_occurred_at"), "executions", ["occurred_at"], unique=False)
    op.create_index(op.f("ix_executions_status_occurred_at"), "executions", ["status", "occurred_at"], unique=False)
    op.create_index(op.f("ix_executions_workflow_id"), "executions", ["workflow_id"], unique=False)
    op.create_index(
        "uq_executions_offchain",
        "executions",
        ["chain_id", "workflow_id", "run_index", "tx_hash"],
        unique=True,
        sqlite_where=sa.text("log_index IS NULL"),
        postgresql_where=sa.text("log_index IS NULL"),
    )
    op.create_table(
        "heartbeats",
        sa.Column("worker_id", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=True),
        sa.Column("version", sa.String(length=64), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen", UTCDateTime(), nullable=False),
        sa.Column(
            "extra", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=True
        ),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_heartbeats")),
    )
    op.create_index(op.f("ix_heartbeats_last_seen"), "heartbeats", ["last_seen"], unique=False)
    op.create_table(
        "sent_transactions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("sender", sa.String(length=42), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("raw_tx", sa.Text(), nullable=False),
        sa.Column("tx_type", sa.String(length=16), nullable=False),
        sa.Column("max_fee_per_gas", Uint256(), nullable=True),
        sa.Column("max_priority_fee_per_gas", Uint256(), nullable=True),
        sa.Column("gas_price", Uint256(), nullable=True),
        sa.Column("gas_limit", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("replaced_by", sa.String(length=66), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sent_transactions")),
        sa.UniqueConstraint("tx_hash", name=op.f("uq_sent_transactions_tx_hash")),
    )
    op.create_index(
        op.f("ix_sent_transactions_chain_id_sender_nonce"),
        "sent_transactions",
        ["chain_id", "sender", "nonce"],
        unique=False,
    )
    op.create_index(
        op.f("ix_sent_transactions_chain_id_sender_status"),
        "sent_transactions",
        ["chain_id", "sender", "status"],
        unique=False,
    )
    op.create_table(
        "workflows",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(length=42), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("trigger_kind", sa.Integer(), nullable=False),
        sa.Column("action_kind", sa.Integer(), nullable=False),
        sa.Column("comparator", sa.Integer(), nullable=False),
        sa.Column("start_time", sa.BigInteger(), nullable=False),
        sa.Column("end_time", sa.BigInteger(), nullable=False),
        sa.Column("interval", sa.BigInteger(), nullable=False),
        sa.Column("price_usd", Uint256(), nullable=False),
        sa.Column("asset", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=42), nullable=False),
        sa.Column("token", sa.String(length=42), nullable=True),
        sa.Column("amount", Uint256(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("max_runs", sa.BigInteger(), nullable=False),
        sa.Column("gas_limit", sa.BigInteger(), nullable=False),
        sa.Column("max_fee_per_run", Uint256(), nullable=False),
        sa.Column("run_count", sa.BigInteger(), nullable=False),
        sa.Column("last_run", sa.BigInteger(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("created_block", sa.BigInteger(), nullable=False),
        sa.Column("created_tx", sa.String(length=66), nullable=True),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
        sa.Column("updated_log_index", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflows")),
    )
    op.create_index(
        op.f("ix_workflows_chain_id_created_block"), "workflows", ["chain_id", "created_block"], unique=False
    )
    op.create_index(
        op.f("ix_workflows_chain_id_updated_block"), "workflows", ["chain_id", "updated_block"], unique=False
    )
    op.create_index(op.f("ix_workflows_owner_id"), "workflows", ["owner", "id"], unique=False)
    op.create_index(op.f("ix_workflows_status"), "workflows", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_workflows_status"), table_name="workflows")
    op.drop_index(op.f("ix_workflows_owner_id"), table_name="workflows")
    op.drop_index(op.f("ix_workflows_chain_id_updated_block"), table_name="workflows")
    op.drop_index(op.f("ix_workflows_chain_id_created_block"), table_name="workflows")
    op.drop_table("workflows")
    op.drop_index(op.f("ix_sent_transactions_chain_id_sender_status"), table_name="sent_transactions")
    op.drop_index(op.f("ix_sent_transactions_chain_id_sender_nonce"), table_name="sent_transactions")
    op.drop_table("sent_transactions")
    op.drop_index(op.f("ix_heartbeats_last_seen"), table_name="heartbeats")
    op.drop_table("heartbeats")
    op.drop_index("uq_executions_offchain", table_name="executions")
    op.drop_index(op.f("ix_executions_workflow_id"), table_name="executions")
    op.drop_index(op.f("ix_executions_status_occurred_at"), table_name="executions")
    op.drop_index(op.f("ix_executions_occurred_at"), table_name="executions")
    op.drop_index(op.f("ix_executions_chain_id_workflow_id_run_index"), table_name="executions")
    op.drop_index(op.f("ix_executions_chain_id_block_number"), table_name="executions")
    op.drop_table("executions")
    op.drop_index(op.f("ix_escrow_events_chain_id_counterparty"), table_name="escrow_events")
    op.drop_index(op.f("ix_escrow_events_chain_id_block_number"), table_name="escrow_events")
    op.drop_index(op.f("ix_escrow_events_chain_id_account"), table_name="escrow_events")
    op.drop_table("escrow_events")
    op.drop_table("checkpoints")
    op.drop_table("block_hashes")
