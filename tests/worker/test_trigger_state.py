"""STATE runs end to end: a workflow created through the API (an ERC-20 balance threshold) runs
once when its condition flips, never before; each run goes out alone as `executeWithProof` with
the workflow's exact triggerData; a view that fails is a retryable VIEW_FAILED skip, a wrong
proof a BAD_PROOF skip that is not retried; a run never happens twice."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import keccak
from structlog.testing import capture_logs

from autometa.chain.accounts import dev_role
from autometa.chain.contracts import autometa, bind, factory
from autometa.chain.deploy import transact
from autometa.chain.sender import TransactionSender
from autometa.chain.web3 import connect_async
from autometa.domain.kinds import SkipReason
from autometa.domain.triggers.state import STATE_CODE, StateTriggerData
from autometa.store import Store
from autometa.worker.executor import Executor
from autometa.worker.prices import PriceReader
from autometa.worker.queue import Delivery, InMemoryJobQueue, Job
from autometa.worker.scheduler import Scheduler
from autometa.worker.sources import ChainWorkflowSource
from autometa.worker.triggers.state import StateCondition
from tests.api.conftest import USER, Api, api_embedded, coingecko, coingecko_server  # noqa: F401 (fixtures)

from .helpers import RECIPIENT, advance, create, deposit, indexed_scheduler, now, spec, wait_loaded

REVERTS = "0x60006000fd"  # PUSH1 0 PUSH1 0 REVERT: every call fails
PROOF_SELECTOR = keccak(text="executeWithProof(uint256,uint32,uint64,bytes)")[:4]


def _balance_of(holder: str) -> str:
    return "0x" + keccak(text="balanceOf(address)")[:4].hex() + holder[2:].lower().rjust(64, "0")


def _state(target: str, holder: str, comparator: str, threshold: int) -> dict[str, Any]:
    return {"target": target, "calldata": _balance_of(holder), "comparator": comparator, "threshold": threshold}


def _proof(data: dict[str, Any]) -> str:
    return "0x" + StateCondition.of(StateTriggerData.model_validate(data)).trigger_data().hex()


async def _one(queue: InMemoryJobQueue) -> Delivery:
    it = queue.deliveries().__aiter__()
    return await asyncio.wait_for(it.__anext__(), 5)


def _executor(url: str, address: str, queue: InMemoryJobQueue, store: Store | None = None) -> Executor:
    aw3 = connect_async(url)
    return Executor(aw3, address, TransactionSender(aw3, dev_role("executor")), queue, store, batch_size=10)


async def test_a_state_workflow_created_through_the_api_runs_once_when_its_condition_flips(
    api_embedded: Api,  # noqa: F811
    tmp_path: Path,
) -> None:
    chain = api_embedded.chain
    w3, dep = chain.w3, chain.deployment
    assert dep.token is not None
    deposit(w3, dep.address, USER, 10**18)
    watched = Account.create().address  # holds nothing yet
    threshold = 5 * 10**18
    body = {
        "trigger_type": "state",
        "trigger_data": _state(dep.token, watched, ">=", threshold),
        "action_type": "native",
        "action_data": {"to": RECIPIENT, "amount_wei": "1000"},
    }
    prepared = await api_embedded.typed.prepare_create({**body, "user_address": USER.address})
    signed_data = bytes.fromhex(prepared.typed_data["message"]["spec"]["triggerData"].removeprefix("0x"))
    created = await api_embedded.typed.create_signed(USER, body)
    wid = created.workflow_id

    store, queue, scheduler = await indexed_scheduler(chain.url, w3, dep, f"sqlite:///{tmp_path / 'worker.db'}")
    executor = _executor(chain.url, dep.address, queue, store)
    enqueued: list[Job] = []
    original = queue.enqueue_many

    async def spy(jobs: list[Job]) -> int:
        enqueued.extend(jobs)
        return await original(jobs)

    queue.enqueue_many = spy  # type: ignore[method-assign]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(scheduler.run(stop)), asyncio.create_task(executor.run(stop))]
    before = w3.eth.get_balance(RECIPIENT)
    try:
        await wait_loaded(scheduler, 30)
        for _ in range(5):  # the condition does not hold: nothing is queued, nothing runs
            advance(w3, 1)
            await asyncio.sleep(0.3)
        assert enqueued == [] and executor.outcomes == []
        token = bind(w3, "DevToken", dep.token)
        transact(w3, dev_role("admin"), token.functions.mint(watched, threshold - 1))
        for _ in range(3):  # one wei short: still nothing
            advance(w3, 1)
            await asyncio.sleep(0.3)
        assert enqueued == [] and executor.outcomes == []
        transact(w3, dev_role("admin"), token.functions.mint(watched, 1))  # the condition flips
        for _ in range(100):
            if any(o.executed for o in executor.outcomes):
                break
            advance(w3, 1)
            await asyncio.sleep(0.1)
        for _ in range(5):  # more blocks: the run must not happen again
            advance(w3, 1)
            await asyncio.sleep(0.3)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 15)
        await queue.shutdown()
    executed = [key for o in executor.outcomes for key in o.executed]
    assert executed == [(wid, 0)]
    assert w3.eth.get_balance(RECIPIENT) - before == 1000
    job = next(j for j in enqueued if j.workflow_id == wid)
    assert job.kind == STATE_CODE and job.proof is not None
    assert keccak(hexstr=job.proof) == keccak(signed_data)  # what creation hashed and stored
    tx = w3.eth.get_transaction(next(o.tx_hash for o in executor.outcomes if o.executed))  # type: ignore[arg-type]
    assert bytes(tx["input"])[:4] == PROOF_SELECTOR
    assert autometa(w3, dep.address).functions.getWorkflow(wid).call()[3] == 1  # runCount
    (row,) = store.executions.for_run(dep.chain_id, dep.address, wid, 0)
    assert row.status == "success" and row.tx_hash == tx["hash"].to_0x_hex()
    store.close()


def _fresh_token(w3: Any) -> str:
    receipt = transact(w3, dev_role("admin"), factory(w3, "DevToken").constructor("View", "VIEW"))
    return str(receipt["contractAddress"])


async def test_a_failing_view_is_not_due_and_a_view_failed_skip_is_retried(dev_chain) -> None:  # type: ignore[no-untyped-def]
    w3, dep, user = dev_chain.w3, dev_chain.deployment, dev_role("user")
    deposit(w3, dep.address, user, 10**18)
    target = _fresh_token(w3)
    data = _state(target, RECIPIENT, ">=", 0)  # holds whenever the view answers
    wid = create(w3, dep.address, user, spec(STATE_CODE, data))
    code = w3.eth.get_code(target)
    w3.provider.make_request("anvil_setCode", [target, REVERTS])  # type: ignore[arg-type]
    aw3 = connect_async(dev_chain.url)
    queue = InMemoryJobQueue()
    await queue.startup()
    scheduler = Scheduler(aw3, ChainWorkflowSource(aw3, dep.address), queue, PriceReader(aw3, dep.address))
    await scheduler.load()
    report = await scheduler.process_block(advance(w3, 1))
    assert (report.due, report.enqueued) == (0, 0)  # a reverting view: not due

    # An executor handed the run anyway (the view broke after the scheduler read it) skips it
    # at simulation, sends nothing, and gives the run back to be offered again.
    job = Job(wid, 0, STATE_CODE, float(now(w3)), int(w3.eth.block_number), gas_limit=30_000, proof=_proof(data))
    assert await queue.enqueue(job)
    executor = _executor(dev_chain.url, dep.address, queue)
    outcome = await executor.execute([await _one(queue)])
    assert outcome.skipped == {(wid, 0): SkipReason.VIEW_FAILED} and outcome.tx_hash is None
    assert await queue.enqueue(job), "a VIEW_FAILED skip kept its claim: the run would not be retried"
    await _one(queue)  # drop the test's re-queued copy

    w3.provider.make_request("anvil_setCode", [target, "0x" + bytes(code).hex()])  # type: ignore[arg-type]
    await queue.release(job)
    report = await scheduler.process_block(advance(w3, 1))
    assert (report.due, report.enqueued) == (1, 1)
    delivery = await _one(queue)
    assert delivery.job.proof == job.proof
    outcome = await executor.execute([delivery])
    assert outcome.executed == [(wid, 0)]
    sent = w3.eth.get_transaction(outcome.tx_hash)  # type: ignore[arg-type]
    view_gas = StateTriggerData.model_validate(data).view_gas
    assert sent["gas"] == outcome.gas and outcome.gas is not None and outcome.gas > view_gas + 30_000
    await queue.shutdown()


def _holding_state_beside_a_due_time_run(w3: Any, dep: Any, user: Any) -> tuple[Any, int, int, int]:
    """An owner with escrow, a STATE workflow whose condition holds (balance >= 0) and a TIME
    workflow due a second after `t0`, mined past it: (state data, state id, time id, t0)."""
    deposit(w3, dep.address, user, 10**18)
    data = _state(_fresh_token(w3), RECIPIENT, ">=", 0)
    wid = create(w3, dep.address, user, spec(STATE_CODE, data))
    t0 = now(w3)
    time_wid = create(w3, dep.address, user, spec(0, {"at": t0 + 1}))
    advance(w3, 2)
    return data, wid, time_wid, t0


async def test_a_wrong_proof_is_refused_and_not_retried_and_a_run_never_happens_twice(dev_chain) -> None:  # type: ignore[no-untyped-def]
    w3, dep, user = dev_chain.w3, dev_chain.deployment, dev_role("user")
    data, wid, time_wid, t0 = _holding_state_beside_a_due_time_run(w3, dep, user)
    queue = InMemoryJobQueue()
    await queue.startup()
    executor = _executor(dev_chain.url, dep.address, queue)
    block = int(w3.eth.block_number)

    wrong = _proof({**data, "threshold": 1})  # another condition than the one signed
    bad = Job(wid, 0, STATE_CODE, float(t0), block, gas_limit=30_000, proof=wrong)
    assert await queue.enqueue(bad)
    outcome = await executor.execute([await _one(queue)])
    assert outcome.skipped == {(wid, 0): SkipReason.BAD_PROOF} and outcome.executed == []
    assert not await queue.enqueue(bad), "a BAD_PROOF skip released its claim: it would be retried"
    await queue.release(bad)

    # A proof run and a batch run handed over together: two transactions, each run once.
    good = Job(wid, 0, STATE_CODE, float(t0), block, gas_limit=30_000, proof=_proof(data))
    timed = Job(time_wid, 0, 0, float(t0), block, gas_limit=30_000)
    assert await queue.enqueue(good) and await queue.enqueue(timed)
    outcome = await executor.execute([await _one(queue), await _one(queue)])
    assert sorted(outcome.executed) == sorted([(wid, 0), (time_wid, 0)])
    hashes = [o.tx_hash for o in executor.outcomes if o.executed]
    assert len(set(hashes)) == 2
    inputs = sorted(bytes(w3.eth.get_transaction(h)["input"])[:4] for h in hashes)  # type: ignore[arg-type]
    assert PROOF_SELECTOR in inputs and inputs != [PROOF_SELECTOR] * 2

    await queue.release(good)  # the same run once more (a reclaimed job): refused as done
    assert await queue.enqueue(good)
    again = await executor.execute([await _one(queue)])
    assert again.executed == [] and again.skipped == {(wid, 0): SkipReason.RUN_DONE}
    assert autometa(w3, dep.address).functions.getWorkflow(wid).call()[3] == 1  # runCount
    await queue.shutdown()


async def test_the_same_proof_run_twice_in_a_batch_is_sent_once(dev_chain) -> None:  # type: ignore[no-untyped-def]
    """A reclaimed job can arrive beside its original: one transaction, not a second one mined as
    a skip the executor pays for."""
    w3, dep, user = dev_chain.w3, dev_chain.deployment, dev_role("user")
    data, wid, time_wid, t0 = _holding_state_beside_a_due_time_run(w3, dep, user)
    block = int(w3.eth.block_number)
    acked: list[int] = []

    def delivery(job: Job) -> Delivery:
        async def ack() -> None:
            acked.append(job.workflow_id)

        return Delivery(job, ack)

    run = Job(wid, 0, STATE_CODE, float(t0), block, gas_limit=30_000, proof=_proof(data))
    timed = Job(time_wid, 0, 0, float(t0), block, gas_limit=30_000)
    executor = _executor(dev_chain.url, dep.address, InMemoryJobQueue())
    before = int(w3.eth.get_transaction_count(dev_role("executor").address))
    outcome = await executor.execute([delivery(run), delivery(timed), delivery(run)])
    assert sorted(outcome.executed) == sorted([(wid, 0), (time_wid, 0)]) and outcome.skipped == {}
    assert int(w3.eth.get_transaction_count(dev_role("executor").address)) - before == 2
    assert sorted(acked) == sorted([wid, wid, time_wid])  # every delivery acknowledged


async def test_a_state_run_without_its_proof_is_released_not_sent(dev_chain) -> None:  # type: ignore[no-untyped-def]
    """A STATE job from a scheduler older than proofs: in `executeBatch` the contract would skip
    it for good (BAD_PROOF). The executor leaves it out and releases its claim, so a current
    scheduler offers it again (with its proof) and it runs; the batch's other run goes out."""
    w3, dep, user = dev_chain.w3, dev_chain.deployment, dev_role("user")
    data, wid, time_wid, t0 = _holding_state_beside_a_due_time_run(w3, dep, user)
    block = int(w3.eth.block_number)
    queue = InMemoryJobQueue()
    await queue.startup()
    executor = _executor(dev_chain.url, dep.address, queue)
    key = dev_role("executor").address
    before = int(w3.eth.get_transaction_count(key))

    old = Job(wid, 0, STATE_CODE, float(t0), block, gas_limit=30_000)  # no proof
    timed = Job(time_wid, 0, 0, float(t0), block, gas_limit=30_000)
    assert await queue.enqueue(old) and await queue.enqueue(timed)
    with capture_logs() as logs:
        outcome = await executor.execute([await _one(queue), await _one(queue)])
    assert outcome.executed == [(time_wid, 0)] and outcome.skipped == {}
    assert int(w3.eth.get_transaction_count(key)) - before == 1  # the timed run's batch alone
    (missing,) = [e for e in logs if e["event"] == "executor.proof_missing"]
    assert (missing["workflow_id"], missing["run_index"], missing["kind"]) == (wid, 0, STATE_CODE)
    assert autometa(w3, dep.address).functions.getWorkflow(wid).call()[3] == 0  # not run, not consumed

    with capture_logs() as logs:  # alone: nothing is sent at all
        assert await queue.enqueue(old)  # the claim was released
        alone = await executor.execute([await _one(queue)])
    assert alone.executed == [] and alone.skipped == {} and alone.tx_hash is None
    assert int(w3.eth.get_transaction_count(key)) - before == 1
    assert [e["event"] for e in logs].count("executor.proof_missing") == 1

    current = Job(wid, 0, STATE_CODE, float(t0), block, gas_limit=30_000, proof=_proof(data))
    assert await queue.enqueue(current)  # released again: a current scheduler offers it
    outcome = await executor.execute([await _one(queue)])
    assert outcome.executed == [(wid, 0)]
    assert autometa(w3, dep.address).functions.getWorkflow(wid).call()[3] == 1  # runCount
    await queue.shutdown()
