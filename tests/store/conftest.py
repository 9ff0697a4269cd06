"""Every store test runs twice: on a SQLite file and on a real PostgreSQL server.

PostgreSQL isolation: each test session (each xdist worker) creates its own database, named
after the process and a random suffix, and drops it at the end, so parallel runs and other
people's tests never see each other's rows. Tests within a session share the migrated schema
and start from emptied tables. ``AUTOMETA_TEST_PG_URL`` points at another server.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import make_url

from autometa.store import Base, Store
from tests.conftest import fresh_pg_database

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


def _libpq(url: str) -> str:
    """The same URL in the form psycopg itself understands."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh, uniquely named database for this test session, dropped afterwards."""
    with fresh_pg_database("autometa_store") as url:
        yield url


@pytest.fixture(scope="session")
def _session_stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Store]]:
    stores: dict[str, Store] = {}
    yield stores
    for store in stores.values():
        store.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(
    backend: str,
    _session_stores: dict[str, Store],
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Store:
    """A migrated store with every table empty."""
    if backend not in _session_stores:
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'autometa.db'}"
        else:
            url = request.getfixturevalue("pg_database")
        _session_stores[backend] = Store.open(url)
    s = _session_stores[backend]
    tables = [t.name for t in Base.metadata.sorted_tables]
    with s.engine.begin() as conn:
        if backend == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))
    return s


@pytest.fixture
def empty_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database URL with nothing in it: a new SQLite file, or a new PostgreSQL schema (in the
    session's database) that the URL's search_path points at."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    base = request.getfixturevalue("pg_database")
    schema = f"s_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(base), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield (
            make_url(base)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with psycopg.connect(_libpq(base), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
