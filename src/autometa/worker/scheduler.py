"""The scheduler (`autometa scheduler`): on every new block, find the due runs and queue them.

Per block: apply the workflow changes the source reports (the indexer's listener), take the
runs due by the block's timestamp from the trigger index, read the price of every token that
has an armed price trigger (its on-chain feed, or the off-chain tiers without one), take the
runs those prices cross, and enqueue each as a job with a deterministic id. One scheduler is
active at a time (a Redis lease); a standby builds its index from the source when it takes over.

Time-due runs are queued before any price is read, and the block waits at most `price_wait_s`
for the price reads (an off-chain source may take up to its 10 s timeout): a slow read goes on in
the background and queues what its prices cross when it ends, and no new read starts while it
is in flight, so a stalled price source never holds back a time trigger by more than a block.

Runs handed out and not yet seen executed are offered again after `refire_s`, or at once when
the queue's generation changes (Redis lost its jobs and claims): the new Redis has no claims, so
each is queued once more, and the contract refuses a run index twice. Taking the lease reloads
the index, which offers every due run again too (the queue's claims drop those still queued).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from web3 import AsyncWeb3

from autometa.chain.multicall3 import MULTICALL3_ADDRESS
from autometa.domain.state import WorkflowState
from autometa.domain.triggers import UnknownTriggerKind
from autometa.domain.triggers.cron import CRON_CODE
from autometa.domain.triggers.log import LOG_CODE
from autometa.domain.triggers.state import STATE_CODE
from autometa.notify.alerts import Alerts
from autometa.notify.watches import BacklogWatch, MissedWatch
from autometa.worker.blocks import BlockFollower
from autometa.worker.lease import Lease, LocalLease
from autometa.worker.prices import PriceReader
from autometa.worker.queue import Job, JobQueue
from autometa.worker.sources import WorkflowSource
from autometa.worker.trigger_index import ABSENT, ARMED, FIRED, DueRun, TriggerEntry, TriggerIndex, entry_from_state
from autometa.worker.triggers.log import LogScanner, canonical
from autometa.worker.triggers.state import read_calls
from autometa.worker.triggers.words import with_words

log = structlog.get_logger("autometa.worker.scheduler")

NEEDS_WORD = frozenset({CRON_CODE, LOG_CODE})  # kinds whose entry reads the contract's trigger word


@dataclass
class BlockReport:
    block: int
    timestamp: int
    changed: int = 0
    due: int = 0
    enqueued: int = 0


class Scheduler:
    """refire_s: a run handed out but not reported back (skipped at simulation, or lost) is
    offered again after this long; the queue's claim drops it if it is still queued."""

    def __init__(
        self,
        w3: AsyncWeb3[Any],
        source: WorkflowSource,
        queue: JobQueue,
        prices: PriceReader,
        *,
        lease: Lease | None = None,
        follower: BlockFollower | None = None,
        refire_s: float = 30.0,
        price_wait_s: float = 0.5,
        alerts: Alerts | None = None,
        multicall: str = MULTICALL3_ADDRESS,
        logs: LogScanner | None = None,
        contract: str | None = None,
    ) -> None:
        self.w3, self.source, self.queue, self.prices = w3, source, queue, prices
        self.lease: Lease = lease or LocalLease()
        self.follower = follower or BlockFollower(w3)
        self.refire_s, self.price_wait_s, self.multicall = refire_s, price_wait_s, multicall
        self._pricing: asyncio.Task[tuple[int, int]] | None = None  # price reads of some block: (due, enqueued)
        self.index = TriggerIndex()
        self.logs = logs or LogScanner(w3)  # LOG triggers: confirmed logs from a checkpoint
        self.contract = contract or getattr(source, "address", None)  # for the trigger words
        self._fired: dict[int, tuple[int, float]] = {}  # workflow id -> (run index, when)
        self.loaded = False
        self.last_block: int | None = None
        self._generation: str | None = None  # the queue's, when we last saw it
        self._base_fee = 0  # of the newest block processed: jobs carry it to the executor
        self.alerts = alerts
        t = alerts.thresholds if alerts is not None else None
        self.missed = MissedWatch(t.missed_blocks, t.backlog_blocks) if t else None
        self.backlog = BacklogWatch(t.backlog_blocks, t.backlog_depth) if t else None

    # ------------------------------------------------------------------ state

    async def load(self) -> int:
        """(Re)build the index from the source: at start and on taking over the lease."""
        started = time.monotonic()
        self.index, self._fired = TriggerIndex(), {}
        self.logs.next_block = None  # a (re)load scans again from the checkpoint: pending logs are rebuilt
        if self.missed is not None:
            self.missed.reset()
        with contextlib.suppress(Exception):  # unknown for now: the first block reads it
            self._generation = await self.queue.generation()
        # A page of states at a time where the source can (the store): only the index's few
        # integers per workflow stay, never every state at once (freed memory mostly stays with
        # the process, so the peak of a load is what an idle scheduler keeps).
        async for states in _pages(self.source):
            states = await with_words(self.w3, self.contract, states, NEEDS_WORD, "latest")
            self.index.upsert_many((e for e in (self._entry(s) for s in states) if e is not None), arm=False)
            del states
        self.index.arm_loaded()
        # The loaded index lives as long as the lease: keep it out of the cyclic collector's full
        # passes (gc.freeze, Python docs), which otherwise rescan millions of long-lived objects
        # while a block hands out many runs (~100 ms pauses with 100k STATE workflows). Objects
        # are still freed by reference counting when a reload replaces the index.
        gc.freeze()
        _give_back_memory()
        self.loaded = True
        log.info("scheduler.loaded", workflows=len(self.index), seconds=round(time.monotonic() - started, 2))
        return len(self.index)

    @staticmethod
    def _entry(state: WorkflowState) -> TriggerEntry | None:
        """Its index entry; a kind this scheduler cannot evaluate is logged and skipped."""
        try:
            return entry_from_state(state)
        except UnknownTriggerKind as exc:
            log.error("scheduler.unknown_trigger_kind", workflow_id=state.id, error=str(exc))
            return None

    def _apply(self, states: list[WorkflowState]) -> None:
        for state in states:
            entry = self._entry(state)
            if entry is None:
                self.index.remove(state.id)
            else:
                self.index.upsert_entry(entry)
            self._fired.pop(state.id, None)

    def _refire(self, everything: bool = False) -> int:
        now, rearmed = time.monotonic(), 0
        for wid, (run, at) in list(self._fired.items()):
            if now - at < self.refire_s and not everything:
                continue
            del self._fired[wid]
            if self.index.where(wid) == FIRED and self.index.run_index(wid) == run:
                self.index.rearm(wid)
                rearmed += 1
        return rearmed

    async def _check_queue(self) -> None:
        """Offer again at once what was handed out and not yet executed if the queue lost it."""
        generation = await self.queue.generation()
        if self._generation is not None and generation != self._generation:
            rearmed = self._refire(everything=True)
            log.warning("scheduler.queue_lost", reoffered=rearmed)
        self._generation = generation

    # ------------------------------------------------------------------ one block

    async def process_block(self, number: int) -> BlockReport:
        block = self.follower.header(number) or await self.w3.eth.get_block(number)
        ts = int(block["timestamp"])
        report = BlockReport(number, ts)
        changed = await self.source.changes(number, block)
        changed = await with_words(self.w3, self.contract, changed, NEEDS_WORD, number, strict=False)
        self._apply(changed)
        report.changed = len(changed)
        await self._check_queue()
        self._refire()
        enqueue_started = time.time()
        self._base_fee = int(block.get("baseFeePerGas") or 0)
        report.due, report.enqueued = await self._enqueue([(r, None) for r in self.index.due_by_time(ts)], ts, number)
        enqueue_s = round(time.time() - enqueue_started, 3)
        if calls := self.index.states.calls():  # STATE triggers: one batch of view calls per block
            due, enqueued = await self._state_runs(calls, number, ts)
            report.due, report.enqueued = report.due + due, report.enqueued + enqueued
        for due, enqueued in (await self._cron_runs(ts, number), await self._log_runs(ts, number)):
            report.due, report.enqueued = report.due + due, report.enqueued + enqueued
        tokens = self.index.armed_tokens()
        if tokens and self._pricing is None:
            # Only the block that starts a read waits for it; a read outlasting that wait is
            # followed by `_priced_late` alone (one callback, one log line), and later blocks
            # start none until it ends.
            pricing = self._pricing = asyncio.create_task(self._price_runs(tokens, number, ts))
            await asyncio.wait([pricing], timeout=self.price_wait_s)
            if pricing.done():
                self._pricing = None
                due, enqueued = pricing.result()
                report.due, report.enqueued = report.due + due, report.enqueued + enqueued
            else:
                pricing.add_done_callback(self._priced_late)
                log.warning("scheduler.prices_slow", block=number, waited_s=self.price_wait_s)
        self.last_block = number
        await self._watch(number)
        if report.due or report.changed:
            log.info(
                "scheduler.block", **report.__dict__, seen_after_s=round(enqueue_started - ts, 3), enqueue_s=enqueue_s
            )
        return report

    async def _watch(self, number: int) -> None:
        """run.missed for each run handed out ``missed_blocks`` ago and still not executed, and
        queue.backlog when runs wait longer than ``backlog_blocks`` or the queue is too deep.
        A run stops waiting when the workflow's run index moves on (executed), it leaves the
        index (paused, cancelled, completed), or a price trigger is armed again (its condition
        no longer holds: not due). Skipped runs keep waiting: they were not executed."""
        if self.alerts is None or self.missed is None or self.backlog is None:
            return
        for wid, (run, _) in list(self.missed.waiting.items()):
            where = self.index.where(wid)
            if where == ABSENT or self.index.run_index(wid) != run or where == ARMED:
                self.missed.forget(wid)
        missed, long_waits, oldest = self.missed.check(number)
        if missed:
            await self.alerts.owners(
                "run.missed",
                [
                    (
                        wid,
                        f"{wid}:{run}",
                        {
                            "run_index": run,
                            "due_block": since,
                            "block_number": number,
                            "waited_blocks": number - since,
                        },
                    )
                    for wid, run, since in missed
                ],
            )
        depth = None
        backlog = getattr(self.queue, "backlog", None)
        if backlog is not None:
            with contextlib.suppress(Exception):
                depth = int(await backlog())
        if self.backlog.observe(oldest, long_waits, depth):
            await self.alerts.operator(
                "queue.backlog",
                str(number),
                {
                    "block_number": number,
                    "waiting_runs": len(self.missed.waiting),
                    "waiting_long": long_waits,
                    "oldest_wait_blocks": oldest,
                    "queue_depth": depth,
                    "max_wait_blocks": self.backlog.max_wait_blocks,
                    "max_depth": self.backlog.max_depth,
                },
            )

    async def _price_runs(self, tokens: list[str], number: int, ts: int) -> tuple[int, int]:
        """Read the prices of `tokens` at block `number` and queue the runs they cross."""
        due: list[tuple[DueRun, str | None]] = []
        for tick in await self.prices.read(tokens, number):
            due.extend((r, tick.source) for r in self.index.crossed(tick.token, tick.price, ts))
        return await self._enqueue(due, ts, number)

    async def _state_runs(self, calls: list[tuple[int, bytes, bytes, int]], number: int, ts: int) -> tuple[int, int]:
        """Read the armed STATE triggers' calls at block `number` and queue the runs that hold."""
        results = await read_calls(self.w3, calls, number, multicall=self.multicall)
        runs = self.index.fire(STATE_CODE, self.index.states.take_holding(results), ts)
        # each run carries its workflow's triggerData: the contract checks it against the hash
        # stored at creation and re-runs the view (`executeWithProof`)
        proofs = {r.workflow_id: self.index.states.proof(r.workflow_id) for r in runs}
        return await self._enqueue([(r, None) for r in runs], ts, number, proofs)

    async def _cron_runs(self, ts: int, number: int) -> tuple[int, int]:
        """Queue the CRON runs whose tick came, each naming the latest tick at or before `ts`."""
        ticks = self.index.crons.take_due(ts)
        if not ticks:
            return 0, 0
        runs = self.index.fire(CRON_CODE, list(ticks), ts)
        return await self._enqueue([(r, None) for r in runs], ts, number, ticks=ticks)

    async def _log_runs(self, ts: int, number: int) -> tuple[int, int]:
        """Scan the confirmed logs up to block `number` (one eth_getLogs for every LOG workflow)
        and queue, per armed workflow, a run for its oldest pending log with that log's proof."""
        await self.logs.scan(self.index.logs, number)
        ready = self.index.logs.take_ready(number, self.logs.min_age)
        if ready:  # a log read at few confirmations may have been reorged away since
            ready = await canonical(self.w3, self.logs, self.index.logs, ready)
        if not ready:
            return 0, 0
        runs = self.index.fire(LOG_CODE, list(ready), ts)
        return await self._enqueue([(r, None) for r in runs], ts, number, {w: ref.proof() for w, ref in ready.items()})

    def _priced_late(self, task: asyncio.Task[tuple[int, int]]) -> None:
        """A price read that outlasted its block ended: the next block may start another."""
        if self._pricing is task:
            self._pricing = None
        if task.cancelled():
            return
        if (exc := task.exception()) is not None:
            log.error("scheduler.prices_failed", error=str(exc))
            return
        due, enqueued = task.result()
        log.info("scheduler.prices_late", due=due, enqueued=enqueued)

    async def _enqueue(
        self,
        due: list[tuple[DueRun, str | None]],
        ts: int,
        number: int,
        proofs: Mapping[int, str] | None = None,
        *,
        ticks: Mapping[int, int] | None = None,
    ) -> tuple[int, int]:
        """Queue `due` as jobs of block `number`: (how many were due, how many queued now).
        `proofs` / `ticks`: by workflow id, what a run hands `executeWithProof` (STATE: its
        triggerData, LOG: the log's attestation) and a CRON run's tick."""
        jobs = []
        for run, source in due:
            self._fired[run.workflow_id] = (run.run_index, time.monotonic())
            if self.missed is not None:
                self.missed.handed_out(run.workflow_id, run.run_index, number)
            jobs.append(
                Job(
                    run.workflow_id,
                    run.run_index,
                    int(run.kind),
                    float(ts),
                    number,
                    run.token,
                    run.price,
                    source,
                    gas_limit=run.gas_limit,
                    base_fee=self._base_fee,
                    tick=ticks.get(run.workflow_id, 0) if ticks else 0,
                    proof=proofs.get(run.workflow_id) if proofs else None,
                )
            )
        # All at once: a thousand runs due together go out in a couple of pipelined round trips
        # (`enqueue_many`), so the executors see the whole burst within milliseconds.
        return len(due), (await self.queue.enqueue_many(jobs) if jobs else 0)

    async def _stop_pricing(self) -> None:
        if self._pricing is not None:
            self._pricing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pricing
            self._pricing = None

    # ------------------------------------------------------------------ loop

    async def run(self, stop: asyncio.Event) -> None:
        """Follow blocks while holding the lease; stand by otherwise. Returns when `stop` is set."""
        backoff = 1.0
        standing_by = False
        while not stop.is_set():
            if not await self.lease.acquire():
                self.loaded = False
                if not standing_by:  # said once, not on every retry
                    standing_by = True
                    log.info("scheduler.standby", holder=self.lease.holder, reason="another scheduler holds the lease")
                await _sleep_or_stop(stop, getattr(self.lease, "retry_s", 1.0))
                continue
            standing_by = False
            log.info("scheduler.active", holder=self.lease.holder)
            await self._report_failover()
            try:
                await self._lead(stop)
                backoff = 1.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The store or the node failing while we load or follow (PostgreSQL restarting
                # just as a standby takes over, the RPC down) must not end the process: nobody
                # else may be left to schedule. Back off and lead again once they answer.
                log.warning(
                    "scheduler.lead_failed",
                    error=str(exc),
                    retry_in_s=backoff,
                    hint="check DATABASE_URL / RPC_URL; retrying",
                )
                await _sleep_or_stop(stop, backoff)
                backoff = min(backoff * 2, 30.0)
            finally:
                self.loaded = False
        await self.lease.release()

    async def _report_failover(self) -> None:
        previous = getattr(self.lease, "took_over_from", None)
        if previous is None:
            return
        self.lease.took_over_from = None
        log.warning("scheduler.failover", holder=self.lease.holder, previous=previous)
        if self.alerts is not None:
            await self.alerts.operator(
                "scheduler.failover",
                f"{self.lease.holder}:{int(time.time() * 1000)}",
                {
                    "holder": self.lease.holder,
                    "previous_holder": previous,
                    "last_block": self.last_block,
                },
            )

    async def _lead(self, stop: asyncio.Event) -> None:
        renew_every = getattr(self.lease, "retry_s", 1.0)
        lost = asyncio.Event()

        async def renew() -> None:
            # On a clock of its own: a long block (the indexer catching up on hundreds of events)
            # or a long load must not let the lease lapse while we still act as the active one.
            try:
                while True:
                    await asyncio.sleep(renew_every)
                    if not await self.lease.acquire():
                        return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler.lease_renewal_failed")
            finally:
                lost.set()

        renewing = asyncio.create_task(renew())
        pumping: asyncio.Task[None] | None = None
        try:
            await self.load()
            numbers: asyncio.Queue[int] = asyncio.Queue()

            async def pump() -> None:
                async for number in self.follower.follow():
                    numbers.put_nowait(number)

            pumping = asyncio.create_task(pump())
            while not stop.is_set() and not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    number = await asyncio.wait_for(numbers.get(), renew_every)
                    if lost.is_set():
                        break
                    try:
                        await self.process_block(number)
                    except Exception:
                        log.exception("scheduler.block_failed", block=number)
                if pumping.done():
                    pumping.result()  # the follower failed: raise it
            if lost.is_set() and not stop.is_set():
                log.warning("scheduler.standby", reason="lease lost")
        finally:
            await self._stop_pricing()
            for task in (pumping, renewing):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task


def _give_back_memory() -> None:
    """Hand the heap a load freed back to the system (glibc's `malloc_trim`): an idle scheduler
    should not keep the peak of its start for the rest of its life. Elsewhere a no-op."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)


async def _pages(source: WorkflowSource) -> AsyncIterator[list[WorkflowState]]:
    """The source's initial states, by page if it offers `initial_pages`."""
    paged = getattr(source, "initial_pages", None)
    if paged is None:
        yield await source.initial()
        return
    async for page in paged():
        yield page


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
