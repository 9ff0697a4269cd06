"""The executor records a mined batch in one transaction (`ExecutionRepository.batch`): all of
its rows or none, with the runs' locks taken up front so the indexer's write of the same run
waits and then merges into the same row."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from eth_utils import to_checksum_address
from sqlalchemy import event, select

from autometa.domain.kinds import SkipReason
from autometa.store import Store
from autometa.store.models import Execution
from autometa.store.notify_models import NotifyEvent
from autometa.worker.batch import RunRow, SkipRow
from autometa.worker.queue import Job
from autometa.worker.recording import BatchRecorder
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


# ---------------------------------------------------------------- a whole receipt (BatchRecorder)

OWNER = "0x" + "0a" * 20
RUNS = 200
# A receipt's statements, whatever its size: BEGIN, the locks, the transaction's rows, one
# INSERT (one per column set), the outbox's subscription read. Written row by row it was ~8 a run.
MAX_STATEMENTS = 12


def _receipt(n: int, *, base: int = 1) -> tuple[list[RunRow], list[SkipRow], dict[tuple[int, int], Job]]:
    """n runs of workflows base.., every fifth one skipped on-chain (a SILENT one among them)."""
    runs: list[RunRow] = []
    skips: list[SkipRow] = []
    jobs: dict[tuple[int, int], Job] = {}
    for i in range(n):
        key = (base + i, i % 3)
        if i % 5 == 4:
            reason = SkipReason.RUN_DONE if i == 4 else SkipReason.INSUFFICIENT_ESCROW
            skips.append(SkipRow(key, i, reason))
            continue
        priced = i % 2 == 0
        runs.append(
            RunRow(
                key,
                i,
                i % 7 != 3,
                50_000 + i,
                10**9 + i,
                (50_000 + i) * 10**9,
                100,
                2_000 * 10**8 if priced else None,
                "oracle" if priced else None,
            )
        )
        jobs[key] = Job(key[0], key[1], 1, 1_699_999_990.0 + i, price_source="local-cache" if priced else None)
    return runs, skips, jobs


def _count_statements(store: Store) -> list[str]:
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", before)
    return seen


def _rows(store: Store, tx: str) -> list[dict[str, Any]]:
    """The transaction's rows, without what differs by when or under which hash they were written."""
    skip = {"id", "tx_hash", "created_at", "reported_at"}
    with store.session() as session:
        rows = session.scalars(select(Execution).where(Execution.tx_hash == tx).order_by(Execution.log_index)).all()
        return [{c: getattr(r, c) for c in Execution.__table__.columns.keys() if c not in skip} for r in rows]


def test_a_receipt_is_recorded_in_a_bounded_number_of_statements(store: Store) -> None:
    runs, skips, jobs = _receipt(RUNS)
    recorder = BatchRecorder(store, EXECUTOR, CONTRACT)
    seen = _count_statements(store)
    recorder.write(runs, skips, jobs, CHAIN, TX, 10, 1_700_000_000)
    assert len(seen) <= MAX_STATEMENTS, f"{len(seen)} statements for {RUNS} runs"
    rows = _rows(store, TX)
    assert len(rows) == RUNS - 1  # the RUN_DONE skip is not recorded
    assert sum(r["status"] == "skipped" for r in rows) == len(skips) - 1
    assert all(r["latency_s"] is not None for r in rows if r["status"] != "skipped")

    seen.clear()
    recorder.write(runs, skips, jobs, CHAIN, TX, 10, 1_700_000_000)  # a retry after a crash
    assert len(seen) <= MAX_STATEMENTS, f"{len(seen)} statements for {RUNS} runs recorded again"
    assert _rows(store, TX) == rows  # one row per run, the same facts


def test_a_receipt_is_recorded_as_row_by_row_writes_would(store: Store) -> None:
    """The bulk path and `record_onchain` + `record_offchain` per run (the indexer's, and the
    recorder's before) give the same rows, also where the indexer wrote some of the runs first."""
    runs, skips, jobs = _receipt(40)
    bulk, single = "0x" + "b1" * 32, "0x" + "51" * 32
    for tx in (bulk, single):  # the indexer was first for a few runs
        for row in runs[:5]:
            _onchain_row(store, tx, row)
    BatchRecorder(store, EXECUTOR, CONTRACT).write(runs, skips, jobs, CHAIN, bulk, 10, 1_700_000_000)
    ex = store.executions
    for row in runs:
        _onchain_row(store, single, row)
        job = jobs[row.key]
        ex.record_offchain(
            chain_id=CHAIN,
            contract=CONTRACT,
            workflow_id=row.key[0],
            run_index=row.key[1],
            tx_hash=single,
            price_source=job.price_source,
            triggered_at=job.triggered_at,
            executor=EXECUTOR,
        )
    for skip in skips:
        if skip.reason is not SkipReason.RUN_DONE:
            ex.record_onchain(
                chain_id=CHAIN,
                contract=CONTRACT,
                workflow_id=skip.key[0],
                run_index=skip.key[1],
                tx_hash=single,
                log_index=skip.log_index,
                block_number=10,
                status="skipped",
                included_at=1_700_000_000,
                executor=EXECUTOR,
                skip_reason=skip.reason.label,
            )
    assert _rows(store, bulk) == _rows(store, single) and len(_rows(store, bulk)) == 39


def _onchain_row(store: Store, tx: str, row: RunRow) -> None:
    store.executions.record_onchain(
        chain_id=CHAIN,
        contract=CONTRACT,
        workflow_id=row.key[0],
        run_index=row.key[1],
        tx_hash=tx,
        log_index=row.log_index,
        block_number=10,
        status="success" if row.success else "failed",
        included_at=1_700_000_000,
        executor=EXECUTOR,
        gas_used=row.gas_used,
        gas_price=row.gas_price,
        fee=row.fee,
        premium_bps=row.premium_bps,
        price=row.price,
        price_source=row.source,
    )


def test_a_receipt_tells_the_owners_subscriptions_once_per_run(store: Store) -> None:
    runs, skips, jobs = _receipt(10)
    for wid in {r.key[0] for r in runs} | {s.key[0] for s in skips}:
        store.workflows.upsert(
            {
                "id": wid,
                "chain_id": CHAIN,
                "contract": CONTRACT,
                "owner": OWNER,
                "status": 1,
                "trigger_kind": 1,
                "action_kind": 0,
                "target": "0x" + "cc" * 20,
                "gas_limit": 100_000,
                "max_fee_per_run": 10**16,
                "created_block": 1,
            }
        )
    store.notifications.subscribe(
        chain_id=CHAIN, owner=OWNER, name="mine", channel="webhook", target="https://x", target_hint="x", events=["*"]
    )
    store.notifications.subscribe(
        chain_id=CHAIN,
        owner="0x" + "0b" * 20,
        name="theirs",
        channel="webhook",
        target="https://y",
        target_hint="y",
        events=["*"],
    )
    recorder = BatchRecorder(store, EXECUTOR, CONTRACT)
    for _ in range(2):  # the second time is a replay: no new events
        recorder.write(runs, skips, jobs, CHAIN, TX, 10, 1_700_000_000)
    with store.session() as session:
        events = session.scalars(select(NotifyEvent)).all()
    kinds = sorted(e.kind for e in events)
    failed = sum(not r.success for r in runs)
    assert kinds == sorted(
        ["run.executed"] * (len(runs) - failed) + ["run.failed"] * failed + ["run.skipped"] * (len(skips) - 1)
    )
    assert {e.owner for e in events} == {to_checksum_address(OWNER)}
