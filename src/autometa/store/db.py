"""Engines, sessions and migrations.

SQLite is the zero-setup default, shared by several threads and processes (API, executor,
indexer), so it runs in WAL mode with a busy timeout and takes its write lock up front in
write transactions. PostgreSQL gets a small pre-pinged pool.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Execution option a write transaction sets to start SQLite with BEGIN IMMEDIATE.
SQLITE_IMMEDIATE = "autometa_sqlite_immediate"

# pg_advisory_xact_lock key held while migrating, so concurrent start-ups migrate once.
_MIGRATE_LOCK = 0x4155_544F_4D45_5441 & 0x7FFF_FFFF_FFFF_FFFF  # "AUTOMETA"

SQLITE_BUSY_TIMEOUT_S = 30.0


def normalize_url(url: str | URL) -> URL:
    """Pick the installed driver: plain ``postgresql://``/``postgres://`` URLs mean psycopg 3."""
    if isinstance(url, str) and url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def create_db_engine(url: str | URL, *, echo: bool = False, **kwargs: Any) -> Engine:
    """An engine configured for how Autometa uses the database (see the module docstring)."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, echo=echo, **kwargs)
    options: dict[str, Any] = {
        "pool_size": 5,
        "max_overflow": 10,
        "pool_timeout": 30,
        "pool_recycle": 1800,
        "pool_pre_ping": True,
    }
    if parsed.get_backend_name() == "postgresql":
        connect_args = {"connect_timeout": 10, "application_name": "autometa"}
        connect_args.update(kwargs.pop("connect_args", {}))
        options["connect_args"] = connect_args
    options.update(kwargs)
    return create_engine(parsed, echo=echo, **options)


def _sqlite_engine(url: URL, *, echo: bool, **kwargs: Any) -> Engine:
    memory = url.database in (None, "", ":memory:")
    if not memory and url.database:
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    connect_args = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S}
    connect_args.update(kwargs.pop("connect_args", {}))
    options: dict[str, Any] = {"connect_args": connect_args}
    if memory:
        # One shared connection, or every thread would see its own empty database.
        options["poolclass"] = StaticPool
    options.update(kwargs)
    engine = create_engine(url, echo=echo, **options)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A read-then-write transaction that began DEFERRED fails with "database is locked"
        # (no busy wait) when another writer got in first; IMMEDIATE waits for the lock instead.
        immediate = conn.get_execution_options().get(SQLITE_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose objects stay readable after commit, since repositories return them."""
    return sessionmaker(engine, expire_on_commit=False)


@contextlib.contextmanager
def write_session(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """A session in one write transaction, committed on success; on SQLite it holds the write
    lock from its first statement, so check-then-insert sequences cannot interleave, and waits
    for it in a fair queue (``store.writer_lock``) rather than SQLite's busy polling."""
    from autometa.store.writer_lock import writer_lock

    bind = sessions.kw.get("bind")
    with writer_lock(bind if isinstance(bind, Engine) else None), sessions.begin() as session:
        if session.get_bind().dialect.name == "sqlite":
            session.connection(execution_options={SQLITE_IMMEDIATE: True})
        yield session


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """An alembic Config built in code: the package ships no alembic.ini."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def migrate(url_or_engine: str | URL | Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``. Safe to call on every start-up and from several
    processes at once: already-applied revisions are skipped, and concurrent callers wait.
    A database already at the head is recognised with one query, without loading alembic (and
    mako): every long-running process opens the store, and those libraries cost each ~6 MB."""
    engine = url_or_engine if isinstance(url_or_engine, Engine) else create_db_engine(url_or_engine)
    try:
        with contextlib.suppress(ValueError):  # several recorded revisions: alembic's to sort out
            if revision == "head" and current_revision(engine) == HEAD_REVISION:
                return
        from alembic import command

        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                conn = conn.execution_options(**{SQLITE_IMMEDIATE: True})
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATE_LOCK})
                command.upgrade(alembic_config(conn), revision)
    finally:
        if engine is not url_or_engine:
            engine.dispose()


def _migration_head() -> str:
    """The newest revision, from the migration files' names (`NNNN_what.py` holds revision
    `NNNN`, each revising the one before; tests/store checks this against alembic's head)."""
    return max(p.name.split("_", 1)[0] for p in (MIGRATIONS_DIR / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


HEAD_REVISION = _migration_head()


def current_revision(engine: Engine) -> str | None:
    """The revision alembic recorded in the database (None: never migrated), read with one
    query instead of through alembic, which `migrate`'s check at every start would load. Several
    recorded revisions (a branched history, which our migrations never make) raise ValueError,
    as alembic refuses them too."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) > 1:
        raise ValueError(f"the database records several revisions ({', '.join(rows)})")
    return rows[0] if rows else None


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
