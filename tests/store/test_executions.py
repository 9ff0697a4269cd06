from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eth_utils import to_checksum_address

from autometa.store import Store
from autometa.store.executions import percentile

from .helpers import CHAIN, CONTRACT, EXECUTOR, OWNER_A, OWNER_B, tx, workflow

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def onchain(store: Store, workflow_id: int, run_index: int, n: int, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "chain_id": CHAIN,
        "contract": CONTRACT,
        "workflow_id": workflow_id,
        "run_index": run_index,
        "tx_hash": tx(n),
        "log_index": 0,
        "block_number": 100 + n,
        "status": "success",
        "included_at": T0 + timedelta(seconds=n),
        "executor": EXECUTOR,
        "gas_used": 50_000,
        "gas_price": 10**9,
        "fee": 55_000 * 10**9,
        "premium_bps": 1000,
    }
    args.update(kw)
    return store.executions.record_onchain(**args)


def offchain(store: Store, workflow_id: int, run_index: int, n: int, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "chain_id": CHAIN,
        "contract": CONTRACT,
        "workflow_id": workflow_id,
        "run_index": run_index,
        "tx_hash": tx(n),
    }
    args.update(kw)
    return store.executions.record_offchain(**args)


def all_rows(store: Store) -> list[Any]:
    return store.executions.list(limit=1000).items


def test_reindexing_is_idempotent(store: Store) -> None:
    first = onchain(store, 1, 0, 1)
    again = onchain(store, 1, 0, 1, block_number=555, fee=1)
    assert first.id == again.id
    rows = all_rows(store)
    assert len(rows) == 1 and rows[0].block_number == 555 and rows[0].fee == 1
    assert rows[0].executor == to_checksum_address(EXECUTOR)


@pytest.mark.parametrize("order", ["offchain-first", "onchain-first"])
def test_offchain_and_onchain_facts_merge(store: Store, order: str) -> None:
    def off() -> None:
        offchain(store, 1, 0, 7, price_source="local-cache", price=123, triggered_at=T0, executor=EXECUTOR)

    def on() -> None:
        onchain(store, 1, 0, 7, price=456, price_source=2, included_at=T0 + timedelta(seconds=12.5))

    if order == "offchain-first":
        off()
        pending = all_rows(store)
        assert [r.status for r in pending] == ["pending"]
        on()
    else:
        on()
        off()
    rows = all_rows(store)
    assert len(rows) == 1
    row = rows[0]
    assert row.status == "success" and row.log_index == 0 and row.block_number == 107
    assert row.price_source == "local-cache"  # more specific than the chain's 'attested'
    assert row.price == 456  # the chain's price wins
    assert row.triggered_at == T0
    assert row.latency_s == pytest.approx(12.5)
    assert row.occurred_at == row.included_at


def test_oracle_source_from_chain_is_authoritative(store: Store) -> None:
    offchain(store, 1, 0, 1, price_source="coingecko-direct")
    onchain(store, 1, 0, 1, price_source=1, price=1)
    offchain(store, 1, 0, 1, price_source="backend-api")
    assert [r.price_source for r in all_rows(store)] == ["oracle"]


def test_offchain_reports_twice_keep_one_row(store: Store) -> None:
    offchain(store, 1, 0, 1, price_source="backend-redis")
    offchain(store, 1, 0, 1, triggered_at=T0)
    rows = all_rows(store)
    assert len(rows) == 1
    assert rows[0].price_source == "backend-redis" and rows[0].triggered_at == T0


def test_whole_tx_revert_is_reported_offchain(store: Store) -> None:
    offchain(store, 1, 0, 1, status="failed", revert_reason=b"\x08\xc3\x79\xa0")
    row = all_rows(store)[0]
    assert (row.status, row.revert_reason, row.log_index) == ("failed", "0x08c379a0", None)


def test_duplicate_in_batch_gets_the_offchain_facts_on_the_run_that_executed(store: Store) -> None:
    onchain(store, 1, 0, 1, log_index=0, status="success")
    onchain(store, 1, 0, 1, log_index=1, status="skipped", skip_reason=2, gas_used=None, fee=None)
    offchain(store, 1, 0, 1, price_source="local-cache", triggered_at=T0)
    rows = sorted(all_rows(store), key=lambda r: r.log_index)
    assert [(r.status, r.skip_reason, r.price_source) for r in rows] == [
        ("success", None, "local-cache"),
        ("skipped", "run_done", None),
    ]


def test_failed_run_keeps_revert_reason(store: Store) -> None:
    onchain(store, 1, 0, 1, status="failed", revert_reason="0xDEAD")
    onchain(store, 1, 0, 1, status="failed")  # replay without the RunFailed log
    assert all_rows(store)[0].revert_reason == "0xdead"


def test_invalid_values_are_refused(store: Store) -> None:
    with pytest.raises(ValueError):
        onchain(store, 1, 0, 1, status="pending")
    with pytest.raises(ValueError):
        offchain(store, 1, 0, 1, price_source="somewhere")
    with pytest.raises(ValueError):
        onchain(store, 1, 0, 1, skip_reason=42, status="skipped")
    assert all_rows(store) == []


def test_fee_bump_replacement_carries_offchain_facts(store: Store) -> None:
    offchain(store, 1, 0, 1, price_source="local-cache")
    assert store.executions.replace_tx_hash(CHAIN, tx(1), tx(2)) == 1
    onchain(store, 1, 0, 2)
    rows = all_rows(store)
    assert [(r.tx_hash, r.status, r.price_source) for r in rows] == [(tx(2), "success", "local-cache")]


