"""The executor sizes a batch's gas from its simulation (no eth_estimateGas) with room for every
action's gasLimit; a batch that reverts on chain anyway gives its runs back to the queue; an
executor takes runs from the stream only when it has a free slot for them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from structlog.testing import capture_logs
from web3 import Web3

from autometa.chain.accounts import dev_role
from autometa.chain.contracts import autometa
from autometa.chain.deploy import transact
from autometa.chain.fees import GWEI, FeePolicy
from autometa.chain.sender import SenderConfig, TransactionSender
from autometa.chain.web3 import connect_async
from autometa.domain.kinds import SkipReason
from autometa.worker.batch import BATCH_OVERHEAD, run_allowance
from autometa.worker.executor import Executor
from autometa.worker.prices import PriceReader
from autometa.worker.queue import Delivery, InMemoryJobQueue, Job, RedisJobQueue
from autometa.worker.scheduler import Scheduler
from autometa.worker.sources import ChainWorkflowSource

from .conftest import REDIS_URL
from .helpers import advance, create, deposit, now, spec

BIG_GAS_LIMIT = 2_000_000  # far more than a native transfer uses: only the gas check needs it


async def _deliveries(queue: InMemoryJobQueue, n: int) -> list[Delivery]:
    it = queue.deliveries().__aiter__()
    return [await it.__anext__() for _ in range(n)]


def _executor(dev_chain, queue: InMemoryJobQueue) -> Executor:  # type: ignore[no-untyped-def]
    aw3 = connect_async(dev_chain.url)
    return Executor(aw3, dev_chain.deployment.address, TransactionSender(aw3, dev_role("executor")), queue)


async def test_batch_gas_is_sized_from_the_simulation_and_covers_every_actions_gas_limit(dev_chain) -> None:  # type: ignore[no-untyped-def]
    w3, address, user = dev_chain.w3, dev_chain.deployment.address, dev_role("user")
    deposit(w3, address, user, 10**18)
    t0 = now(w3)
    ids = [create(w3, address, user, spec(0, {"at": t0 + 100})) for _ in range(2)]
    ids.append(create(w3, address, user, spec(0, {"at": t0 + 100}, gas_limit=BIG_GAS_LIMIT)))
    queue = InMemoryJobQueue()
    await queue.startup()
    aw3 = connect_async(dev_chain.url)
    scheduler = Scheduler(aw3, ChainWorkflowSource(aw3, address), queue, PriceReader(aw3, address))
    await scheduler.load()
    report = await scheduler.process_block(advance(w3, 120))
    assert report.enqueued == 3
    batch = await _deliveries(queue, 3)
    assert sorted(d.job.gas_limit for d in batch) == [30_000, 30_000, BIG_GAS_LIMIT]  # the scheduler passes them on
    before = int(w3.eth.block_number)

    outcome = await _executor(dev_chain, queue).execute(batch)

    assert sorted(outcome.executed) == sorted((wid, 0) for wid in ids) and not outcome.reverted
    tx = w3.eth.get_transaction(outcome.tx_hash)  # type: ignore[arg-type]
    assert outcome.gas is not None and tx["gas"] == outcome.gas  # sized by us, not estimated
    receipt = w3.eth.get_transaction_receipt(outcome.tx_hash)  # type: ignore[arg-type]
    assert receipt["gasUsed"] < BIG_GAS_LIMIT < outcome.gas
    # The allowance for the big gasLimit is what lets every run through: without it, the same
    # call on the same state skips the big run at the contract's gas check (a skip, never a
    # revert of the others: issue 12 item 5).
    call = {"from": tx["from"], "to": tx["to"], "data": "0x" + bytes(tx["input"]).hex()}

    def skips_at(gas: int) -> list[int]:
        reply = w3.provider.make_request(
            "eth_simulateV1",  # type: ignore[arg-type]
            [{"blockStateCalls": [{"calls": [{**call, "gas": hex(gas)}]}], "validation": False}, hex(before)],
        )
        result = reply["result"][0]["calls"][0]
        assert result["status"] in ("0x1", 1)  # never a revert
        topic = "0x" + Web3.keccak(text="RunSkipped(uint256,uint256,address,uint8)").hex().removeprefix("0x")
        return [int(raw["data"], 16) for raw in result["logs"] if raw["topics"][0] == topic]

    assert skips_at(outcome.gas) == []
    assert skips_at(outcome.gas - BIG_GAS_LIMIT) == [SkipReason.OUT_OF_GAS]
    await queue.shutdown()


async def test_a_run_short_of_gas_is_skipped_on_chain_and_offered_again(dev_chain) -> None:  # type: ignore[no-untyped-def]
    w3, address, user = dev_chain.w3, dev_chain.deployment.address, dev_role("user")
    deposit(w3, address, user, 10**18)
    t0 = now(w3)
    wid = create(w3, address, user, spec(0, {"at": t0 + 100}, gas_limit=BIG_GAS_LIMIT))
    advance(w3, 120)
    queue = InMemoryJobQueue()
    await queue.startup()
    executor = _executor(dev_chain, queue)
    # A job that understates its action's gasLimit: the simulation succeeds (it runs with ample
    # gas), the sized transaction cannot give the action its limit: the contract skips the run
    # (OUT_OF_GAS: not consumed, not charged) and the batch itself is mined.
    wrong = Job(wid, 0, 0, float(t0 + 120), gas_limit=30_000)
    assert await queue.enqueue(wrong)
    outcome = await executor.execute(await _deliveries(queue, 1))
    assert not outcome.reverted and outcome.executed == []
    assert outcome.skipped == {(wid, 0): SkipReason.OUT_OF_GAS}
    assert int(w3.eth.get_transaction_receipt(outcome.tx_hash)["status"]) == 1  # type: ignore[arg-type]
    core = autometa(w3, address)
    assert list(core.events.RunExecuted().get_logs(from_block=0)) == []  # nothing consumed

    right = Job(wid, 0, 0, float(t0 + 120), gas_limit=BIG_GAS_LIMIT)
    assert await queue.enqueue(right)  # the claim was released: the run can be offered again
    outcome = await executor.execute(await _deliveries(queue, 1))
    assert outcome.executed == [(wid, 0)] and not outcome.reverted
    (event,) = core.events.RunExecuted().get_logs(from_block=0)
    assert (int(event.args.workflowId), int(event.args.runIndex)) == (wid, 0)
    await queue.shutdown()


async def test_a_batch_that_reverts_gives_its_runs_back(dev_chain) -> None:  # type: ignore[no-untyped-def]
    """The admin pauses execution between the simulation and the sending: the batch cannot go
    through (refused before sending, or mined reverted); its runs are offered again."""
    w3, address, user = dev_chain.w3, dev_chain.deployment.address, dev_role("user")
    deposit(w3, address, user, 10**18)
    t0 = now(w3)
    wid = create(w3, address, user, spec(0, {"at": t0 + 100}))
    advance(w3, 120)
    queue = InMemoryJobQueue()
    await queue.startup()
    core = autometa(w3, address)

    class PausedAfterSimulation(Executor):
        async def _simulate(self, packed: list[int], *args: Any, **kwargs: Any) -> Any:
            result = await super()._simulate(packed, *args, **kwargs)
            transact(w3, dev_role("admin"), core.functions.setPaused(True))  # a real transaction
            return result

    aw3 = connect_async(dev_chain.url)
    executor = PausedAfterSimulation(aw3, address, TransactionSender(aw3, dev_role("executor")), queue)
    job = Job(wid, 0, 0, float(t0 + 120), gas_limit=30_000)
    assert await queue.enqueue(job)
    outcome = await executor.execute(await _deliveries(queue, 1))
    assert outcome.executed == []
    assert list(core.events.RunExecuted().get_logs(from_block=0)) == []  # nothing consumed
    transact(w3, dev_role("admin"), core.functions.setPaused(False))
    assert await queue.enqueue(job)  # the claim was released: the run can be offered again
    await queue.shutdown()


@pytest.mark.redis
async def test_an_executor_with_no_free_slot_leaves_the_runs_to_others(dev_chain, redis_prefix: str) -> None:  # type: ignore[no-untyped-def]
    """It reads a batch only when it can send it, so a burst spreads over the executors."""
    w3, address, user = dev_chain.w3, dev_chain.deployment.address, dev_role("user")
    deposit(w3, address, user, 10**18)
    t0 = now(w3)
    ids = [create(w3, address, user, spec(0, {"at": t0 + 100})) for _ in range(60)]
    advance(w3, 120)
    w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]  # its first batch never mines
    busy = RedisJobQueue(REDIS_URL, redis_prefix, consumer="busy", read_count=5)
    other = RedisJobQueue(REDIS_URL, redis_prefix, consumer="other")
    for q in (busy, other):
        await q.startup()
    aw3 = connect_async(dev_chain.url)
    executor = Executor(
        aw3, address, TransactionSender(aw3, dev_role("executor")), busy, batch_size=5, max_concurrent=1
    )
    stop = asyncio.Event()
    running = asyncio.create_task(executor.run(stop))
    try:
        assert await busy.enqueue_many([Job(wid, 0, 0, float(t0 + 120), gas_limit=30_000) for wid in ids]) == 60
        await asyncio.sleep(2.0)  # its one slot holds a sent batch; what else did it take?
        taken = await busy.redis.xpending_range(busy.stream, busy.group, "-", "+", 100, consumername="busy")
        # in flight (5) + the next batch waiting in its buffer (5) + the rest of one read (5)
        assert 5 < len(taken) <= 16
        it = other.deliveries().__aiter__()
        rest = [await asyncio.wait_for(it.__anext__(), 5) for _ in range(60 - len(taken))]
        assert len({d.job.workflow_id for d in rest}) == 60 - len(taken)
    finally:
        stop.set()
        w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        await asyncio.wait_for(running, 15)
        for q in (busy, other):
            await q.shutdown()


@pytest.mark.redis
async def test_a_broke_executor_hands_its_jobs_back_and_stops_reading(dev_chain, redis_prefix: str) -> None:  # type: ignore[no-untyped-def]
    """A refused broadcast for insufficient funds puts the jobs back in the stream at once (not
    after the idle timeout, 30 s here), the executor takes no more jobs while broke, says which
    address needs how much, and resumes once funded."""
    w3, address, user = dev_chain.w3, dev_chain.deployment.address, dev_role("user")
    deposit(w3, address, user, 10**18)
    t0 = now(w3)
    ids = [create(w3, address, user, spec(0, {"at": t0 + 100})) for _ in range(9)]
    advance(w3, 120)
    broke = dev_role("executor")
    w3.provider.make_request("anvil_setBalance", [broke.address, "0x0"])  # type: ignore[arg-type]
    nonce = w3.eth.get_transaction_count(broke.address)
    queue = RedisJobQueue(REDIS_URL, redis_prefix, consumer="broke", idle_timeout_ms=30_000)
    other = RedisJobQueue(REDIS_URL, redis_prefix, consumer="other", idle_timeout_ms=30_000)
    for q in (queue, other):
        await q.startup()
    aw3 = connect_async(dev_chain.url)
    executor = Executor(
        aw3,
        address,
        TransactionSender(aw3, broke),
        queue,
    )
    jobs = [Job(wid, 0, 0, float(t0 + 120), gas_limit=30_000) for wid in ids]
    stop = asyncio.Event()
    with capture_logs() as logs:
        running = asyncio.create_task(executor.run(stop))
        try:
            assert await queue.enqueue_many(jobs[:6]) == 6
            it = other.deliveries().__aiter__()
            handed = [await asyncio.wait_for(it.__anext__(), 5) for _ in range(6)]  # back well before 30 s
            assert sorted(d.job.workflow_id for d in handed) == ids[:6]
            assert await queue.enqueue_many(jobs[:6]) == 0  # still claimed: the scheduler cannot offer them twice
            assert await queue.enqueue_many(jobs[6:]) == 3
            await asyncio.sleep(1.5)  # broke: it reads none of them
            mine = await queue.redis.xpending_range(queue.stream, queue.group, "-", "+", 100, consumername="broke")
            assert mine == [] and await queue.backlog() == 6 + 3  # 6 pending with "other", 3 unread
            (warning,) = [e for e in logs if e["event"] == "executor.needs_gas_funds"]
            assert warning["address"] == broke.address and warning["balance_wei"] == 0
            assert warning["required_wei"] > 0 and str(warning["required_wei"]) in warning["hint"]

            w3.provider.make_request("anvil_setBalance", [broke.address, hex(10**18)])  # type: ignore[arg-type]
            core = autometa(w3, address)
            for _ in range(100):  # funded: it resumes and runs the 3 it left in the stream
                executed = {int(e.args.workflowId) for e in core.events.RunExecuted().get_logs(from_block=0)}
                if executed == set(ids[6:]):
                    break
                await asyncio.sleep(0.1)
            assert executed == set(ids[6:])
            assert w3.eth.get_transaction_count(broke.address) == nonce + 1
            assert any(e["event"] == "executor.funded" for e in logs)
        finally:
            stop.set()
            await asyncio.wait_for(running, 15)
            for q in (queue, other):
                await q.shutdown()


async def test_a_batch_holds_runs_up_to_its_share_of_the_block_gas_limit(dev_chain) -> None:  # type: ignore[no-untyped-def]
    """BATCH_GAS_SHARE, not a count, ends a batch: room for ten runs' gas makes batches of ten
    (the eleventh starts the next one), and a heavier action takes the room of several."""
    block_gas = int(dev_chain.w3.eth.get_block("latest")["gasLimit"])
    per_run = run_allowance(60_000)
    share = (BATCH_OVERHEAD + 10 * per_run + per_run // 2) / block_gas
    aw3 = connect_async(dev_chain.url)
    executor = Executor(
        aw3,
        dev_chain.deployment.address,
        TransactionSender(aw3, dev_role("executor")),
        InMemoryJobQueue(),
        batch_size=50,
        batch_gas_share=share,
        linger_s=0.01,
    )

    async def ack() -> None:
        return None

    buffer: asyncio.Queue[Delivery] = asyncio.Queue()
    for wid in range(1, 26):
        buffer.put_nowait(Delivery(Job(wid, 0, 0, 0.0, gas_limit=60_000), ack))
    sizes = [len(await executor._gather(buffer)) for _ in range(3)]
    assert sizes == [10, 10, 5]
    heavy = Delivery(Job(99, 0, 0, 0.0, gas_limit=5 * 60_000), ack)  # five times the gas
    for d in [heavy] + [Delivery(Job(100 + i, 0, 0, 0.0, gas_limit=60_000), ack) for i in range(10)]:
        buffer.put_nowait(d)
    assert len(await executor._gather(buffer)) < 10
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="batch_gas_share"):
            Executor(
                aw3,
                dev_chain.deployment.address,
                TransactionSender(aw3, dev_role("executor")),
                InMemoryJobQueue(),
                batch_gas_share=bad,
            )


@pytest.fixture
def spikeable(dev_chain):  # type: ignore[no-untyped-def]
    """The dev chain, its next base fee put back afterwards: anvil keeps a spiked base fee
    across evm_revert, and every later test's transactions would be refused below it."""
    w3 = dev_chain.w3
    base = int(w3.eth.get_block("pending")["baseFeePerGas"])
    yield dev_chain
    w3.provider.make_request("anvil_setNextBlockBaseFeePerGas", [hex(base)])  # type: ignore[arg-type]


