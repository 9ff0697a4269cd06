"""The job queue: deterministic ids make duplicate enqueues no-ops; a dead consumer's jobs are
reclaimed by a living one within seconds."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from autometa.worker.queue import Delivery, InMemoryJobQueue, Job, RedisJobQueue

from .conftest import REDIS_URL


async def _next(queue: InMemoryJobQueue | RedisJobQueue, timeout: float = 5.0) -> Delivery:
    it = queue.deliveries().__aiter__()
    return await asyncio.wait_for(it.__anext__(), timeout)


async def test_in_memory_duplicate_enqueue_is_a_noop() -> None:
    queue = InMemoryJobQueue()
    await queue.startup()
    job = Job(5, 2, 2, 100.0, token="ethereum", price=319815000000, price_source="oracle")
    assert await queue.enqueue(job) is True
    assert await queue.enqueue(Job(5, 2, 2, 101.0)) is False
    assert queue.pending() == 1
    assert (await _next(queue)).job == job
    await queue.release(job)  # skipped: may be queued again
    assert await queue.enqueue(job) is True
    await queue.shutdown()


@pytest.mark.redis
async def test_redis_duplicate_enqueue_is_a_noop_across_processes(redis_prefix: str) -> None:
    a, b = RedisJobQueue(REDIS_URL, redis_prefix), RedisJobQueue(REDIS_URL, redis_prefix)
    for q in (a, b):
        await q.startup()
    try:
        results = await asyncio.gather(*(q.enqueue(Job(9, 0, 0, 1.0)) for q in (a, b, a, b)))
        assert sorted(results) == [False, False, False, True]
        delivery = await _next(a)
        assert delivery.job.job_id == "run:9:0"
        await delivery.ack()
        assert await a.backlog() == 0
    finally:
        for q in (a, b):
            await q.shutdown()


@pytest.mark.redis
async def test_dead_consumers_jobs_are_reclaimed_live_ones_are_not(redis_prefix: str) -> None:
    dead = RedisJobQueue(REDIS_URL, redis_prefix, consumer="dead", idle_timeout_ms=1000)
    alive = RedisJobQueue(REDIS_URL, redis_prefix, consumer="alive", idle_timeout_ms=1000)
    other = RedisJobQueue(REDIS_URL, redis_prefix, consumer="other", idle_timeout_ms=1000)
    for q in (dead, alive, other):
        await q.startup()
    try:
        await dead.enqueue(Job(1, 0, 0, 1.0))
        taken = await _next(dead)  # then "dies": never acknowledges
        await dead.enqueue(Job(2, 0, 0, 1.0))
        held = await _next(alive)
        start = time.monotonic()

        async def keep_alive() -> None:
            while True:
                await alive.touch([held])
                await asyncio.sleep(0.3)

        toucher = asyncio.create_task(keep_alive())
        got = await _next(other, timeout=10)
        assert got.job.job_id == taken.job.job_id
        assert time.monotonic() - start < 5
        await got.ack()
        with pytest.raises(TimeoutError):  # the live consumer's job stays with it
            await _next(other, timeout=2.5)
        toucher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await toucher
        await held.ack()
    finally:
        for q in (dead, alive, other):
            await q.shutdown()


async def test_in_memory_enqueue_many_skips_claimed_runs() -> None:
    queue = InMemoryJobQueue()
    await queue.startup()
    assert await queue.enqueue(Job(1, 0, 0, 1.0)) is True
    jobs = [Job(i, 0, 0, 1.0, gas_limit=30_000) for i in range(5)] + [Job(3, 0, 0, 2.0)]
    assert await queue.enqueue_many(jobs) == 4  # 1 was queued before, 3 twice in the list
    assert queue.pending() == 5
    await queue.shutdown()


@pytest.mark.redis
async def test_redis_enqueue_many_pipelines_claims_and_entries(redis_prefix: str) -> None:
    a, b = RedisJobQueue(REDIS_URL, redis_prefix), RedisJobQueue(REDIS_URL, redis_prefix)
    for q in (a, b):
        await q.startup()
    try:
        assert await b.enqueue(Job(7, 0, 0, 1.0)) is True
        jobs = [Job(i, 0, 0, 1.0, trigger_block=5, gas_limit=30_000 + i) for i in range(250)]
        jobs.append(Job(200, 0, 0, 9.0))  # a duplicate within the list, in another chunk
        # Chunks of 100: the duplicate's claim is taken by the earlier chunk; another queue's
        # claim (job 7) holds too.
        assert await a.enqueue_many(jobs, chunk=100) == 249
        assert await a.enqueue_many(jobs[:10], chunk=3) == 0  # all claimed now
        it = b.deliveries().__aiter__()
        seen = [await asyncio.wait_for(it.__anext__(), 5) for _ in range(250)]
        assert sorted(d.job.workflow_id for d in seen) == list(range(250))
        by_id = {d.job.workflow_id: d.job for d in seen}
        assert by_id[42] == jobs[42]  # every field round-trips, gas limit included
        for d in seen:
            await d.ack()
        assert await a.backlog() == 0
        await a.release(jobs[3])
        assert await a.enqueue_many([jobs[3], jobs[4]]) == 1  # only the released one
    finally:
        for q in (a, b):
            await q.shutdown()


def test_a_job_from_a_newer_scheduler_still_decodes() -> None:
    job = Job(3, 1, 0, 5.0, gas_limit=30_000)
    raw = job.encode().decode().replace("}", ',"added_later":1}')
    assert Job.decode(raw) == job
    assert Job.decode(raw.replace(',"gas_limit":30000', "")).gas_limit == 0  # from an older one: unknown
