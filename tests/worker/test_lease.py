"""One active scheduler: the standby takes over within seconds when the active one dies."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis

from autometa.chain.web3 import connect_async
from autometa.worker.blocks import BlockFollower
from autometa.worker.lease import RedisLease
from autometa.worker.prices import PriceReader
from autometa.worker.queue import RedisJobQueue
from autometa.worker.scheduler import Scheduler
from autometa.worker.sources import ChainWorkflowSource

from .conftest import REDIS_URL


@pytest.mark.redis
async def test_lease_is_exclusive_and_expires(redis_prefix: str) -> None:
    redis = Redis.from_url(REDIS_URL)
    a = RedisLease(redis, f"{redis_prefix}:lease", ttl_s=1.0, holder="a")
    b = RedisLease(redis, f"{redis_prefix}:lease", ttl_s=1.0, holder="b")
    assert await a.acquire() and not await b.acquire()
    assert await a.acquire()  # renewal
    await asyncio.sleep(1.2)  # a stalls past its lease
    assert await b.acquire() and not await a.acquire()
    await a.release()  # a's release cannot drop b's lease
    assert await b.current_holder() == "b"
    await redis.aclose()


@pytest.mark.redis
async def test_standby_scheduler_takes_over(dev_chain, redis_prefix: str) -> None:  # type: ignore[no-untyped-def]
    redis = Redis.from_url(REDIS_URL)
    address = dev_chain.deployment.address
    schedulers, stops, tasks = [], [], []
    for name in ("first", "second"):
        w3 = connect_async(dev_chain.url)
        queue = RedisJobQueue(REDIS_URL, redis_prefix)
        await queue.startup()
        scheduler = Scheduler(
            w3,
            ChainWorkflowSource(w3, address),
            queue,
            PriceReader(w3, address),
            lease=RedisLease(redis, f"{redis_prefix}:lease", ttl_s=1.5, holder=name),
            follower=BlockFollower(w3, poll_interval=0.2),
        )
        stop = asyncio.Event()
        schedulers.append(scheduler)
        stops.append(stop)
        tasks.append(asyncio.create_task(scheduler.run(stop)))
        await asyncio.sleep(0.5)
    try:
        assert schedulers[0].loaded and not schedulers[1].loaded
        # the active one dies without releasing its lease
        tasks[0].cancel()
        died = time.monotonic()
        # ttl 1.5 s plus its index load: 5 s was exceeded once on a loaded CI machine
        while not schedulers[1].loaded:
            assert time.monotonic() - died < 15, "standby did not take over"
            await asyncio.sleep(0.05)
        dev_chain.w3.provider.make_request("evm_mine", [])
        before = schedulers[1].last_block
        for _ in range(50):
            if schedulers[1].last_block != before:
                break
            await asyncio.sleep(0.1)
        assert schedulers[1].last_block is not None and schedulers[1].last_block != before
    finally:
        stops[1].set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
        for s in schedulers:
            await s.queue.shutdown()  # type: ignore[attr-defined]
        await redis.aclose()


@pytest.mark.redis
async def test_heartbeat_reports_a_new_holder_at_once(redis_prefix: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The first beat is written before the lease is taken; taking it beats again straight away,
    so GET /api/workers names the active scheduler long before the next periodic beat."""
    from autometa.store import Store
    from autometa.worker.presence import keep_heartbeat, scheduler_extra

    store = Store.open(f"sqlite:///{tmp_path}/beats.db")
    redis = Redis.from_url(REDIS_URL)
    lease = RedisLease(redis, f"{redis_prefix}:lease", ttl_s=5.0, holder="only")
    stop = asyncio.Event()
    beating = asyncio.create_task(
        keep_heartbeat(store, "only", "scheduler", stop, scheduler_extra(lease, 31337), every_s=60, wake=lease.changed)
    )
    try:
        await asyncio.sleep(0.3)
        assert store.heartbeats.all()[0].extra["active"] is False  # nobody holds it yet
        assert await lease.acquire()
        deadline = time.monotonic() + 2  # far less than every_s
        while store.heartbeats.all()[0].extra.get("lease_holder") != "only":
            assert time.monotonic() < deadline, store.heartbeats.all()[0].extra
            await asyncio.sleep(0.05)
        assert store.heartbeats.all()[0].extra["active"] is True
    finally:
        stop.set()
        await beating
        await lease.release()
        await redis.aclose()
