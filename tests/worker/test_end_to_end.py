"""Embedded mode end to end, on anvil and on Hardhat Network: the seed's workflow (ethereum below
$3200 → send 1 coin) fires once when the feed moves to 3198.15, and the run is recorded; 100
runs falling due together each execute exactly once. Hardhat has no eth_simulateV1, so there the
executor runs its fallback path."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from autometa.chain.accounts import dev_account, dev_role
from autometa.chain.contracts import autometa
from autometa.chain.deploy import set_dev_price
from autometa.chain.sender import TransactionSender
from autometa.domain.state import WorkflowState
from autometa.worker.executor import Executor

from .helpers import (
    RECIPIENT,
    advance,
    create,
    deposit,
    indexed_scheduler,
    mine_until_executed,
    now,
    seed_spec,
    spec,
    wait_loaded,
)


async def test_seed_workflow_executes_once_and_is_recorded(any_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dev_chain = any_chain
    w3, dep, user = dev_chain.w3, dev_chain.deployment, dev_role("user")
    deposit(w3, dep.address, user, 2 * 10**18)
    wid = create(w3, dep.address, user, seed_spec())
    store, queue, scheduler = await indexed_scheduler(
        dev_chain.url, w3, dep, f"sqlite:///{tmp_path / 'autometa.db'}", 0.2
    )
    aw3 = scheduler.w3
    executor = Executor(aw3, dep.address, TransactionSender(aw3, dev_role("executor")), queue, store, batch_size=10)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(scheduler.run(stop)), asyncio.create_task(executor.run(stop))]
    before = w3.eth.get_balance(RECIPIENT)
    try:
        await wait_loaded(scheduler, 30)
        await asyncio.sleep(0.5)
        assert executor.outcomes == []  # 3250: nothing due
        set_dev_price(w3, dev_role("admin"), dep.feeds["ethereum"], Decimal("3198.15"))
        for _ in range(100):
            if executor.outcomes:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # more blocks: nothing else may run
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        await asyncio.sleep(1.0)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        await queue.shutdown()
    executed = [key for o in executor.outcomes for key in o.executed]
    assert executed == [(wid, 0)]
    assert w3.eth.get_balance(RECIPIENT) - before == 10**18
    (row,) = store.executions.for_run(dep.chain_id, dep.address, wid, 0)
    assert row.status == "success" and row.tx_hash == executor.outcomes[0].tx_hash
    assert row.price == 319815000000 and row.price_source == "oracle"
    assert row.gas_used and row.fee and row.latency_s is not None and row.latency_s >= 0
    beats = store.heartbeats.all()
    assert beats == [] or beats[0].address == dev_role("executor").address
    store.close()


async def test_100_runs_due_together_each_execute_exactly_once(any_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    w3, dep = any_chain.w3, any_chain.deployment
    owners = [dev_account(i) for i in range(3, 8)]
    for owner in owners:
        deposit(w3, dep.address, owner, 10**18)
    t0 = now(w3)
    ids = [create(w3, dep.address, owners[i % len(owners)], spec(0, {"at": t0 + 60})) for i in range(100)]
    store, queue, scheduler = await indexed_scheduler(
        any_chain.url, w3, dep, f"sqlite:///{tmp_path / 'autometa.db'}", 0.2
    )
    aw3 = scheduler.w3
    executor = Executor(aw3, dep.address, TransactionSender(aw3, dev_role("executor")), queue, store)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(scheduler.run(stop)), asyncio.create_task(executor.run(stop))]
    core = autometa(w3, dep.address)
    try:
        await wait_loaded(scheduler, 30)
        advance(w3, 120)
        await mine_until_executed(w3, executor, len(ids))
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        await queue.shutdown()
    executed = [key for o in executor.outcomes for key in o.executed]
    assert sorted(executed) == sorted((wid, 0) for wid in ids), f"{len(executed)} executions for {len(ids)} runs"
    assert all(WorkflowState.from_view(core.functions.getWorkflow(wid).call()).run_count == 1 for wid in ids)
    rows = [row for wid in ids for row in store.executions.for_run(dep.chain_id, dep.address, wid, 0)]
    assert len(rows) == len(ids) and {r.status for r in rows} == {"success"}
    store.close()
