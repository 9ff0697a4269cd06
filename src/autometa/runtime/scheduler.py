"""`SchedulerRuntime`: one chain's scheduler with everything it needs, built and closed in one
place — the event indexer, the lease (Redis with REDIS_URL, else local), the block follower,
alerts, off-chain prices and the presence heartbeat `GET /api/workers` reads."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from autometa.chain.web3 import close_async
from autometa.runtime.chain import ChainLink, Opened

if TYPE_CHECKING:
    from autometa.worker.lease import Lease
    from autometa.worker.scheduler import Scheduler


class SchedulerRuntime(Opened):
    """`async with SchedulerRuntime(link) as rt: await rt.run(stop)`. One lease per chain: of
    several schedulers on a chain (processes or hosts), one schedules and the others stand by."""

    def __init__(self, link: ChainLink) -> None:
        self.link = link
        super().__init__()

    scheduler: Scheduler
    lease: Lease

    async def _open(self) -> None:
        from autometa.chain.indexer import EventIndexer
        from autometa.config import Network
        from autometa.notify.alerts import Alerts, Thresholds, watch_rpc
        from autometa.prices import TieredPriceAdapter
        from autometa.worker.blocks import BlockFollower, ws_url_for
        from autometa.worker.lease import LocalLease, RedisLease
        from autometa.worker.prices import PriceReader
        from autometa.worker.scheduler import Scheduler
        from autometa.worker.sources import IndexerWorkflowSource
        from autometa.worker.triggers.log import LogScanner, StoreLogCursor

        link, s, t = self.link, self.link.settings, self.link.target
        # Built off the event loop: it asks the chain its id synchronously, and web3's sync
        # session lock is shared with its async sessions — waited on from the loop while another
        # chain's async request holds it, it would deadlock the process (several chains).
        indexer = await asyncio.to_thread(
            EventIndexer,
            link.connect_sync(),
            link.store,
            t.contract,
            t.start_block,
            confirmations=s.CONFIRMATIONS,
            batch_blocks=s.INDEXER_BATCH_BLOCKS,
        )
        w3 = link.connect()
        self._exit.push_async_callback(close_async, w3)
        self.lease = (
            RedisLease(link.redis, f"{link.prefix}:scheduler-lease") if link.redis is not None else LocalLease()
        )
        alerts = Alerts(
            link.store,
            t.chain_id,
            Thresholds.from_settings(s),
            source=f"scheduler:{self.lease.holder}",
            contract=t.contract,
        )
        watch_rpc(w3, alerts, t.rpc_url)
        offchain = TieredPriceAdapter.from_settings(s)
        self._exit.push_async_callback(offchain.aclose)
        # The follower subscribes to new heads where it can; polling (no websocket) is bounded by
        # POLL_INTERVAL, and on a dev chain (a block a second, or on every transaction) by 0.5 s.
        poll = min(s.POLL_INTERVAL, 0.5) if s.NETWORK is Network.DEV else s.POLL_INTERVAL
        self.scheduler = Scheduler(
            w3,
            IndexerWorkflowSource(indexer, link.queue),
            link.queue,
            PriceReader(w3, t.contract, offchain),
            lease=self.lease,
            follower=BlockFollower(w3, ws_url_for(t.rpc_url), poll_interval=poll),
            alerts=alerts,
            # LOG triggers: the indexer's confirmation rule, and a checkpoint in the store so a
            # restart backfills the logs emitted while it was down
            logs=LogScanner(w3, StoreLogCursor(link.store, t.chain_id, t.contract), confirmations=s.CONFIRMATIONS),
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Schedule (or stand by) and beat the heartbeat until `stop`; the heartbeat row goes
        when the scheduler stops."""
        from autometa.worker.presence import keep_heartbeat, scheduler_extra

        lease, chain_id = self.lease, self.link.target.chain_id
        presence = asyncio.create_task(
            keep_heartbeat(
                self.link.store,
                lease.holder,
                "scheduler",
                stop,
                scheduler_extra(lease, chain_id),
                wake=lease.changed,
                chain_id=chain_id,
            )
        )
        try:
            await self.scheduler.run(stop)
        finally:
            stop.set()
            await asyncio.gather(presence, return_exceptions=True)
