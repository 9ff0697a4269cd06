"""``Store``: one object holding the engine and every repository, for the CLI, API and workers."""

from __future__ import annotations

import contextlib
from types import TracebackType
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine.url import URL
from sqlalchemy.orm import Session

from autometa.store.base import shared_transaction
from autometa.store.checkpoints import CheckpointRepository
from autometa.store.db import create_db_engine, session_factory
from autometa.store.db import migrate as migrate_db
from autometa.store.escrow import EscrowRepository
from autometa.store.executions import ExecutionRepository
from autometa.store.heartbeats import HeartbeatRepository
from autometa.store.notifications import NotificationRepository
from autometa.store.sent_transactions import SentTransactionRepository
from autometa.store.workflows import WorkflowRepository


class Store:
    """The database behind Autometa. Cheap to share: repositories open a short session per
    call, and the engine is thread-safe. Close it (or use ``with``) to release connections."""

    def __init__(self, url: str | URL | Engine, **engine_options: Any) -> None:
        self._owns_engine = not isinstance(url, Engine)
        self.engine: Engine = url if isinstance(url, Engine) else create_db_engine(url, **engine_options)
        self.sessions = session_factory(self.engine)
        self.workflows = WorkflowRepository(self.sessions)
        self.executions = ExecutionRepository(self.sessions)
        self.escrow = EscrowRepository(self.sessions)
        self.heartbeats = HeartbeatRepository(self.sessions)
        self.checkpoints = CheckpointRepository(self.sessions)
        self.sent_transactions = SentTransactionRepository(self.sessions)
        self.notifications = NotificationRepository(self.sessions)

    @classmethod
    def open(cls, url: str | URL | Engine, migrate: bool = True, **engine_options: Any) -> Store:
        """A store on ``url``, migrated to the latest schema first unless ``migrate=False``."""
        store = cls(url, **engine_options)
        if migrate:
            store.migrate()
        return store

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def transaction(self) -> contextlib.AbstractContextManager[Session]:
        """This thread's repository calls inside the block as one transaction (see
        `store.base.shared_transaction`): the indexer applies a block's events in one."""
        return shared_transaction(self.sessions)

    def session(self) -> Session:
        """A plain ORM session, for queries no repository offers; the caller commits."""
        return self.sessions()

    def migrate(self) -> None:
        migrate_db(self.engine)

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)!r})"
