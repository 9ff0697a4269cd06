"""The scheduler enqueues each due TIME / INTERVAL / PRICE run exactly once."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from redis.exceptions import RedisError

from autometa.chain.accounts import dev_role
from autometa.chain.deploy import register_assets, set_dev_price
from autometa.chain.web3 import connect_async
from autometa.prices import CoinGeckoClient, TieredPriceAdapter
from autometa.worker.prices import PriceReader
from autometa.worker.queue import InMemoryJobQueue, Job, RedisJobQueue
from autometa.worker.scheduler import Scheduler
from autometa.worker.sources import ChainWorkflowSource

from ..support.coingecko_stub import CoinGeckoStub
from ..support.services import PrivateRedis
from .helpers import advance, create, mine_at, now, seed_spec, spec


def _scheduler(dev_chain, queue: InMemoryJobQueue) -> Scheduler:  # type: ignore[no-untyped-def]
    w3 = connect_async(dev_chain.url)
    address = dev_chain.deployment.address
    # the block waits for its price read (not the default 0.5 s: a loaded machine's oracle read
    # can take longer, and the late path is test_a_stalled_price_source_does_not_hold_back_time_triggers's)
    return Scheduler(w3, ChainWorkflowSource(w3, address), queue, PriceReader(w3, address), price_wait_s=30.0)


async def test_due_runs_are_enqueued_exactly_once(dev_chain) -> None:  # type: ignore[no-untyped-def]
    w3, address, user = dev_chain.w3, dev_chain.deployment.address, dev_role("user")
    t0 = now(w3)
    time_id = create(w3, address, user, spec(0, {"at": t0 + 100}))
    interval_id = create(w3, address, user, spec(1, {"interval": 60, "start": t0 + 100}))
    price_id = create(w3, address, user, seed_spec())
    queue = InMemoryJobQueue()
    await queue.startup()
    scheduler = _scheduler(dev_chain, queue)
    assert await scheduler.load() == 3

    report = await scheduler.process_block(int(w3.eth.block_number))
    assert report.enqueued == 0  # not due yet; ethereum at 3250

    block = advance(w3, 120)
    report = await scheduler.process_block(block)
    assert report.enqueued == 2
    assert (await scheduler.process_block(advance(w3, 1))).enqueued == 0  # handed out once

    set_dev_price(w3, dev_role("admin"), dev_chain.deployment.feeds["ethereum"], Decimal("3198.15"))
    block = int(w3.eth.block_number)
    report = await scheduler.process_block(block)
    assert report.enqueued == 1
    assert (await scheduler.process_block(advance(w3, 1))).enqueued == 0

    jobs = [queue._buffer.get_nowait() for _ in range(queue.pending())]
    assert sorted((j.workflow_id, j.run_index) for j in jobs) == [(time_id, 0), (interval_id, 0), (price_id, 0)]
    price_job = next(j for j in jobs if j.workflow_id == price_id)
    assert (price_job.price, price_job.price_source, price_job.trigger_block) == (319815000000, "oracle", block)

    # a second scheduler (a standby taking over) offers the same runs: the queue drops them
    other = _scheduler(dev_chain, queue)
    await other.load()
    assert (await other.process_block(advance(w3, 1))).enqueued == 0
    assert (await other.process_block(advance(w3, 1))).due == 0  # its index fired them too
    await queue.shutdown()


async def test_changes_reach_the_index_without_a_reload(dev_chain) -> None:  # type: ignore[no-untyped-def]
    w3, address, user = dev_chain.w3, dev_chain.deployment.address, dev_role("user")
    queue = InMemoryJobQueue()
    await queue.startup()
    scheduler = _scheduler(dev_chain, queue)
    assert await scheduler.load() == 0
    wid = create(w3, address, user, spec(1, {"interval": 30, "start": 0}))
    report = await scheduler.process_block(int(w3.eth.block_number))
    assert (report.changed, report.enqueued) == (1, 1)
    assert queue._buffer.get_nowait().workflow_id == wid
    await queue.shutdown()


async def test_a_stalled_price_source_does_not_hold_back_time_triggers(dev_chain) -> None:  # type: ignore[no-untyped-def]
    """CoinGecko answers after 3 s (three blocks here): the time-due runs of that block and of
    the next are queued at once; the price run is queued when the price arrives, once."""
    w3, address, user = dev_chain.w3, dev_chain.deployment.address, dev_role("user")
    with CoinGeckoStub({"dogecoin": 0.2}) as coingecko:  # no dev feed: priced off-chain
        coingecko.delay = 3.0
        aw3 = connect_async(dev_chain.url)
        offchain = TieredPriceAdapter(CoinGeckoClient(coingecko.url, timeout=10, max_attempts=1))
        queue = InMemoryJobQueue()
        await queue.startup()
        scheduler = Scheduler(aw3, ChainWorkflowSource(aw3, address), queue, PriceReader(aw3, address, offchain))
        register_assets(w3, dev_role("admin"), address, ["dogecoin"])  # the admin registers the attested asset
        price_id = create(w3, address, user, spec(2, {"token": "dogecoin", "comparator": 0, "price_usd": "0.5"}))
        t0 = now(w3)
        first = create(w3, address, user, spec(0, {"at": t0 + 100}))
        second = create(w3, address, user, spec(0, {"at": t0 + 121}))
        await scheduler.load()
        try:
            started = time.monotonic()
            report = await scheduler.process_block(mine_at(w3, t0 + 120))  # `first` due, `second` a second later
            assert time.monotonic() - started < 2.0 and report.enqueued == 1  # the price read stalls 3 s
            started = time.monotonic()
            report = await scheduler.process_block(advance(w3, 1))  # the read is still stalled
            assert time.monotonic() - started < 2.0 and report.enqueued == 1  # the price read stalls 3 s
            assert [queue._buffer.get_nowait().workflow_id for _ in range(2)] == [first, second]
            job = await asyncio.wait_for(queue._buffer.get(), 5)  # once the price arrives
            assert (job.workflow_id, job.price, job.price_source) == (price_id, 20_000_000, "coingecko-direct")
            assert coingecko.requests == 1  # one read in flight at a time
            coingecko.delay = 0.0
            report = await scheduler.process_block(advance(w3, 1))
            assert report.due == 0 and queue.pending() == 0  # fired once
        finally:
            await offchain.aclose()
            await queue.shutdown()


async def test_runs_lost_with_redis_are_offered_again_at_once_and_once(dev_chain) -> None:  # type: ignore[no-untyped-def]
    """Redis restarts without persistence while a run is queued and not executed: the next block
    queues it again (not after refire_s, 30 s), and only once in the new Redis's lifetime."""
    w3, address, user = dev_chain.w3, dev_chain.deployment.address, dev_role("user")
    with PrivateRedis() as server:
        queue = RedisJobQueue(server.url, "autometa-test")
        await queue.startup()
        aw3 = connect_async(dev_chain.url)
        scheduler = Scheduler(aw3, ChainWorkflowSource(aw3, address), queue, PriceReader(aw3, address))
        wid = create(w3, address, user, spec(0, {"at": now(w3) + 100}))
        await scheduler.load()
        try:
            assert (await scheduler.process_block(advance(w3, 120))).enqueued == 1
            assert (await scheduler.process_block(advance(w3, 1))).enqueued == 0
            server.restart()  # the queued job and its claim are gone
            for _ in range(10):  # the first command on a dropped connection may fail, as in the loop
                try:
                    report = await scheduler.process_block(advance(w3, 1))
                    break
                except RedisError:
                    await asyncio.sleep(0.1)
            assert report.enqueued == 1
            for _ in range(2):
                assert (await scheduler.process_block(advance(w3, 1))).enqueued == 0
            entries = await queue.redis.xrange(queue.stream)
            assert [Job.decode(e[1][b"data"]).job_id for e in entries] == [f"run:{wid}:0"]
        finally:
            await queue.shutdown()
