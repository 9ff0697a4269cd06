"""Autometa's database: SQLite by default, PostgreSQL via ``DATABASE_URL``.

``Store.open(settings.database_url)`` migrates and returns the facade with one repository per
concept; the models and column types are here for the API's queries and schemas.
"""

from autometa.store import notify_models as notify_models  # registers the notification tables
from autometa.store.base import Page, Repository
from autometa.store.checkpoints import CheckpointRepository
from autometa.store.db import create_db_engine, current_revision, head_revision, migrate, session_factory
from autometa.store.escrow import KINDS as ESCROW_KINDS
from autometa.store.escrow import EscrowRepository
from autometa.store.executions import (
    PRICE_SOURCES,
    SKIP_REASONS,
    ExecutionRepository,
    ExecutionStats,
)
from autometa.store.executions import STATUSES as EXECUTION_STATUSES
from autometa.store.facade import Store
from autometa.store.heartbeats import ROLES, HeartbeatRepository
from autometa.store.models import (
    Base,
    BlockHash,
    Checkpoint,
    EscrowEvent,
    Execution,
    Heartbeat,
    SentTransaction,
    Workflow,
)
from autometa.store.sent_transactions import TX_STATUSES, TX_TYPES, SentTransactionRepository
from autometa.store.workflows import WorkflowRepository

__all__ = [
    "ESCROW_KINDS",
    "EXECUTION_STATUSES",
    "PRICE_SOURCES",
    "ROLES",
    "SKIP_REASONS",
    "TX_STATUSES",
    "TX_TYPES",
    "Base",
    "BlockHash",
    "Checkpoint",
    "CheckpointRepository",
    "EscrowEvent",
    "EscrowRepository",
    "Execution",
    "ExecutionRepository",
    "ExecutionStats",
    "Heartbeat",
    "HeartbeatRepository",
    "Page",
    "Repository",
    "SentTransaction",
    "SentTransactionRepository",
    "Store",
    "Workflow",
    "WorkflowRepository",
    "create_db_engine",
    "current_revision",
    "head_revision",
    "migrate",
    "session_factory",
]