async def _spiked_job(dev_chain, queue: InMemoryJobQueue, cap: float = 4.0) -> tuple[Executor, Job, int]:  # type: ignore[no-untyped-def]
    """A due run whose job carries the base fee the scheduler read, then a block whose base fee is
    twenty times the fees priced from it; the executor (its sender's fee cap `cap` × that base
    fee), the job, and the spiked block's number."""
    w3, address, user = dev_chain.w3, dev_chain.deployment.address, dev_role("user")
    deposit(w3, address, user, 10**18)
    t0 = now(w3)
    wid = create(w3, address, user, spec(0, {"at": t0 + 100}))
    trigger_block = advance(w3, 120)
    base = int(w3.eth.get_block(trigger_block)["baseFeePerGas"])
    stale = FeePolicy(cap_wei=10**30, priority_fee_wei=GWEI).from_base_fee(base)
    assert stale is not None and stale.max_fee_per_gas is not None
    spike = 20 * stale.max_fee_per_gas
    w3.provider.make_request("anvil_setNextBlockBaseFeePerGas", [hex(spike)])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    spiked = int(w3.eth.block_number)
    assert int(w3.eth.get_block(spiked)["baseFeePerGas"]) == spike
    aw3 = connect_async(dev_chain.url)
    config = SenderConfig(max_fee_per_gas_wei=int(cap * spike), priority_fee_wei=GWEI)
    executor = Executor(aw3, address, TransactionSender(aw3, dev_role("executor"), config=config), queue)
    job = Job(wid, 0, 0, float(t0 + 120), trigger_block, gas_limit=30_000, base_fee=base)
    return executor, job, spiked


