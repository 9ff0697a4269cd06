"""CRON on the scheduler's side: due only at the ticks the spec allows and not before the
creation time the contract stored, once per tick, ticks missed while nothing ran run once (the
latest); and end to end through the executor on anvil at exact block times."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from croniter import croniter

from autometa.chain.accounts import dev_role
from autometa.chain.contracts import autometa
from autometa.chain.sender import TransactionSender
from autometa.chain.web3 import connect_async
from autometa.domain.kinds import Status
from autometa.domain.state import WorkflowState
from autometa.domain.triggers.cron import CRON_CODE
from autometa.worker.executor import Executor
from autometa.worker.trigger_index import FIRED, TriggerIndex
from autometa.worker.triggers.words import CRON_CREATED_SHIFT, cron_created, read_words

from .helpers import advance, create, deposit, indexed_scheduler, now, spec, wait_loaded

DAY0 = 1_767_225_600  # 2026-01-01 00:00 UTC, a Thursday


def _state(wid: int, cron: str, created: int, run_count: int = 0, last_run: int = 0, **data: int) -> WorkflowState:
    s = spec(CRON_CODE, {"spec": cron, **data}).resolved()
    return WorkflowState(
        wid, dev_role("user").address, Status.ACTIVE, s, run_count, last_run, trigger_word=created << CRON_CREATED_SHIFT
    )


def _allowed(cron: str, t: int) -> bool:
    return t % 60 == 0 and bool(croniter.match(cron, datetime.fromtimestamp(t, tz=UTC), day_or=False))


def _runs(index: TriggerIndex, now_: int) -> dict[int, int]:
    """What a block at `now_` hands out: workflow id -> tick (the scheduler's two steps)."""
    index.due_by_time(now_)
    ticks = index.crons.take_due(now_)
    fired = {r.workflow_id for r in index.fire(CRON_CODE, list(ticks), now_)}
    return {w: t for w, t in ticks.items() if w in fired}


def test_due_only_at_allowed_ticks_once_each() -> None:
    """Weekdays at 09:00: scanning a week minute by minute, each run names an allowed tick, at
    most one run per tick, and a run comes in the very minute of each allowed tick."""
    cron = "0 9 * * 1-5"
    index = TriggerIndex()
    index.upsert(_state(1, cron, created=DAY0))
    runs: list[tuple[int, int]] = []
    for t in range(DAY0, DAY0 + 7 * 86_400, 60):
        for wid, tick in _runs(index, t + 7).items():  # a block 7 s into the minute
            runs.append((t + 7, tick))
            # the run executes in this block: the indexer reports it, the next tick is due
            index.upsert(_state(wid, cron, created=DAY0, run_count=len(runs), last_run=t + 7))
    ticks = [tick for _, tick in runs]
    expected = [t for t in range(DAY0, DAY0 + 7 * 86_400, 60) if _allowed(cron, t)]
    assert ticks == expected and len(expected) == 5  # Thu, Fri, Mon, Tue, Wed
    assert all(at - tick == 7 for at, tick in runs)


def test_not_before_the_creation_time_the_contract_stored() -> None:
    """Created at 09:00:30 on a weekday: the 09:00 tick is before creation (the contract refuses
    it), so the first run is the next day's."""
    cron = "0 9 * * 1-5"
    created = DAY0 + 9 * 3600 + 30
    index = TriggerIndex()
    index.upsert(_state(1, cron, created=created))
    assert _runs(index, created + 5) == {}
    assert _runs(index, DAY0 + 86_400 + 9 * 3600 - 1) == {}
    assert _runs(index, DAY0 + 86_400 + 9 * 3600) == {1: DAY0 + 86_400 + 9 * 3600}


def test_missed_ticks_run_once_the_latest() -> None:
    """Every 5 minutes; nothing ran for an hour (12 ticks): one run, for the latest tick, and
    nothing more until the next tick."""
    cron = "*/5 * * * *"
    index = TriggerIndex()
    index.upsert(_state(1, cron, created=DAY0))
    late = DAY0 + 3600 + 130
    assert _runs(index, late) == {1: DAY0 + 3600}
    assert index.where(1) == FIRED and _runs(index, late + 1) == {}  # handed out once
    index.upsert(_state(1, cron, created=DAY0, run_count=1, last_run=late + 2))
    assert _runs(index, late + 60) == {}
    assert _runs(index, DAY0 + 3600 + 300) == {1: DAY0 + 3600 + 300}


def test_not_before_and_not_after_bound_the_ticks() -> None:
    cron = "*/5 * * * *"
    index = TriggerIndex()
    index.upsert(_state(1, cron, created=DAY0, not_before=DAY0 + 1000, not_after=DAY0 + 2000))
    assert _runs(index, DAY0 + 1000) == {}  # 1000 s is not a 5-minute tick
    assert _runs(index, DAY0 + 1200) == {1: DAY0 + 1200}
    index.upsert(_state(1, cron, created=DAY0, run_count=1, last_run=DAY0 + 1201, not_after=DAY0 + 2000))
    assert _runs(index, DAY0 + 2100) == {}  # the 2100 tick is past not_after: never due


def test_the_trigger_word_read_from_storage_is_the_creation_time(dev_chain) -> None:  # type: ignore[no-untyped-def]
    w3, dep, user = dev_chain.w3, dev_chain.deployment, dev_role("user")
    wid = create(w3, dep.address, user, spec(CRON_CODE, {"spec": "*/5 * * * *"}))
    created = now(w3)
    aw3 = connect_async(dev_chain.url)
    (word,) = asyncio.run(read_words(aw3, dep.address, [wid])).values()
    assert cron_created(word) == created and word & (1 << 0)  # minute 0 allowed (bit 0)
    view = autometa(w3, dep.address).functions.getWorkflow(wid).call()
    assert int(view[0]) == wid


async def test_cron_runs_end_to_end_at_exact_ticks(dev_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Every 2 minutes: nothing before the first tick, one run at it, none for the rest of the
    tick's minutes, and after a 10-minute gap (5 ticks missed) exactly one run."""
    w3, dep, user = dev_chain.w3, dev_chain.deployment, dev_role("user")
    deposit(w3, dep.address, user, 10**18)
    start = now(w3)
    tick = (start // 120 + 2) * 120  # an even minute at least 2 minutes ahead
    w3.provider.make_request("evm_setNextBlockTimestamp", [tick - 90])  # type: ignore[arg-type]
    wid = create(w3, dep.address, user, spec(CRON_CODE, {"spec": "*/2 * * * *"}))
    store, queue, scheduler = await indexed_scheduler(dev_chain.url, w3, dep, f"sqlite:///{tmp_path / 'autometa.db'}")
    aw3 = scheduler.w3
    executor = Executor(aw3, dep.address, TransactionSender(aw3, dev_role("executor")), queue, store, batch_size=10)
    core = autometa(w3, dep.address)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(scheduler.run(stop)), asyncio.create_task(executor.run(stop))]

    def runs() -> int:
        return int(core.functions.getWorkflow(wid).call()[3])

    async def settle(expect: int, seconds: float = 20.0) -> None:
        for _ in range(int(seconds / 0.2)):
            if runs() >= expect:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # time for a second run, if one were (wrongly) due

    try:
        await wait_loaded(scheduler, 30)
        advance(w3, tick - 1 - now(w3))  # one second before the tick
        await settle(1, 3)
        assert runs() == 0
        advance(w3, 1)  # the tick
        await settle(1)
        assert runs() == 1
        first_run = int(core.functions.getWorkflow(wid).call()[4])
        assert tick <= first_run < tick + 60
        for _ in range(3):  # more blocks within the tick's two minutes: nothing
            advance(w3, 20)
            await settle(2, 1)
        assert runs() == 1
        advance(w3, tick + 120 * 6 + 30 - now(w3))  # 5 ticks missed
        await settle(2)
        for _ in range(3):
            advance(w3, 10)
            await settle(3, 1)
        assert runs() == 2
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        await queue.shutdown()
        store.close()
    executed = [key for o in executor.outcomes for key in o.executed]
    assert executed == [(wid, 0), (wid, 1)]
    assert not [key for o in executor.outcomes for key in o.skipped]  # every tick named was accepted
