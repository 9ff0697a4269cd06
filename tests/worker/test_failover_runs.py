"""Runs through two RPC endpoints of which the first drops a broadcast it acted on and then dies
mid-burst: scheduler, executor and indexer fail over to the second, every run executes exactly
once, and the executor's transactions use contiguous nonces (nothing lost, nothing sent twice)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from autometa.chain.accounts import dev_account, dev_role
from autometa.chain.contracts import autometa
from autometa.chain.indexer import EventIndexer
from autometa.chain.sender import SenderConfig, TransactionSender
from autometa.chain.web3 import RpcRetry, connect, connect_async
from autometa.domain.state import WorkflowState
from autometa.store import Store
from autometa.worker.blocks import BlockFollower
from autometa.worker.executor import Executor
from autometa.worker.prices import PriceReader
from autometa.worker.queue import InMemoryJobQueue
from autometa.worker.scheduler import Scheduler
from autometa.worker.sources import IndexerWorkflowSource
from tests.support.rpc_proxy import RpcProxy

from .helpers import advance, create, deposit, mine_until_executed, now, spec, wait_loaded


async def test_runs_execute_exactly_once_when_the_first_endpoint_dies(dev_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    w3, dep = dev_chain.w3, dev_chain.deployment
    owners = [dev_account(i) for i in (3, 4)]
    for owner in owners:
        deposit(w3, dep.address, owner, 10**18)
    t0 = now(w3)
    ids = [create(w3, dep.address, owners[i % 2], spec(0, {"at": t0 + 60})) for i in range(40)]
    executor_key = dev_role("executor")
    nonce0 = w3.eth.get_transaction_count(executor_key.address)
    store = Store.open(f"sqlite:///{tmp_path / 'autometa.db'}")
    with RpcProxy(dev_chain.url) as a, RpcProxy(dev_chain.url) as b:
        urls = f"{a.url},{b.url}"
        aw3 = connect_async(urls, retry=RpcRetry(attempts=4, budget_s=5), cooldown_s=60)
        queue = InMemoryJobQueue()
        await queue.startup()
        indexer = EventIndexer(connect(urls, cooldown_s=60), store, dep.address, dep.block)
        scheduler = Scheduler(
            aw3,
            IndexerWorkflowSource(indexer),
            queue,
            PriceReader(aw3, dep.address),
            follower=BlockFollower(aw3, poll_interval=0.2),
        )
        sender = TransactionSender(aw3, executor_key, config=SenderConfig(poll_interval=0.1))
        executor = Executor(aw3, dep.address, sender, queue, store, batch_size=5, max_concurrent=2)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(scheduler.run(stop)), asyncio.create_task(executor.run(stop))]
        try:
            await wait_loaded(scheduler, 15)
            a.fault("eth_sendRawTransaction", "drop", times=1)  # the node takes it; the answer is lost
            advance(w3, 120)
            killed = False

            def kill_mid_burst(done: int) -> None:
                nonlocal killed
                if done >= 10 and not killed:
                    a.stop()  # the first endpoint is gone mid-burst
                    killed = True

            await mine_until_executed(w3, executor, len(ids), on_progress=kill_mid_burst)
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 15)
            await queue.shutdown()
            await aw3.provider.disconnect()  # type: ignore[attr-defined]
    assert killed and a.injected_for("eth_sendRawTransaction", "drop") == 1 and b.calls["eth_sendRawTransaction"] >= 1
    executed = sorted(key for o in executor.outcomes for key in o.executed)
    assert executed == sorted((wid, 0) for wid in ids), f"{len(executed)} executions for {len(ids)} runs"
    core = autometa(w3, dep.address)
    assert all(WorkflowState.from_view(core.functions.getWorkflow(wid).call()).run_count == 1 for wid in ids)
    hashes = {o.tx_hash for o in executor.outcomes if o.tx_hash}
    sent = w3.eth.get_transaction_count(executor_key.address) - nonce0
    assert sent == len(hashes), f"{sent} transactions from the executor for {len(hashes)} batches"
    assert sorted(int(w3.eth.get_transaction(h)["nonce"]) for h in hashes) == list(range(nonce0, nonce0 + sent))
    store.close()
