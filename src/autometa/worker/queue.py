"""The job queue between the scheduler and the executors, on taskiq brokers.

* Embedded (no REDIS_URL): taskiq's `InMemoryBroker`; a registered task hands each job to the
  executor's in-process buffer.
* Distributed: taskiq-redis `RedisStreamBroker` (one stream, one consumer group, acknowledged).
  A job stays pending until its executor acknowledges it after recording the outcome; a job
  whose executor died (no acknowledgement, idle longer than `idle_timeout_ms`) is claimed by
  another executor. Live executors keep their held jobs fresh (`touch`), so the timeout can be a
  few seconds without stealing work from a slow but living executor.

A job's id is deterministic, `run:<workflow id>:<run index>`, and enqueuing claims it first (an
in-process set, or Redis `SET NX PX` on the id), so enqueuing the same run again is a no-op
until the claim expires or an executor releases it (the run was skipped and may be retried).
`enqueue_many` does a whole block's due runs in two Redis round trips (one pipeline of claims,
one of stream appends): a thousand runs due together are queued in milliseconds rather than
the ~0.5 s of a thousand separate claim + append exchanges, which is half a block on a 1 s chain.
We use the brokers' kick/listen directly rather than taskiq's per-message task runner: the
executor gathers many jobs into one `executeBatch` transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from taskiq import InMemoryBroker
from taskiq.acks import AckableMessage
from taskiq.message import BrokerMessage
from taskiq_redis import RedisStreamBroker

log = structlog.get_logger("autometa.worker.queue")

TASK_NAME = "autometa.execute_run"
DEFAULT_CLAIM_TTL_S = 300.0


@dataclass(frozen=True)
class Job:
    """One due run. `triggered_at` is when the trigger was seen to hold (unix s: the block
    timestamp); `price` (8 decimals) and `price_source` say what price fired a PRICE trigger;
    `tick` names a CRON run's tick and `proof` is what a STATE or LOG run hands the contract."""

    workflow_id: int
    run_index: int
    kind: int
    triggered_at: float
    trigger_block: int = 0
    token: str | None = None
    price: int | None = None
    price_source: str | None = None
    enqueued_at: float = field(default_factory=time.time)
    gas_limit: int = 0  # the action's on-chain gasLimit; 0: unknown (the executor estimates)
    base_fee: int = 0  # the trigger block's base fee (wei): the executor prices from it, no request; 0: unknown
    tick: int = 0  # CRON: the cron tick (unix s, a whole minute) this run is for; it travels in the run's price word
    proof: str | None = None  # STATE / LOG: 0x-hex bytes for `executeWithProof` (triggerData / log attestation)

    @property
    def job_id(self) -> str:
        return job_id(self.workflow_id, self.run_index)

    def encode(self) -> bytes:
        # The fields by name, not `asdict` (a recursive deep copy): the scheduler encodes a
        # thousand jobs in a burst's block.
        return json.dumps({name: getattr(self, name) for name in _JOB_FIELDS}, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes | str) -> Job:
        """Fields this version does not know (a newer scheduler's) are ignored, not fatal."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in json.loads(raw).items() if k in known})


_JOB_FIELDS = tuple(f.name for f in fields(Job))


def job_id(workflow_id: int, run_index: int) -> str:
    return f"run:{workflow_id}:{run_index}"


@dataclass
class Delivery:
    """A job handed to an executor; `ack` once its outcome is recorded."""

    job: Job
    ack: Callable[[], Awaitable[None]]
    message_id: str | None = None  # the stream entry (distributed mode)


class JobQueue(Protocol):
    """What the scheduler and the executor need of a queue."""

    async def startup(self) -> None: ...

    async def shutdown(self) -> None: ...

    async def enqueue(self, job: Job) -> bool:
        """Queue `job` unless its run is already queued; True if it was queued now."""
        ...

    async def enqueue_many(self, jobs: list[Job]) -> int:
        """`enqueue` for each job (in order), in as few round trips as the queue allows; returns
        how many were queued now."""
        ...

    async def release(self, job: Job) -> None:
        """Forget the claim on `job`'s id, so the run can be enqueued again (after a skip)."""
        ...

    def deliveries(self) -> AsyncIterator[Delivery]:
        """Jobs for this consumer, forever."""
        ...

    async def touch(self, deliveries: list[Delivery]) -> None:
        """Tell the queue these jobs are still being worked on (no reclaim)."""
        ...

    async def generation(self) -> str:
        """A token for the queue's current state: it changes when the queue lost its jobs and
        claims (Redis restarted without persistence), so the scheduler knows to offer again at
        once what it handed out and has not seen executed."""
        ...

    async def hand_back(self, deliveries: list[Delivery]) -> int:
        """Give these jobs back to the queue now, for any consumer, keeping their claims (they
        are still queued, so the scheduler must not offer them again); returns how many."""
        ...

    async def hand_back_held(self, keep: set[str]) -> int:
        """`hand_back` every job delivered to this consumer and not acknowledged, except the
        stream entries in `keep` (those still being worked on); returns how many."""
        ...


