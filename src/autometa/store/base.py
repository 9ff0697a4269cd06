"""What every repository shares: how it gets sessions, portable upserts, and result pages."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import Engine, Table, bindparam
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


# This thread's open `shared_transaction`: (its session factory, its session).
_shared = threading.local()


def _open_shared(sessions: sessionmaker[Session]) -> Session | None:
    opened = getattr(_shared, "open", None)
    return opened[1] if opened is not None and opened[0] is sessions else None


@contextlib.contextmanager
def shared_transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """Every repository call of this thread on `sessions` inside the block, reads included, goes
    through one write transaction (committed at the end, all or nothing) instead of a session
    and a commit each. Nested use joins the open one.

    Why: the indexer applies a block's events as ~5 short transactions per run (each a pool
    checkout with its pre-ping, BEGIN and COMMIT); during a 1,000-run burst that bookkeeping was
    most of the scheduler's CPU."""
    opened = _open_shared(sessions)
    if opened is not None:
        yield opened
        return
    if getattr(_shared, "open", None) is not None:
        raise RuntimeError("another store's shared transaction is open in this thread")
    with write_session(sessions) as session:
        _shared.open = (sessions, session)
        try:
            yield session
        finally:
            _shared.open = None


class Repository:
    """Holds a session factory; every public method is one short transaction of its own, or a
    part of this thread's `shared_transaction` while one is open."""

    def __init__(self, sessions: sessionmaker[Session] | Engine) -> None:
        self._sessions = session_factory(sessions) if isinstance(sessions, Engine) else sessions

    @contextlib.contextmanager
    def _read(self) -> Iterator[Session]:
        shared = _open_shared(self._sessions)
        if shared is not None:
            yield shared
            return
        with self._sessions() as session:
            yield session

    def _write(self) -> contextlib.AbstractContextManager[Session]:
        shared = _open_shared(self._sessions)
        if shared is not None:
            return contextlib.nullcontext(shared)
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
    upsert_many(session, model, [values], keys, update)


def upsert_many(
    session: Session,
    model: type[Any],
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    update: Sequence[str] | None = None,
) -> None:
    """`upsert` of rows of one shape (the first row's columns) in one executemany: one round of
    the driver instead of a statement's whole execution path per row (one row: one execute)."""
    if not rows:
        return
    table = cast(Table, model.__table__)
    names = tuple(sorted(rows[0]))
    columns = tuple(c for c in (update if update is not None else names) if c not in keys)
    stmt = _upsert_statement(session.get_bind().dialect.name, table, names, tuple(keys), columns)
    session.execute(stmt, [dict(r) for r in rows])


@functools.lru_cache(maxsize=256)
def _upsert_statement(
    dialect: str, table: Table, names: tuple[str, ...], keys: tuple[str, ...], update: tuple[str, ...]
) -> Any:
    """One statement per shape, its values bound at execution: building and caching a new
    statement for every row (`.values(row)`) cost more CPU than running it (the indexer writes
    two escrow rows per run)."""
    if dialect not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"upserts need SQLite or PostgreSQL, not {dialect}")
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt: Any = insert(table).values({name: bindparam(name, type_=table.c[name].type) for name in names})
    if update:
        return stmt.on_conflict_do_update(index_elements=list(keys), set_={c: stmt.excluded[c] for c in update})
    return stmt.on_conflict_do_nothing(index_elements=list(keys))


def clamp_page(offset: int, limit: int) -> tuple[int, int]:
    if offset < 0:
        raise ValueError("offset must be >= 0")
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
    return offset, limit