def test_reorg_deletes_indexed_rows_but_keeps_reported_facts(store: Store) -> None:
    onchain(store, 1, 0, 1, block_number=100)
    offchain(store, 2, 0, 2, triggered_at=T0, price_source="local-cache")
    onchain(store, 2, 0, 2, block_number=105)
    onchain(store, 3, 0, 3, block_number=110)
    onchain(store, 4, 0, 4, block_number=110, chain_id=1287)
    assert store.executions.delete_from_block(CHAIN, CONTRACT, 105) == 2
    rows = {r.workflow_id: r for r in all_rows(store)}
    assert set(rows) == {1, 2, 4}
    reset = rows[2]
    assert (reset.status, reset.block_number, reset.log_index, reset.fee) == ("pending", None, None, None)
    assert reset.triggered_at == T0 and reset.price_source == "local-cache"
    # The same transaction is mined again in the new branch.
    onchain(store, 2, 0, 2, block_number=106, included_at=T0 + timedelta(seconds=3))
    again = [r for r in all_rows(store) if r.workflow_id == 2]
    assert len(again) == 1 and again[0].block_number == 106 and again[0].latency_s == pytest.approx(3)


def test_list_filters_and_pagination(store: Store) -> None:
    store.workflows.upsert(workflow(1, owner=OWNER_A))
    store.workflows.upsert(workflow(2, owner=OWNER_B))
    for i in range(6):
        onchain(store, 1, i, 10 + i, included_at=T0 + timedelta(minutes=i), status="success" if i % 2 else "failed")
    onchain(store, 2, 0, 30, included_at=T0 + timedelta(minutes=2, seconds=30), status="skipped", skip_reason=4)
    offchain(store, 2, 1, 31, triggered_at=T0 + timedelta(minutes=10))

    page = store.executions.list(limit=3)
    assert page.total == 8
    assert [(r.workflow_id, r.run_index) for r in page.items] == [(2, 1), (1, 5), (1, 4)]
    page2 = store.executions.list(offset=3, limit=3)
    assert [(r.workflow_id, r.run_index) for r in page2.items] == [(1, 3), (2, 0), (1, 2)]

    assert store.executions.list(workflow_id=2).total == 2
    assert store.executions.list(owner=OWNER_B.upper().replace("0X", "0x")).total == 2
    assert store.executions.list(owner=OWNER_A, status="success").total == 3
    assert store.executions.list(status=["failed", "skipped"]).total == 4
    window = store.executions.list(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3))
    assert [(r.workflow_id, r.run_index) for r in window.items] == [(2, 0), (1, 2), (1, 1)]
    assert store.executions.list(since=int((T0 + timedelta(minutes=5)).timestamp())).total == 2
    assert store.executions.list(chain_id=1287).total == 0
    with pytest.raises(ValueError):
        store.executions.list(status="weird")
    assert len(store.executions.for_run(CHAIN, CONTRACT, 1, 3)) == 1


def test_stats_from_known_inputs(store: Store) -> None:
    store.workflows.upsert(workflow(1, owner=OWNER_A))
    store.workflows.upsert(workflow(2, owner=OWNER_B))
    big = 2**70
    latencies = [1.0, 2.0, 3.0, 4.0, 10.0]
    for i, lat in enumerate(latencies):  # workflow 1: 3 successes, 2 failures
        offchain(store, 1, i, i + 1, triggered_at=T0)
        onchain(
            store,
            1,
            i,
            i + 1,
            status="success" if i < 3 else "failed",
            included_at=T0 + timedelta(seconds=lat),
            gas_used=100_000 + i,
            fee=big + i,
        )
    onchain(store, 2, 0, 20, status="skipped", skip_reason=5, gas_used=None, fee=None)
    onchain(store, 2, 0, 21, status="success", gas_used=7, fee=3)
    offchain(store, 2, 1, 22)

    wf1 = store.executions.stats(workflow_id=1)
    assert wf1.total == 5
    assert wf1.counts == {"success": 3, "failed": 2, "skipped": 0, "pending": 0}
    assert wf1.success_rate == pytest.approx(0.6)
    assert wf1.total_gas == 500_010
    assert wf1.total_fees == 5 * big + 10
    assert wf1.avg_latency_s == pytest.approx(4.0)
    assert wf1.p50_latency_s == pytest.approx(3.0)
    assert wf1.p95_latency_s == pytest.approx(8.8)

    everyone = store.executions.stats()
    assert everyone.total == 8
    assert everyone.counts == {"success": 4, "failed": 2, "skipped": 1, "pending": 1}
    assert everyone.success_rate == pytest.approx(4 / 6)
    assert everyone.total_fees == 5 * big + 13
    assert everyone.total_gas == 500_017

    b = store.executions.stats(owner=OWNER_B)
    assert (b.total, b.success_rate, b.total_fees, b.p50_latency_s) == (3, 1.0, 3, None)

    nothing = store.executions.stats(workflow_id=99)
    assert (nothing.total, nothing.success_rate, nothing.total_fees, nothing.avg_latency_s) == (0, None, 0, None)


def test_percentile_matches_percentile_cont() -> None:
    assert percentile([], 0.5) is None
    assert percentile([5.0], 0.95) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5


def test_concurrent_writers_never_split_a_run(store: Store) -> None:
    """The executor and the indexer race on the same runs: still one row per run."""
    runs = 15
    errors: list[BaseException] = []

    def executor() -> None:
        try:
            for i in range(runs):
                offchain(store, 1, i, 100 + i, price_source="local-cache", triggered_at=T0)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def indexer() -> None:
        try:
            for i in range(runs):
                onchain(store, 1, i, 100 + i, included_at=T0 + timedelta(seconds=2))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=executor), threading.Thread(target=indexer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = all_rows(store)
    assert len(rows) == runs
    assert {(r.status, r.price_source, r.latency_s) for r in rows} == {("success", "local-cache", 2.0)}