class InMemoryJobQueue:
    """One process: taskiq's InMemoryBroker calls our task, which buffers the job."""

    def __init__(self, claim_ttl_s: float = DEFAULT_CLAIM_TTL_S) -> None:
        self.broker = InMemoryBroker(await_inplace=True)
        self.claim_ttl_s = claim_ttl_s
        self._claims: dict[str, float] = {}
        self._buffer: asyncio.Queue[Job] = asyncio.Queue()
        self._generation = uuid.uuid4().hex  # lost only with the process

        async def execute_run(payload: str) -> None:
            await self._buffer.put(Job.decode(payload))

        self._task = self.broker.register_task(execute_run, task_name=TASK_NAME)

    async def startup(self) -> None:
        await self.broker.startup()

    async def shutdown(self) -> None:
        await self.broker.shutdown()

    def _claim(self, jid: str) -> bool:
        now = time.monotonic()
        expires = self._claims.get(jid)
        if expires is not None and expires > now:
            return False
        if len(self._claims) > 100_000:
            self._claims = {k: v for k, v in self._claims.items() if v > now}
        self._claims[jid] = now + self.claim_ttl_s
        return True

    async def enqueue(self, job: Job) -> bool:
        if not self._claim(job.job_id):
            return False
        await self._task.kicker().with_task_id(job.job_id).kiq(job.encode().decode())
        return True

    async def enqueue_many(self, jobs: list[Job]) -> int:
        return sum([await self.enqueue(job) for job in jobs])

    async def release(self, job: Job) -> None:
        self._claims.pop(job.job_id, None)

    async def deliveries(self) -> AsyncIterator[Delivery]:
        async def ack() -> None:
            return None

        while True:
            yield Delivery(await self._buffer.get(), ack)

    async def touch(self, deliveries: list[Delivery]) -> None:
        return None

    async def generation(self) -> str:
        return self._generation

    async def hand_back(self, deliveries: list[Delivery]) -> int:
        for d in deliveries:
            await self._buffer.put(d.job)
        return len(deliveries)

    async def hand_back_held(self, keep: set[str]) -> int:
        return 0  # a job leaves the buffer only as a delivery the executor holds

    def pending(self) -> int:
        return self._buffer.qsize()


class StreamMessage(AckableMessage):
    """A stream entry with its id, so a living executor can keep it claimed (`touch`)."""

    message_id: str = ""


