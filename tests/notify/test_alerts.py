"""The events workers observe (autometa.notify.alerts), on a real dev chain, real Redis and the
real store, delivered to a local receiver that verifies every signature: run.missed,
queue.backlog, scheduler.failover, rpc.down / rpc.recovered and executor.low_gas — each once
per crossing, each naming no secret."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from autometa.chain.accounts import dev_role
from autometa.chain.sender import TransactionSender
from autometa.chain.web3 import RpcRetry, connect_async
from autometa.notify.alerts import Alerts, Thresholds, watch_rpc
from autometa.notify.operator import parse_operator_subscriptions
from autometa.notify.targets import AddressGuard, parse_networks
from autometa.notify.watches import BacklogWatch, LowGasWatch, MissedWatch, RpcWatch
from autometa.notify.worker import DeliveryConfig, DeliveryWorker
from autometa.store import Store
from autometa.store.notify_models import NotifyEvent
from autometa.worker.executor import Executor
from autometa.worker.lease import RedisLease
from autometa.worker.prices import PriceReader
from autometa.worker.queue import Delivery, InMemoryJobQueue, Job
from autometa.worker.scheduler import Scheduler
from autometa.worker.sources import ChainWorkflowSource
from tests.notify.conftest import SECRET
from tests.notify.helpers import CHAIN, add_workflow
from tests.notify.receiver import Receiver
from tests.support.rpc_proxy import RpcProxy
from tests.worker.conftest import REDIS_URL
from tests.worker.helpers import advance, create, deposit, now, spec

FAST = DeliveryConfig(
    concurrency=8,
    poll_s=0.05,
    lease_s=5,
    max_attempts=3,
    backoff_base_s=0.05,
    backoff_max_s=0.2,
    timeout_s=2.0,
    max_response_bytes=4096,
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'alerts.db'}") as s:
        yield s


def operator_hook(store: Store, receiver: Receiver, events: list[str]) -> None:
    """The operator's subscription, as NOTIFY_OPERATOR_SUBSCRIPTIONS configures it."""
    raw = json.dumps(
        [{"name": "ops", "channel": "webhook", "target": receiver.url, "secret": SECRET, "events": events}]
    )
    store.notifications.sync_operator(CHAIN, parse_operator_subscriptions(raw))


def events(store: Store, kind: str | None = None) -> list[NotifyEvent]:
    with store.session() as s:
        q = select(NotifyEvent).order_by(NotifyEvent.id)
        return list(s.scalars(q.where(NotifyEvent.kind == kind) if kind else q).all())


async def deliver(store: Store, done: Callable[[], bool], timeout: float = 20) -> None:
    worker = DeliveryWorker(store, FAST, guard=AddressGuard(parse_networks(["127.0.0.0/8"])))
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    deadline = asyncio.get_running_loop().time() + timeout
    while not done() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    stop.set()
    await task


