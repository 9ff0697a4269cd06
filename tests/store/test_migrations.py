"""The shipped migrations build the schema the models describe, from nothing, any number of
times, from several processes at once."""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from autometa.store import Base, Store, create_db_engine, current_revision, head_revision, migrate
from autometa.store.db import alembic_config

TABLES = {
    "workflows",
    "executions",
    "escrow_events",
    "heartbeats",
    "checkpoints",
    "block_hashes",
    "sent_transactions",
}


def test_migrate_from_empty_matches_models(empty_url: str) -> None:
    engine = create_db_engine(empty_url)
    try:
        assert current_revision(engine) is None
        migrate(empty_url)
        assert current_revision(engine) == head_revision()
        assert TABLES <= set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_migrate_is_idempotent_and_keeps_data(empty_url: str) -> None:
    with Store.open(empty_url) as store:
        store.checkpoints.set(1, "indexer:1:0xabc", 42)
        store.migrate()
        migrate(empty_url)
        assert current_revision(store.engine) == head_revision()
        cp = store.checkpoints.get(1, "indexer:1:0xabc")
        assert cp is not None and cp.block_number == 42


def test_concurrent_migrations(empty_url: str) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate(empty_url)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    engine = create_db_engine(empty_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_downgrade_to_base_and_back(empty_url: str) -> None:
    engine = create_db_engine(empty_url)
    try:
        migrate(engine)
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "base")
        assert not TABLES & set(inspect(engine).get_table_names())
        migrate(engine)
        assert TABLES <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_sqlite_file_is_wal_with_busy_timeout(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'a.db'}"
    with Store.open(url) as store:
        assert store.is_sqlite
        with store.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000
    assert (tmp_path / "nested" / "dir" / "a.db").exists()


def test_in_memory_sqlite_is_shared_between_threads() -> None:
    with Store.open("sqlite://") as store:
        done = threading.Event()

        def write() -> None:
            store.checkpoints.set(0, "x", 7)
            done.set()

        threading.Thread(target=write).start()
        assert done.wait(5)
        cp = store.checkpoints.get(0, "x")
        assert cp is not None and cp.block_number == 7


def test_the_head_read_from_file_names_is_alembics_head() -> None:
    from autometa.store.db import HEAD_REVISION

    assert HEAD_REVISION == head_revision()


def test_a_store_at_the_head_opens_without_loading_alembic(empty_url: str, tmp_path: Path) -> None:
    """Every long-running process opens the store; at the head that must not import alembic
    and mako (~6 MB each process). One a revision behind still migrates."""
    import subprocess
    import sys

    migrate(empty_url)
    probe = (
        "import sys; from autometa.store import Store; Store.open(sys.argv[1]).close(); print('alembic' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe, empty_url], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr
    engine = create_db_engine(empty_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "-1")
        assert current_revision(engine) != head_revision()
        done = subprocess.run([sys.executable, "-c", probe, empty_url], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and done.stdout.strip() == "True", done.stderr
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