async def test_a_batch_priced_before_a_base_fee_spike_is_priced_again_and_runs_at_once(spikeable) -> None:  # type: ignore[no-untyped-def]
    """The job's base fee is from before the spike: the node refuses the batch below the base fee,
    the sender prices it from the node and sends it at once; the run is executed in the next
    block, exactly once, not after a reclaim."""
    w3 = spikeable.w3
    queue = InMemoryJobQueue()
    await queue.startup()
    executor, job, spiked = await _spiked_job(spikeable, queue)
    key = dev_role("executor").address
    nonce = int(w3.eth.get_transaction_count(key))
    assert await queue.enqueue(job)
    with capture_logs() as logs:
        outcome = await asyncio.wait_for(executor.execute(await _deliveries(queue, 1)), 30)
    refused = [e for e in logs if e["event"] == "tx.broadcast_refused"]
    assert [e["kind"] for e in refused] == ["below_base_fee"]  # the spike was met, once
    assert outcome.executed == [(job.workflow_id, 0)] and not outcome.reverted
    assert outcome.block is not None and outcome.block <= spiked + 2
    tx = w3.eth.get_transaction(outcome.tx_hash)  # type: ignore[arg-type]
    assert tx["nonce"] == nonce and int(w3.eth.get_transaction_count(key)) == nonce + 1  # no gap, one tx
    assert tx["maxFeePerGas"] >= int(w3.eth.get_block(outcome.block)["baseFeePerGas"])
    core = autometa(w3, spikeable.deployment.address)
    runs = [e for e in core.events.RunExecuted().get_logs(from_block=0) if int(e.args.workflowId) == job.workflow_id]
    assert len(runs) == 1
    await queue.shutdown()
    await executor.w3.provider.disconnect()  # type: ignore[attr-defined]