class ReclaimingStreamBroker(RedisStreamBroker):
    """RedisStreamBroker whose `listen` also claims idle jobs of dead consumers when no new
    jobs arrive (taskiq-redis 1.2 only looks for them after a read that returned something,
    so a dead executor's last jobs could wait forever on a quiet queue)."""

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:  # type: ignore[override]
        async with Redis(connection_pool=self.connection_pool) as conn:
            while True:
                try:
                    fetched: Any = await conn.xreadgroup(
                        self.consumer_group_name,
                        self.consumer_name,
                        {self.queue_name: ">"},
                        block=self.block,
                        count=self.count,
                    )
                except RedisError as exc:
                    await self._survive(exc)
                    continue
                for stream, entries in fetched or []:
                    for msg_id, msg in entries:
                        yield self._message(stream, msg_id, msg)
                try:
                    autoclaimed: Any = await conn.xautoclaim(
                        self.queue_name,
                        self.consumer_group_name,
                        self.consumer_name,
                        min_idle_time=self.idle_timeout,
                        count=self.unacknowledged_batch_size,
                    )
                except RedisError as exc:
                    await self._survive(exc)
                    continue
                claimed = autoclaimed[1]
                if claimed:
                    log.warning("queue.reclaimed", jobs=len(claimed), consumer=self.consumer_name)
                for msg_id, msg in claimed:
                    if msg is not None:  # None: deleted from the stream meanwhile
                        yield self._message(self.queue_name, msg_id, msg)

    async def _survive(self, exc: RedisError) -> None:
        """Redis went away (or came back empty, without our consumer group): wait and retry,
        declaring the group again, rather than let the executor die with its connection. A
        restarted Redis without persistence lost the queued jobs too: the scheduler offers
        what it handed out again after its refire delay. A read cut short by our own
        cancellation (a reader stopped, a `wait_for` timing out) can surface as a connection
        error: then the cancellation goes on, or the listen would run on and whoever awaits
        the cancelled read would wait for ever."""
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError from exc
        if isinstance(exc, ResponseError) and "NOGROUP" not in str(exc):
            raise exc
        log.warning("queue.redis_unavailable", error=str(exc), consumer=self.consumer_name)
        await asyncio.sleep(1.0)
        with contextlib.suppress(RedisError):
            await self._declare_consumer_group()

    def _message(self, stream: Any, msg_id: Any, msg: Any) -> StreamMessage:
        return StreamMessage(
            data=msg[b"data"],
            ack=self._ack_generator(id=msg_id, queue_name=stream),
            message_id=msg_id.decode() if isinstance(msg_id, bytes) else str(msg_id),
        )


# Re-append a stream entry and acknowledge the old one, only if it is still pending for this
# consumer: handing the same entry back twice (or one another consumer reclaimed) is a no-op, so
# a job is never in the stream twice.
_HAND_BACK = """
local mine = redis.call('xpending', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #mine == 0 then return 0 end
local entry = redis.call('xrange', KEYS[1], ARGV[3], ARGV[3])
redis.call('xack', KEYS[1], ARGV[1], ARGV[3])
if #entry == 0 then return 0 end
redis.call('xadd', KEYS[1], '*', unpack(entry[1][2]))
return 1
"""


