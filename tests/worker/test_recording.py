"""The executor records a mined batch in one transaction (`ExecutionRepository.batch`): all of
its rows or none, with the runs' locks taken up front so the indexer's write of the same run
waits and then merges into the same row."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from autometa.store import Store
from tests.conftest import fresh_pg_database

CHAIN, EXECUTOR, TX = 31337, "0x" + "ee" * 20, "0x" + "ab" * 32
CONTRACT = "0x" + "c0" * 20


def _onchain(store: Store, wid: int, log_index: int, **kw: Any) -> None:
    store.executions.record_onchain(
        chain_id=CHAIN,
        contract=CONTRACT,
        workflow_id=wid,
        run_index=0,
        tx_hash=TX,
        log_index=log_index,
        block_number=10,
        status="success",
        included_at=1_700_000_000,
        executor=EXECUTOR,
        gas_used=50_000,
        gas_price=10**9,
        fee=55_000 * 10**9,
        premium_bps=0,
        **kw,
    )


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store.open(database_url)
    yield s
    s.close()


def test_a_batch_is_one_transaction(store: Store) -> None:
    runs = [(CHAIN, wid, 0, TX) for wid in (1, 2, 3)]
    with pytest.raises(RuntimeError), store.executions.batch(runs):
        _onchain(store, 1, 0)
        _onchain(store, 2, 1)
        raise RuntimeError("recording failed half way")
    assert (
        store.executions.for_run(CHAIN, CONTRACT, 1, 0) == [] and store.executions.for_run(CHAIN, CONTRACT, 2, 0) == []
    )

    with store.executions.batch(runs):
        for wid in (1, 2, 3):
            _onchain(store, wid, wid - 1)
            store.executions.record_offchain(
                chain_id=CHAIN,
                contract=CONTRACT,
                workflow_id=wid,
                run_index=0,
                tx_hash=TX,
                triggered_at=1_699_999_990,
                executor=EXECUTOR,
            )
    for wid in (1, 2, 3):
        (row,) = store.executions.for_run(CHAIN, CONTRACT, wid, 0)
        assert row.status == "success" and row.latency_s == 10 and row.reported_at is not None


@pytest.mark.postgres
def test_the_indexers_write_of_a_run_waits_for_the_batch_and_merges() -> None:
    """PostgreSQL only: its writers run concurrently (SQLite serialises all write transactions)."""
    with fresh_pg_database() as url:
        _indexer_waits_and_merges(url)


def _indexer_waits_and_merges(database_url: str) -> None:
    executor_store, indexer_store = Store.open(database_url), Store.open(database_url)
    inside, release = threading.Event(), threading.Event()

    def executor() -> None:
        with executor_store.executions.batch([(CHAIN, 5, 0, TX)]):
            inside.set()
            release.wait(10)
            executor_store.executions.record_offchain(
                chain_id=CHAIN,
                contract=CONTRACT,
                workflow_id=5,
                run_index=0,
                tx_hash=TX,
                triggered_at=1_699_999_990,
                executor=EXECUTOR,
            )

    def indexer() -> None:
        _onchain(indexer_store, 5, 7)

    try:
        a = threading.Thread(target=executor)
        a.start()
        assert inside.wait(10)
        b = threading.Thread(target=indexer)
        b.start()
        b.join(0.5)
        assert b.is_alive()  # waiting on the run's lock, held since the batch began
        release.set()
        a.join(10)
        b.join(10)
        assert not a.is_alive() and not b.is_alive()
        (row,) = executor_store.executions.for_run(CHAIN, CONTRACT, 5, 0)  # one row: both writers' facts
        assert row.status == "success" and row.log_index == 7 and row.latency_s == 10
    finally:
        release.set()
        executor_store.close()
        indexer_store.close()
