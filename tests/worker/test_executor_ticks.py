"""A CRON run's tick travels in its packed batch word (`pack_run`): the executor batches CRON runs
with the others in one `executeBatch`, each tick runs once, and a tick the spec does not allow is
skipped. The workflow is created on-chain directly (CRON is not creatable through the domain
until its scheduler evaluator exists)."""

from __future__ import annotations

import asyncio

from autometa.chain.accounts import dev_role
from autometa.chain.contracts import autometa
from autometa.chain.deploy import transact
from autometa.chain.sender import TransactionSender
from autometa.chain.web3 import connect_async
from autometa.domain.kinds import SkipReason
from autometa.domain.triggers.cron import CRON_CODE, last_tick
from autometa.worker.executor import Executor
from autometa.worker.queue import Delivery, InMemoryJobQueue, Job

from .helpers import advance, create, deposit, now, spec

EVERY_MINUTE = "* * * * *"
BATCH_SELECTOR = "executeBatch(uint256[])"


async def _take(queue: InMemoryJobQueue, n: int) -> list[Delivery]:
    it = queue.deliveries().__aiter__()
    return [await asyncio.wait_for(it.__anext__(), 5) for _ in range(n)]


def _create_cron(w3, address: str, owner, cron: str) -> int:  # type: ignore[no-untyped-def]
    t = spec(0, {"at": now(w3) + 10**6}).to_abi()
    raw = t._replace(triggerKind=CRON_CODE, startTime=0, endTime=0, interval=0, maxRuns=10, triggerData=cron.encode())
    core = autometa(w3, address)
    receipt = transact(w3, owner, core.functions.createWorkflow(raw))
    (event,) = core.events.WorkflowCreated().process_receipt(receipt)
    return int(event.args.workflowId)


async def test_cron_ticks_ride_in_the_batch_word_once_per_tick(dev_chain) -> None:  # type: ignore[no-untyped-def]
    w3, address, user = dev_chain.w3, dev_chain.deployment.address, dev_role("user")
    deposit(w3, address, user, 10**18)
    cron = _create_cron(w3, address, user, EVERY_MINUTE)
    other = f"{((now(w3) + 150) // 60 + 30) % 60} * * * *"  # one minute an hour, half an hour off the tick
    nine = _create_cron(w3, address, user, other)
    timed = create(w3, address, user, spec(0, {"at": now(w3) + 60}))
    advance(w3, 150)
    tick = last_tick(EVERY_MINUTE, now(w3))
    block = int(w3.eth.block_number)
    queue = InMemoryJobQueue()
    await queue.startup()
    aw3 = connect_async(dev_chain.url)
    executor = Executor(aw3, address, TransactionSender(aw3, dev_role("executor")), queue)
    jobs = [
        Job(cron, 0, CRON_CODE, float(tick), block, gas_limit=30_000, tick=tick),
        Job(nine, 0, CRON_CODE, float(tick), block, gas_limit=30_000, tick=tick),  # a minute its spec does not allow
        Job(timed, 0, 0, float(tick), block, gas_limit=30_000),
    ]
    assert await queue.enqueue_many(jobs) == 3
    outcome = await executor.execute(await _take(queue, 3))
    assert sorted(outcome.executed) == sorted([(cron, 0), (timed, 0)])
    assert outcome.skipped == {(nine, 0): SkipReason.NOT_DUE}
    assert len([o for o in executor.outcomes if o.tx_hash]) == 1  # one executeBatch for all
    sent = w3.eth.get_transaction(outcome.tx_hash)  # type: ignore[arg-type]
    assert bytes(sent["input"])[:4] == w3.keccak(text=BATCH_SELECTOR)[:4]

    # The same tick for the next run index: refused (once per tick); the next tick runs.
    again = Job(cron, 1, CRON_CODE, float(tick), block, gas_limit=30_000, tick=tick)
    assert await queue.enqueue(again)
    assert (await executor.execute(await _take(queue, 1))).skipped == {(cron, 1): SkipReason.NOT_DUE}
    advance(w3, 60)
    later = last_tick(EVERY_MINUTE, now(w3))
    assert later > tick
    nxt = Job(cron, 1, CRON_CODE, float(later), int(w3.eth.block_number), gas_limit=30_000, tick=later)
    await queue.release(nxt)
    assert await queue.enqueue(nxt)
    assert (await executor.execute(await _take(queue, 1))).executed == [(cron, 1)]
    await queue.shutdown()