async def test_a_fee_cap_below_the_base_fee_releases_the_runs_with_the_setting_named(spikeable) -> None:  # type: ignore[no-untyped-def]
    """Above the operator's cap nothing can be mined: nothing is sent, the run is released (the
    scheduler offers it again) and `executor.fee_cap_below_base_fee` names the setting to raise."""
    w3 = spikeable.w3
    queue = InMemoryJobQueue()
    await queue.startup()
    executor, job, _ = await _spiked_job(spikeable, queue, cap=1 / 3)  # still 6 × the job's fees
    key = dev_role("executor").address
    nonce = int(w3.eth.get_transaction_count(key))
    assert await queue.enqueue(job)
    with capture_logs() as logs:
        outcome = await asyncio.wait_for(executor.execute(await _deliveries(queue, 1)), 30)
    assert outcome.executed == [] and outcome.tx_hash is None
    assert int(w3.eth.get_transaction_count(key)) == nonce  # nothing sent
    assert [e["kind"] for e in logs if e["event"] == "tx.broadcast_refused"] == ["below_base_fee"]  # no loop
    (said,) = [e for e in logs if e["event"] == "executor.fee_cap_below_base_fee"]
    assert said["setting"] == "MAX_FEE_PER_GAS_GWEI" and "MAX_FEE_PER_GAS_GWEI" in said["hint"]
    assert said["cap_gwei"] < said["base_fee_gwei"] and said["runs"] == 1
    assert await queue.enqueue(job)  # released: the scheduler can offer it again
    await queue.shutdown()
    await executor.w3.provider.disconnect()  # type: ignore[attr-defined]