async def wait_for(predicate: Callable[[], bool], timeout: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


# ---------------------------------------------------------------- the trackers' rules


def test_low_gas_once_per_crossing_and_at_most_once_per_n_blocks() -> None:
    w = LowGasWatch(threshold_wei=100, every_blocks=10)
    assert w.due(5) and not w.observe(150, 5)
    assert not w.due(14) and w.due(15)
    assert w.observe(99, 15) and not w.observe(50, 25)  # still low: not again
    assert not w.observe(-1, 35) and w.low  # unreadable: no change
    assert not w.observe(100, 45) and not w.low  # topped up
    assert w.observe(10, 55)  # a new crossing
    assert w.observe(10**20, 60, refused=True) is False  # already low
    w.observe(10**20, 70)
    assert w.observe(10**20, 71, refused=True)  # the node refused a batch: low whatever the threshold
    assert not LowGasWatch(threshold_wei=0, every_blocks=1).due(1)  # 0: off


def test_rpc_down_needs_failures_for_the_whole_window_and_recovers_once() -> None:
    t = [0.0]
    w = RpcWatch(down_after_s=30, clock=lambda: t[0])
    assert not w.failure("reset")
    t[0] = 29
    assert not w.failure("reset")
    assert w.success() is None  # one answer: it was never down
    t[0] = 40
    assert not w.failure("reset")
    t[0] = 71
    assert w.failure("reset") and not w.failure("reset")  # once per outage
    t[0] = 80
    assert w.success() == 40 and w.success() is None


def test_missed_and_backlog_rules() -> None:
    m = MissedWatch(missed_blocks=3, backlog_blocks=2)
    m.handed_out(1, 0, 100)
    m.handed_out(1, 0, 101)  # offered again: it has waited since the first time
    m.handed_out(2, 5, 101)
    assert m.check(102) == ([], 0, 2)
    assert m.check(103) == ([(1, 0, 100)], 1, 3)
    assert m.check(104) == ([(2, 5, 101)], 2, 4)  # 1 is not reported again
    m.forget(1)
    m.handed_out(1, 1, 104)  # the next run: a new wait
    assert m.check(106) == ([], 1, 5)
    b = BacklogWatch(max_wait_blocks=2, max_depth=10)
    assert not b.observe(0, 0, 10) and b.observe(0, 0, 11) and not b.observe(5, 1, None)
    assert not b.observe(0, 0, 0) and b.observe(3, 1, 0)


# ---------------------------------------------------------------- on the chain


async def test_run_missed_and_backlog_from_the_scheduler(dev_chain, database_url: str, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    """Two runs fall due; one is executed at once, the other never: after NOTIFY_MISSED_BLOCKS
    its owner hears run.missed (once), the operator queue.backlog (once)."""
    w3, address, user = dev_chain.w3, dev_chain.deployment.address, dev_role("user")
    deposit(w3, address, user, 10**18)
    t0 = now(w3)
    done_id, late_id = (create(w3, address, user, spec(0, {"at": t0 + 100})) for _ in range(2))
    with Store.open(database_url) as store:
        for wid in (done_id, late_id):
            add_workflow(store, wid, owner=user.address)
        store.notifications.subscribe(
            chain_id=CHAIN,
            owner=user.address,
            name="mine",
            channel="webhook",
            target=receiver.url,
            target_hint="h",
            secret=SECRET,
            events=["run.missed"],
        )
        operator_hook(store, receiver, ["queue.backlog"])
        alerts = Alerts(
            store, CHAIN, Thresholds(missed_blocks=3, backlog_blocks=2, backlog_depth=100), source="scheduler:test"
        )
        queue = InMemoryJobQueue()
        await queue.startup()
        aw3 = connect_async(dev_chain.url)
        scheduler = Scheduler(aw3, ChainWorkflowSource(aw3, address), queue, PriceReader(aw3, address), alerts=alerts)
        await scheduler.load()
        assert (await scheduler.process_block(advance(w3, 120))).enqueued == 2
        it = queue.deliveries().__aiter__()
        batch: list[Delivery] = [await it.__anext__(), await it.__anext__()]
        executor = Executor(aw3, address, TransactionSender(aw3, dev_role("executor")), queue)
        outcome = await executor.execute([d for d in batch if d.job.workflow_id == done_id])
        assert outcome.executed == [(done_id, 0)]
        for _ in range(6):
            await scheduler.process_block(advance(w3, 1))
        missed, backlog = events(store, "run.missed"), events(store, "queue.backlog")
        assert [(e.workflow_id, e.owner, e.payload["data"]["run_index"]) for e in missed] == [
            (late_id, user.address, 0)
        ]
        assert missed[0].payload["data"]["waited_blocks"] == 3
        assert len(backlog) == 1 and backlog[0].payload["data"]["waiting_long"] == 1
        await deliver(store, lambda: len(receiver.keys) == 2)
        assert sorted(k.split(":")[0] for k in receiver.keys) == ["queue.backlog", "run.missed"]
        assert receiver.duplicates == 0 and receiver.bad_signatures == 0
        await queue.shutdown()


@pytest.mark.redis
async def test_scheduler_failover_is_reported_and_a_clean_hand_over_is_not(
    dev_chain,
    store: Store,
    receiver: Receiver,
    redis_prefix: str,  # type: ignore[no-untyped-def]
) -> None:
    redis = Redis.from_url(REDIS_URL)
    key = f"{redis_prefix}:lease"
    polite = RedisLease(redis, key, ttl_s=0.3, holder="polite")
    assert await polite.acquire()
    await polite.release()  # a deploy: the lease handed over cleanly
    crashed = RedisLease(redis, key, ttl_s=0.3, holder="crashed")
    assert await crashed.acquire() and crashed.took_over_from is None
    await asyncio.sleep(0.5)  # it dies: no renewal, the lease lapses
    operator_hook(store, receiver, ["scheduler.failover"])
    standby = RedisLease(redis, key, ttl_s=0.3, holder="standby")
    aw3 = connect_async(dev_chain.url)
    address = dev_chain.deployment.address
    alerts = Alerts(store, CHAIN, source="scheduler:standby")
    scheduler = Scheduler(
        aw3,
        ChainWorkflowSource(aw3, address),
        InMemoryJobQueue(),
        PriceReader(aw3, address),
        lease=standby,
        alerts=alerts,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    await wait_for(lambda: bool(events(store, "scheduler.failover")))
    stop.set()
    await task
    (event,) = events(store, "scheduler.failover")
    assert event.payload["data"]["previous_holder"] == "crashed" and event.payload["data"]["holder"] == "standby"
    assert event.owner is None
    await deliver(store, lambda: len(receiver.keys) == 1)
    assert len(receiver.keys) == 1 and receiver.bad_signatures == 0
    await redis.aclose()


async def test_rpc_down_and_recovered_name_the_host_not_the_key(dev_chain, store: Store, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    operator_hook(store, receiver, ["rpc.down", "rpc.recovered"])
    with RpcProxy(dev_chain.url) as proxy:
        url = f"{proxy.url}/v2/sk_live_rpc_key_0123456789"
        aw3 = connect_async(url, timeout=2, retry=RpcRetry(attempts=1))
        alerts = Alerts(store, CHAIN, Thresholds(rpc_down_s=0.3), source="executor:test")
        watch = watch_rpc(aw3, alerts, url)
        assert int(await aw3.eth.block_number) > 0
        proxy.fault("eth_blockNumber", "reset")
        for _ in range(4):
            with pytest.raises(Exception):  # noqa: B017 - whatever the transport raises
                await aw3.eth.block_number
            await asyncio.sleep(0.15)
        assert watch.down
        await wait_for(lambda: bool(events(store, "rpc.down")))
        proxy.clear()
        assert int(await aw3.eth.block_number) > 0
        await wait_for(lambda: bool(events(store, "rpc.recovered")))
    down, up = events(store, "rpc.down"), events(store, "rpc.recovered")
    assert len(down) == 1 and len(up) == 1
    assert down[0].payload["data"]["endpoint"] == f"http://127.0.0.1:{proxy.port}"
    assert up[0].payload["data"]["down_s"] >= 0.3
    await deliver(store, lambda: len(receiver.keys) == 2)
    assert len(receiver.keys) == 2 and receiver.bad_signatures == 0
    assert all("sk_live_rpc_key" not in json.dumps(body) for body in receiver.bodies.values())


async def test_executor_low_gas_once_and_not_at_every_batch(dev_chain, store: Store, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    w3, address, user = dev_chain.w3, dev_chain.deployment.address, dev_role("user")
    deposit(w3, address, user, 10**18)
    operator_hook(store, receiver, ["executor.low_gas"])
    executor_key = dev_role("executor")
    balance = int(w3.eth.get_balance(executor_key.address))
    t0 = now(w3)
    ids = [create(w3, address, user, spec(0, {"at": t0 + 100})) for _ in range(3)]
    advance(w3, 120)
    queue = InMemoryJobQueue()
    await queue.startup()
    aw3 = connect_async(dev_chain.url)
    sender = TransactionSender(aw3, executor_key)

    def executor(threshold: int) -> Executor:
        alerts = Alerts(store, CHAIN, Thresholds(low_gas_wei=threshold, gas_check_blocks=100), source="executor:t")
        return Executor(aw3, address, sender, queue, alerts=alerts)

    async def run(ex: Executor, wid: int) -> None:
        assert await queue.enqueue(Job(wid, 0, 0, float(t0 + 120), gas_limit=30_000))
        it = queue.deliveries().__aiter__()
        assert (await ex.execute([await it.__anext__()])).executed == [(wid, 0)]

    await run(executor(threshold=balance // 2), ids[0])  # well funded: nothing to say
    assert events(store, "executor.low_gas") == []
    low = executor(threshold=balance * 2)
    await run(low, ids[1])
    checked = low.gas_watch.checked_block if low.gas_watch else None
    await run(low, ids[2])  # the next block: no second balance read, no second event
    assert low.gas_watch is not None and low.gas_watch.checked_block == checked
    (event,) = events(store, "executor.low_gas")
    data = event.payload["data"]
    assert data["executor"] == executor_key.address and 0 < int(data["balance_wei"]) < balance
    assert data["threshold_wei"] == str(balance * 2) and data["refused"] is False
    await deliver(store, lambda: len(receiver.keys) == 1)
    assert len(receiver.keys) == 1 and receiver.bad_signatures == 0
    await queue.shutdown()


def test_thresholds_come_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from autometa.config import Settings

    monkeypatch.setenv("NOTIFY_MISSED_BLOCKS", "7")
    monkeypatch.setenv("NOTIFY_LOW_GAS_WEI", "5")
    t = Thresholds.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    assert (t.missed_blocks, t.low_gas_wei) == (7, 5)
    monkeypatch.setenv("NOTIFY_MISSED_BLOCKS", "0")
    with pytest.raises(ValueError, match="NOTIFY_MISSED_BLOCKS"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_operator_entries_take_the_runway_defaults_and_name_bad_ones() -> None:
    entry = {"name": "ops", "channel": "webhook", "target": "https://ops.example/hook", "secret": SECRET}
    (spec,) = parse_operator_subscriptions(json.dumps([entry]), runway_runs=7, runway_days=2.5)
    assert (spec["runway_runs"], spec["runway_days"]) == (7, 2.5)
    (spec,) = parse_operator_subscriptions(json.dumps([entry | {"runway_runs": 1}]), runway_runs=7)
    assert spec["runway_runs"] == 1
    for bad in ({"runway_runs": "many"}, {"runway_runs": -1}, {"runway_days": "x"}, {"runway_runs": True}):
        with pytest.raises(ValueError, match=r"entry 0 \(ops\): runway_"):
            parse_operator_subscriptions(json.dumps([entry | bad]))


def test_an_endpoint_list_is_named_by_hosts_only() -> None:
    from autometa.notify.alerts import endpoint_hint

    hint = endpoint_hint("https://base.example/v2/SECRETKEY, http://127.0.0.1:8545/?key=OTHER")
    assert hint == "https://base.example,http://127.0.0.1:8545"
