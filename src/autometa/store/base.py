"""What every repository shares: how it gets sessions, portable upserts, and result pages."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import Engine, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.dml import Insert

from autometa.store.db import session_factory, write_session

T = TypeVar("T")

MAX_PAGE = 1000


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing plus the total across all pages, for the API's pagination."""

    items: list[T]
    total: int
    offset: int
    limit: int


class Repository:
    """Holds a session factory; every public method is one short transaction of its own."""

    def __init__(self, sessions: sessionmaker[Session] | Engine) -> None:
        self._sessions = session_factory(sessions) if isinstance(sessions, Engine) else sessions

    @contextlib.contextmanager
    def _read(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session

    def _write(self) -> contextlib.AbstractContextManager[Session]:
        return write_session(self._sessions)


def insert_for(session: Session, table: Table) -> Insert:
    """The dialect's INSERT, which knows ON CONFLICT (both backends spell it the same way)."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"upserts need SQLite or PostgreSQL, not {name}")


def upsert(
    session: Session,
    model: type[Any],
    values: Mapping[str, Any],
    keys: Sequence[str],
    update: Sequence[str] | None = None,
) -> None:
    """INSERT, or UPDATE ``update`` columns (default: all but the keys) if ``keys`` exist."""
    table = cast(Table, model.__table__)
    stmt: Any = insert_for(session, table).values(dict(values))
    columns = [c for c in (update if update is not None else values) if c not in keys]
    if columns:
        stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_={c: stmt.excluded[c] for c in columns})
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
    session.execute(stmt)


def clamp_page(offset: int, limit: int) -> tuple[int, int]:
    if offset < 0:
        raise ValueError("offset must be >= 0")
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
    return offset, limit
