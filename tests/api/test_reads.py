"""Reads from the indexed store: workflows with runway, executions, stats, workers, metrics."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool

from autometa.chain.indexer import EventIndexer
from tests.api.conftest import USER, Api, deposit, seed_body

ESCROW = 3 * 10**18


async def _indexed_workflow(api: Api, **extra: Any) -> int:
    deposit(api.chain, USER, ESCROW)
    wid = (await api.typed.create_signed(USER, seed_body(**extra))).workflow_id
    indexer = EventIndexer(api.chain.w3, api.store, api.chain.deployment.address, api.chain.deployment.block)
    await run_in_threadpool(indexer.sync)
    return wid


def _record_runs(api: Api, wid: int) -> None:
    base = datetime.now(UTC) - timedelta(hours=1)
    ex = api.store.executions
    for i, (status, gas, fee) in enumerate(
        [("success", 60_000, 10**14), ("failed", 40_000, 5 * 10**13), ("skipped", None, None)]
    ):
        ex.record_onchain(
            chain_id=31337,
            contract=api.chain.deployment.address,
            workflow_id=wid,
            run_index=i,
            tx_hash="0x" + f"{i + 1:064x}",
            log_index=0,
            block_number=100 + i,
            status=status,
            included_at=base + timedelta(minutes=i),
            gas_used=gas,
            fee=fee,
        )
        ex.record_offchain(
            chain_id=31337,
            contract=api.chain.deployment.address,
            workflow_id=wid,
            run_index=i,
            tx_hash="0x" + f"{i + 1:064x}",
            triggered_at=base + timedelta(minutes=i) - timedelta(seconds=3),
            price_source="local-cache",
        )


async def test_workflow_and_user_listing_from_the_store(api: Api) -> None:
    wid = await _indexed_workflow(api, max_runs=3, max_fee_per_run_wei="20000000000000000")
    shown = await api.typed.workflow(wid)
    assert shown.indexed and shown.status == "active" and shown.run_count == 0 and shown.max_runs == 3
    assert shown.next_due_time == 0  # a price trigger without a window: due whenever the price says so
    assert shown.escrow is not None and shown.escrow.source == "chain"
    assert shown.escrow.per_run_wei == 2 * 10**16 + 10**18
    assert shown.escrow.runway_runs == shown.escrow.balance_wei // (2 * 10**16 + 10**18)
    listing = await api.typed.user_workflows(USER.address.lower())
    assert listing.total == 1 and [w.id for w in listing.workflows] == [wid] and listing.owner == USER.address
    empty = await api.typed.user_workflows("0x" + "12" * 20)
    assert empty.total == 0 and empty.workflows == []
    missing = await api.client.get("/api/workflow/4242")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


async def test_next_due_time_of_an_interval_workflow(api_embedded: Api) -> None:
    api = api_embedded
    start = int(api.chain.w3.eth.get_block("latest")["timestamp"]) + 3600
    wid = await _indexed_workflow(api, trigger_type=1, trigger_data={"interval": 600, "start": start})
    assert (await api.typed.workflow(wid)).next_due_time == start


async def test_a_cron_workflow_that_has_not_run_is_due_at_its_next_tick(api_embedded: Api) -> None:
    """Not at the spec's first tick after 1970 (the floor, creation, is the contract's alone)."""
    api = api_embedded
    wid = await _indexed_workflow(api, trigger_type="cron", trigger_data={"spec": "0 * * * *"})
    before = int(time.time())
    due = (await api.typed.workflow(wid)).next_due_time
    assert due is not None and due % 3600 == 0 and before <= due <= int(time.time()) + 3600


async def test_executions_filters_and_pages(api: Api) -> None:
    wid = await _indexed_workflow(api)
    await run_in_threadpool(_record_runs, api, wid)
    page = await api.typed.executions(workflow_id=wid)
    assert page.total == 3 and [e.run_index for e in page.items] == [2, 1, 0]  # newest first
    assert (await api.typed.executions(user=USER.address, status="success")).total == 1
    assert (await api.typed.executions(user="0x" + "12" * 20)).total == 0
    second = await api.typed.executions(workflow_id=wid, offset=1, limit=1)
    assert second.total == 3 and [e.run_index for e in second.items] == [1]
    since = datetime.now(UTC) - timedelta(minutes=59, seconds=30)
    assert (await api.typed.executions(since=since)).total == 2
    ok = (await api.typed.executions(status="success")).items[0]
    assert ok.gas_used == 60_000 and ok.fee_wei == 10**14 and ok.latency_s == 3.0 and ok.price_source


async def test_stats_global_user_workflow(api: Api) -> None:
    wid = await _indexed_workflow(api)
    await run_in_threadpool(_record_runs, api, wid)
    for stats in (
        await api.typed.stats(),
        await api.typed.stats(user=USER.address),
        await api.typed.stats(workflow_id=wid),
    ):
        assert stats.total == 3 and stats.counts["success"] == 1 and stats.success_rate == 0.5
        assert stats.total_gas_used == 100_000 and stats.avg_gas_per_run == 50_000
        assert stats.total_fees_wei == 15 * 10**13 and stats.p50_latency_s == 3.0
        assert stats.workflows == 1 and stats.active_workflows == 1
    assert (await api.typed.stats(workflow_id=wid)).scope == "workflow"
    other = await api.typed.stats(user="0x" + "12" * 20)
    assert other.scope == "user" and other.total == 0 and other.success_rate is None


async def test_workers_and_metrics(api_embedded: Api) -> None:
    api = api_embedded
    hb = api.store.heartbeats
    await run_in_threadpool(hb.beat, 31337, "exec-1", "executor", USER.address, "0.1.0")
    lease = {"chain_id": 31337, "lease_holder": "sched-1"}
    await run_in_threadpool(
        lambda: hb.beat(31337, "sched-1", "scheduler", None, "0.1.0", extra={**lease, "active": True})
    )
    await run_in_threadpool(
        lambda: hb.beat(31337, "sched-2", "scheduler", None, "0.1.0", extra={**lease, "active": False})
    )
    await run_in_threadpool(hb.beat, 31337, "old", "executor", None, None, now=datetime.now(UTC) - timedelta(hours=1))
    workers = await api.typed.workers(within_s=60)
    assert workers.executors == 1 and workers.scheduler_active and workers.schedulers == 2
    assert workers.lease_holder == "sched-1"
    active = {w.worker_id: w.active for w in workers.workers if w.role == "scheduler"}
    assert active == {"sched-1": True, "sched-2": False}
    assert {w.worker_id for w in workers.workers} == {"exec-1", "sched-1", "sched-2"}
    wid = await _indexed_workflow(api)
    await run_in_threadpool(_record_runs, api, wid)
    await api.typed.price("ethereum")
    text = await api.typed.metrics()
    for name in (
        'autometa_price_cache_hits_total{tier="shared"}',
        'autometa_executions{status="success"} 1.0',
        "autometa_api_request_seconds_bucket",
        'autometa_relayer_transactions_total{kind="create"',
        'autometa_execution_latency_seconds{quantile="0.5"}',
    ):
        assert name in text, name
