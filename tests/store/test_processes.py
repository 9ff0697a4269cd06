"""Separate processes (executor, indexer) share one database file or server."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta

import pytest

from autometa.store import Store

from .helpers import CONTRACT

RUNS = 25
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _tx(i: int) -> str:
    return "0x" + f"{i:064x}"


def _executor(url: str) -> None:
    with Store(url) as store:
        for i in range(RUNS):
            store.executions.record_offchain(
                chain_id=1,
                contract=CONTRACT,
                workflow_id=1,
                run_index=i,
                tx_hash=_tx(i),
                price_source="local-cache",
                triggered_at=T0,
            )
            store.heartbeats.beat(1, "exec", "executor")


def _indexer(url: str) -> None:
    with Store(url) as store:
        for i in range(RUNS):
            store.executions.record_onchain(
                chain_id=1,
                contract=CONTRACT,
                workflow_id=1,
                run_index=i,
                tx_hash=_tx(i),
                log_index=0,
                block_number=i,
                status="success",
                included_at=T0 + timedelta(seconds=1),
            )
            store.checkpoints.set(1, "indexer", i)


@pytest.mark.slow
def test_executor_and_indexer_processes(store: Store) -> None:
    url = store.engine.url.render_as_string(hide_password=False)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_executor, args=(url,)), ctx.Process(target=_indexer, args=(url,))]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    rows = store.executions.list(limit=100)
    assert rows.total == RUNS
    assert {(r.status, r.price_source, r.latency_s) for r in rows.items} == {("success", "local-cache", 1.0)}
