"""The ORM models: one class per table. The alembic migrations are the schema's source of truth;
``tests/store/test_migrations.py`` checks these models never drift from them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from autometa.store.types import BigIntPK, JSONDoc, Uint256, UTCDateTime, utcnow

# Deterministic constraint names, so later migrations can alter them on both backends.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Workflow(Base):
    """A workflow as the indexer last saw it on-chain. On-chain times are unix seconds, as the
    contract keeps them; ``updated_block``/``updated_log_index`` mark the last event applied so
    replaying a range of blocks never applies an event twice."""

    __tablename__ = "workflows"

    # A workflow id is only unique within one contract on one chain: two chains (or two
    # deployments on one chain) both number their workflows from 1.
    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    contract: Mapped[str] = mapped_column(String(42), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    owner: Mapped[str] = mapped_column(String(42))
    status: Mapped[int] = mapped_column(Integer)
    trigger_kind: Mapped[int] = mapped_column(Integer)
    action_kind: Mapped[int] = mapped_column(Integer)
    comparator: Mapped[int] = mapped_column(Integer, default=0)
    start_time: Mapped[int] = mapped_column(BigInteger, default=0)
    end_time: Mapped[int] = mapped_column(BigInteger, default=0)
    interval: Mapped[int] = mapped_column(BigInteger, default=0)
    price_usd: Mapped[int] = mapped_column(Uint256, default=0)
    asset: Mapped[str] = mapped_column(String(64), default="")
    target: Mapped[str] = mapped_column(String(42))
    token: Mapped[str | None] = mapped_column(String(42), nullable=True)
    amount: Mapped[int] = mapped_column(Uint256, default=0)
    data: Mapped[str] = mapped_column(Text, default="0x")
    trigger_data: Mapped[str] = mapped_column(Text, default="0x")  # STATE / CRON / LOG (issue 15)
    max_runs: Mapped[int] = mapped_column(BigInteger, default=0)
    gas_limit: Mapped[int] = mapped_column(BigInteger)
    max_fee_per_run: Mapped[int] = mapped_column(Uint256)
    run_count: Mapped[int] = mapped_column(BigInteger, default=0)
    last_run: Mapped[int] = mapped_column(BigInteger, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    created_block: Mapped[int] = mapped_column(BigInteger)
    created_tx: Mapped[str | None] = mapped_column(String(66), nullable=True)
    updated_block: Mapped[int] = mapped_column(BigInteger)
    updated_log_index: Mapped[int] = mapped_column(Integer, default=-1)

    __table_args__ = (
        Index(None, "owner", "id"),
        Index(None, "status"),
        Index(None, "chain_id", "created_block"),
        Index(None, "chain_id", "updated_block"),
    )


class Execution(Base):
    """One run attempt of a workflow. On-chain facts (status, gas, fee, block) come from the
    indexer; off-chain facts (price source, trigger time) from the executor, in either order.

    ``occurred_at`` is what listings sort and filter by: the block time once included, else the
    trigger time, else when the row was written. ``reported_at`` is set once the executor
    reported, so a reorg keeps its facts (row back to 'pending') instead of deleting them.
    """

    __tablename__ = "executions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    contract: Mapped[str] = mapped_column(String(42))
    workflow_id: Mapped[int] = mapped_column(BigInteger, index=True)
    run_index: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    skip_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    tx_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    gas_used: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    gas_price: Mapped[int | None] = mapped_column(Uint256, nullable=True)
    fee: Mapped[int | None] = mapped_column(Uint256, nullable=True)
    premium_bps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    price: Mapped[int | None] = mapped_column(Uint256, nullable=True)
    price_source: Mapped[str | None] = mapped_column(String(32), nullable=True)
    executor: Mapped[str | None] = mapped_column(String(42), nullable=True)
    revert_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    triggered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    included_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    latency_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    log_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        # Re-indexing a log is an update, never a second row.
        UniqueConstraint("chain_id", "tx_hash", "log_index"),
        # At most one not-yet-indexed row per run and transaction (NULLs never collide above).
        Index(
            "uq_executions_offchain",
            "chain_id",
            "contract",
            "workflow_id",
            "run_index",
            "tx_hash",
            unique=True,
            sqlite_where=text("log_index IS NULL"),
            postgresql_where=text("log_index IS NULL"),
        ),
        Index(None, "chain_id", "contract", "workflow_id", "run_index"),
        Index(None, "chain_id", "block_number"),
        Index(None, "occurred_at"),
        Index(None, "status", "occurred_at"),
    )


class EscrowEvent(Base):
    """One movement of escrowed native coin, for reconciling balances against the chain.

    ``account`` is the balance the movement is about and ``amount`` is always positive; the
    kind says the direction (see ``autometa.store.escrow.KINDS``). One log may yield several rows
    of different kinds (a run's fee and the native value it sent), hence ``kind`` in the key.
    """

    __tablename__ = "escrow_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    contract: Mapped[str] = mapped_column(String(42))
    block_number: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    account: Mapped[str] = mapped_column(String(42))
    counterparty: Mapped[str | None] = mapped_column(String(42), nullable=True)
    amount: Mapped[int] = mapped_column(Uint256)
    workflow_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("chain_id", "tx_hash", "log_index", "kind"),
        Index(None, "chain_id", "contract", "account"),
        Index(None, "chain_id", "counterparty"),
        Index(None, "chain_id", "block_number"),
    )


class Heartbeat(Base):
    """The last sign of life of one worker process on one chain (``chain_id`` 0: a process
    bound to no chain). A process serving several chains beats once per chain."""

    __tablename__ = "heartbeats"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    worker_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    role: Mapped[str] = mapped_column(String(32))
    address: Mapped[str | None] = mapped_column(String(42), nullable=True)
    version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc, nullable=True)


class Checkpoint(Base):
    """How far a named consumer (e.g. ``indexer:31337:0x…``) has processed a chain; ``chain_id``
    0 for a checkpoint of no chain."""

    __tablename__ = "checkpoints"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str | None] = mapped_column(String(66), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BlockHash(Base):
    """Recent canonical block hashes, to notice a reorg and find the common ancestor."""

    __tablename__ = "block_hashes"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    block_number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    block_hash: Mapped[str] = mapped_column(String(66))


class SentTransaction(Base):
    """The transaction sender's journal: a signed transaction is written here before it is
    broadcast, so a restarted process rebroadcasts or replaces it instead of signing a new one."""

    __tablename__ = "sent_transactions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    sender: Mapped[str] = mapped_column(String(42))
    nonce: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66), unique=True)
    raw_tx: Mapped[str] = mapped_column(Text)
    tx_type: Mapped[str] = mapped_column(String(16))
    max_fee_per_gas: Mapped[int | None] = mapped_column(Uint256, nullable=True)
    max_priority_fee_per_gas: Mapped[int | None] = mapped_column(Uint256, nullable=True)
    gas_price: Mapped[int | None] = mapped_column(Uint256, nullable=True)
    gas_limit: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(String(64))
    block_number: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    replaced_by: Mapped[str | None] = mapped_column(String(66), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index(None, "chain_id", "sender", "status"),
        Index(None, "chain_id", "sender", "nonce"),
    )