class RedisJobQueue:
    """Several processes: one Redis stream, one consumer group; claims as Redis keys.

    `prefix` names every key (tests use a unique one). `idle_timeout_ms`: how long a job may
    sit unacknowledged and untouched before another executor takes it over. `read_count`: jobs
    per stream read; a read hands them all to this consumer, so it is kept to about one batch
    (the executor reads only when it can use them) and a burst spreads over the executors.
    """

    def __init__(
        self,
        url: str,
        prefix: str = "autometa",
        *,
        consumer: str | None = None,
        idle_timeout_ms: int = 5_000,
        claim_ttl_s: float = DEFAULT_CLAIM_TTL_S,
        read_count: int = 50,
        read_block_ms: int = 500,
    ) -> None:
        self.url, self.prefix = url, prefix
        self.stream = f"{prefix}:runs"
        self.group = f"{prefix}:executors"
        self.consumer = consumer or f"executor-{uuid.uuid4().hex[:8]}"
        self.claim_ttl_ms = int(claim_ttl_s * 1000)
        self.broker = ReclaimingStreamBroker(
            url,
            queue_name=self.stream,
            consumer_group_name=self.group,
            consumer_name=self.consumer,
            consumer_id="0",  # a new group sees jobs queued before any executor started
            idle_timeout=idle_timeout_ms,
            xread_block=read_block_ms,
            xread_count=read_count,
            unacknowledged_batch_size=read_count,
        )
        self.redis: Redis = Redis.from_url(url)

    def claim_key(self, jid: str) -> str:
        return f"{self.prefix}:job:{jid}"

    async def startup(self) -> None:
        await self.broker.startup()

    async def shutdown(self) -> None:
        await self.broker.shutdown()
        await self.redis.aclose()

    async def enqueue(self, job: Job) -> bool:
        if not await self.redis.set(self.claim_key(job.job_id), b"1", nx=True, px=self.claim_ttl_ms):
            return False
        await self.broker.kick(BrokerMessage(task_id=job.job_id, task_name=TASK_NAME, message=job.encode(), labels={}))
        return True

    async def enqueue_many(self, jobs: list[Job], chunk: int = 100) -> int:
        """Claims for `chunk` jobs in one pipeline, then the stream entries of those claimed now in
        another (the entry is what taskiq's `kick` appends). Chunks of ~100 let executors start
        on the first runs while the rest are still being queued (one chunk of 1,000 held every
        run back until all were claimed: ~0.4 s on a busy machine). A job whose claim is set but whose
        append fails (Redis gone between the two) is re-offered by the scheduler after its
        refire delay once the claim expires, like any lost job."""
        queued = 0
        for start in range(0, len(jobs), chunk):
            part = jobs[start : start + chunk]
            async with self.redis.pipeline(transaction=False) as pipe:
                for job in part:
                    pipe.set(self.claim_key(job.job_id), b"1", nx=True, px=self.claim_ttl_ms)
                claimed = await pipe.execute()
            fresh = [job for job, ok in zip(part, claimed, strict=True) if ok]
            if not fresh:
                continue
            async with self.redis.pipeline(transaction=False) as pipe:
                for job in fresh:
                    pipe.xadd(
                        self.stream,
                        {b"data": job.encode()},
                        maxlen=self.broker.maxlen,
                        approximate=self.broker.approximate,
                    )
                await pipe.execute()
            queued += len(fresh)
        return queued

    async def release(self, job: Job) -> None:
        await self.redis.delete(self.claim_key(job.job_id))

    async def deliveries(self) -> AsyncIterator[Delivery]:
        async for message in self.broker.listen():
            try:
                job = Job.decode(message.data)
            except (ValueError, TypeError) as exc:
                log.error("queue.bad_job", error=str(exc))
                await message.ack()  # type: ignore[misc]
                continue
            yield Delivery(job, message.ack, getattr(message, "message_id", None))  # type: ignore[arg-type]

    async def touch(self, deliveries: list[Delivery]) -> None:
        ids: list[Any] = [d.message_id for d in deliveries if d.message_id]
        if ids:
            # XCLAIM to ourselves with min-idle 0 resets the idle time: still ours, still alive.
            await self.redis.xclaim(self.stream, self.group, self.consumer, 0, ids, justid=True)

    async def generation(self) -> str:
        """A key set once per Redis lifetime (no expiry): gone with the jobs and claims."""
        token = uuid.uuid4().hex
        old = await self.redis.set(f"{self.prefix}:generation", token, nx=True, get=True)  # one round trip
        return token if old is None else old.decode() if isinstance(old, bytes) else str(old)

    async def hand_back(self, deliveries: list[Delivery]) -> int:
        return await self._hand_back([d.message_id for d in deliveries if d.message_id])

    async def hand_back_held(self, keep: set[str]) -> int:
        held: Any = await self.redis.xpending_range(
            self.stream, self.group, "-", "+", 10_000, consumername=self.consumer
        )
        ids = [m.decode() if isinstance(m, bytes) else str(m) for m in (e["message_id"] for e in held)]
        return await self._hand_back([i for i in ids if i not in keep])

    async def _hand_back(self, ids: list[str]) -> int:
        if not ids:
            return 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for mid in ids:
                pipe.eval(_HAND_BACK, 1, self.stream, self.group, self.consumer, mid)
            done = await pipe.execute()
        return sum(int(n) for n in done)

    async def pending(self) -> int:
        """Jobs delivered to some executor and not yet acknowledged."""
        with contextlib.suppress(Exception):
            info = await self.redis.xpending(self.stream, self.group)
            return int(info["pending"])
        return 0

    async def backlog(self) -> int:
        """Jobs not yet delivered to any executor plus those not yet acknowledged."""
        with contextlib.suppress(Exception):
            groups = await self.redis.xinfo_groups(self.stream)
            for g in groups:
                name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
                if name == self.group:
                    return int(g.get("lag") or 0) + int(g["pending"])
        return 0


def make_queue(redis_url: str | None, prefix: str = "autometa", **options: Any) -> JobQueue:
    """Redis streams when REDIS_URL is set, else the in-process queue."""
    if redis_url:
        return RedisJobQueue(redis_url, prefix, **options)
    return InMemoryJobQueue(**{k: v for k, v in options.items() if k == "claim_ttl_s"})
