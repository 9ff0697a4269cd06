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
        while not schedulers[1].loaded:
            assert time.monotonic() - died < 5, "standby did not take over"
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
