"""`autometa scheduler`: follow blocks, find due runs, queue them (one active, standbys by lease)."""

from __future__ import annotations

import asyncio
from typing import Any

import typer

from autometa.chain.identity import ChainChanged, queue_prefix, watch_chain
from autometa.cli.common import CliError, chain_context, handle_errors, open_claimed_store, worker_start


async def run_scheduler(rpc_url: str | None, contract: str | None) -> None:
    from redis.asyncio import Redis

    from autometa.chain.deploy import Deployment
    from autometa.chain.indexer import EventIndexer
    from autometa.chain.web3 import close_async, connect_settings
    from autometa.config import Network
    from autometa.logs import configure_logging
    from autometa.notify.alerts import Alerts, Thresholds, watch_rpc
    from autometa.prices import TieredPriceAdapter
    from autometa.worker.blocks import BlockFollower, ws_url_for
    from autometa.worker.lease import Lease, LocalLease, RedisLease
    from autometa.worker.presence import keep_heartbeat, scheduler_extra
    from autometa.worker.prices import PriceReader
    from autometa.worker.queue import make_queue
    from autometa.worker.scheduler import Scheduler
    from autometa.worker.sources import IndexerWorkflowSource

    ctx = chain_context(rpc_url, contract)
    s = ctx.settings
    configure_logging(s.LOG_LEVEL, s.LOG_JSON)
    chain_id = int(ctx.w3.eth.chain_id)
    dep = Deployment.load(s.DATA_DIR, chain_id)
    start_block = dep.block if dep and dep.address == ctx.core.address else 0
    store, genesis = open_claimed_store(ctx, chain_id)
    indexer = EventIndexer(
        ctx.w3, store, ctx.core.address, start_block, confirmations=s.CONFIRMATIONS, batch_blocks=s.INDEXER_BATCH_BLOCKS
    )
    w3 = connect_settings(s)
    prefix = queue_prefix(chain_id, genesis, ctx.core.address)
    queue = make_queue(s.REDIS_URL, prefix)
    redis: Any = Redis.from_url(s.REDIS_URL) if s.REDIS_URL else None
    lease: Lease = RedisLease(redis, f"{prefix}:scheduler-lease") if redis is not None else LocalLease()
    alerts = Alerts(store, chain_id, Thresholds.from_settings(s), source=f"scheduler:{lease.holder}")
    watch_rpc(w3, alerts, s.rpc_url)
    # POLL_INTERVAL bounds the wait; a dev chain makes blocks every second or on every tx.
    poll = min(s.POLL_INTERVAL, 0.5) if s.NETWORK is Network.DEV else s.POLL_INTERVAL
    offchain = TieredPriceAdapter.from_settings(s)
    scheduler = Scheduler(
        w3,
        IndexerWorkflowSource(indexer, queue),
        queue,
        PriceReader(w3, ctx.core.address, offchain),
        lease=lease,
        follower=BlockFollower(w3, ws_url_for(s.rpc_url), poll_interval=poll),
        alerts=alerts,
    )
    stop = await worker_start(s)
    await queue.startup()
    presence = asyncio.create_task(
        keep_heartbeat(store, lease.holder, "scheduler", stop, scheduler_extra(lease, chain_id), wake=lease.changed)
    )
    watch = asyncio.create_task(watch_chain(w3, genesis, stop, s.rpc_url))
    try:
        await scheduler.run(stop)
    finally:
        stop.set()
        await asyncio.gather(presence, return_exceptions=True)
        changed = (await asyncio.gather(watch, return_exceptions=True))[0]
        await queue.shutdown()
        await offchain.aclose()
        await close_async(w3)
        if redis is not None:
            await redis.aclose()
        store.close()
    if isinstance(changed, ChainChanged):
        raise CliError(str(changed))


@handle_errors
def scheduler_command(
    rpc_url: str | None = typer.Option(None, "--rpc-url", help="JSON-RPC endpoint (default: MOONBASE_RPC)"),
    contract: str | None = typer.Option(None, "--contract", help="Autometa contract (default: REGISTRY_ADDRESS)"),
) -> None:
    """Run the scheduler: index events, follow blocks, queue due runs. With REDIS_URL several may
    run; one is active (a Redis lease) and the others stand by."""
    asyncio.run(run_scheduler(rpc_url, contract))
