"""The seed's flow through the `public` RPC profile, every limit at once: 25 requests/s then HTTP
429 + `Retry-After`, no websocket, no `eth_simulateV1`, `eth_getLogs` capped at 1,000 blocks and
10,000 results, and 2 s blocks. Scheduler, executor and indexer all talk to the proxy only; the
workflow runs once, the recipient is paid once."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from autometa.chain.accounts import dev_role
from autometa.chain.deploy import set_dev_price
from autometa.chain.indexer import EventIndexer
from autometa.chain.sender import TransactionSender
from autometa.chain.web3 import connect, connect_async
from autometa.store import Store
from autometa.worker.blocks import BlockFollower, ws_url_for
from autometa.worker.executor import Executor
from autometa.worker.prices import PriceReader
from autometa.worker.queue import InMemoryJobQueue
from autometa.worker.scheduler import Scheduler
from autometa.worker.sources import IndexerWorkflowSource
from tests.support.provider_proxy import BLOCK_TIME_S, PublicProviderProxy

from .helpers import RECIPIENT, create, deposit, seed_spec, wait_loaded


async def test_seed_flow_through_the_public_profile(dev_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    w3, dep, user = dev_chain.w3, dev_chain.deployment, dev_role("user")
    deposit(w3, dep.address, user, 2 * 10**18)
    wid = create(w3, dep.address, user, seed_spec())
    w3.provider.make_request("evm_setIntervalMining", [BLOCK_TIME_S])  # the fixture restores automine
    store = Store.open(f"sqlite:///{tmp_path / 'autometa.db'}")
    with PublicProviderProxy.public(dev_chain.url) as proxy:
        aw3 = connect_async(proxy.url)
        queue = InMemoryJobQueue()
        await queue.startup()
        indexer = EventIndexer(connect(proxy.url), store, dep.address, dep.block)
        follower = BlockFollower(aw3, ws_url_for(proxy.url), poll_interval=1.0)
        scheduler = Scheduler(
            aw3, IndexerWorkflowSource(indexer), queue, PriceReader(aw3, dep.address), follower=follower
        )
        executor = Executor(aw3, dep.address, TransactionSender(aw3, dev_role("executor")), queue, store)
        stop = asyncio.Event()
        tasks = [asyncio.create_task(scheduler.run(stop)), asyncio.create_task(executor.run(stop))]
        before = w3.eth.get_balance(RECIPIENT)
        try:
            await wait_loaded(scheduler, 30)
            set_dev_price(w3, dev_role("admin"), dep.feeds["ethereum"], Decimal("3198.15"))
            for _ in range(300):
                if executor.outcomes:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(3 * BLOCK_TIME_S)  # more blocks: nothing else may run
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 15)
            await queue.shutdown()
            await aw3.provider.disconnect()  # type: ignore[attr-defined]
        assert follower.mode == "poll"  # no websocket behind a public endpoint
        assert proxy.refused.get("eth_simulateV1", 0) >= 1  # the executor's fallback path ran
    executed = [key for o in executor.outcomes for key in o.executed]
    assert executed == [(wid, 0)]
    assert w3.eth.get_balance(RECIPIENT) - before == 10**18
    (row,) = store.executions.for_run(dep.chain_id, dep.address, wid, 0)
    assert row.status == "success"
    store.close()
