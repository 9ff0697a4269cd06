"""The executor (`autometa executor`): jobs from the queue → simulated → one `executeBatch` tx.

A run with a proof (STATE: its workflow's triggerData; LOG: the log's attestation; `Job.proof`)
cannot ride in `executeBatch`, which carries one word per run (the contract has no batch with
proofs): within a gathered batch each proof run goes out as its own `executeWithProof(id, run,
0, proof)` transaction, all at once beside the `executeBatch` of the other runs, each through the
same plan / send / settle steps (simulated with the very calldata it is sent with, its gas sized
the same way plus a STATE view's gas cap). The batch holds one slot until all are included, so
40 STATE runs due together take one slot, not 40 (one each left 16 of 40 waiting a block).

Jobs are gathered into batches (`autometa.worker.batch`: up to `batch_size` runs whose gas fits
`batch_gas_share` of the block gas limit), with up to `max_concurrent` batches in flight. Each
batch goes through three steps:

* **plan** — distinct runs, packed; simulated (`eth_simulateV1`, which returns the logs): runs
  the contract would skip (insufficient escrow, condition no longer true, already done, …) are
  dropped and their skips recorded, so the owner and the executor pay nothing for them; the
  transaction's gas sized from the simulation (`batch_gas`) or, without one, estimated.
* **send** — one transaction through the core `TransactionSender` (nonces, fees, replacement)
  with this executor's own key, followed until mined. The receipt is looked for right after
  each new head (`NewHeads`, a websocket subscription) where the node offers one.
* **settle** — every run's outcome recorded from the receipt (tx hash, status, gas, fee, price
  and its source, trigger-to-inclusion latency; logs decoded by `autometa.chain.events`) before
  its job is acknowledged, so a killed executor's unacknowledged jobs are reclaimed and finished
  by another one; the contract refuses a run index twice, so a reclaimed job never runs twice.
  Skips worth retrying release their claim, so the scheduler offers them again.

A batch that still reverts (state moved between simulation and inclusion) executes none of its
runs: their claims are released so the scheduler offers them again.

A base-fee spike since the scheduler read its block: the batch, priced from the job's base fee,
is refused below the base fee; the sender prices it again from the node and sends it at once.
When the market is above the operator's cap (`MAX_FEE_PER_GAS_GWEI`), nothing can be sent: the
runs are released (the scheduler offers them again) and `executor.fee_cap_below_base_fee` names
the setting to raise.

A run of a kind that needs a proof (STATE, LOG) that arrives without one (from an older
scheduler) is never sent in `executeBatch`, where the contract would skip it for good as
BAD_PROOF: it is released (`executor.proof_missing`), so a current scheduler offers it again.

Out of gas funds: when the node refuses a batch for insufficient funds, the executor hands its
jobs back to the stream at once (re-appended for any executor, their claims kept), with every
job it holds but has not started, and stops reading the queue until its balance covers the
batch again (polled with backoff, logged as `executor.needs_gas_funds` with the address and the
amount). Otherwise a broke executor would keep taking jobs and failing them, each waiting out
the idle timeout before another executor could reclaim it.

Profile: `executor.batch` logs each stage in seconds since the batch was formed: `queued_s`
(enqueue → batch, measured backwards), `simulate_s`, `send_s` (accepted by the node),
`mined_s` (receipt seen; the slot is freed here) and `recorded_s` (rows written, jobs acked);
`executor.cpu` logs the CPU milliseconds spent so far per stage (`StageClock`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import structlog
from web3 import AsyncWeb3
from web3.types import RPCEndpoint

from autometa.chain.contracts import autometa_async
from autometa.chain.events import BatchCodec
from autometa.chain.fees import GWEI
from autometa.chain.heads import NewHeads, provider_url, ws_url_for
from autometa.chain.rpc_support import method_unsupported
from autometa.chain.sender import BroadcastError, FeeCapBelowBaseFee, TransactionReverted, TransactionSender
from autometa.chain.txtypes import BroadcastErrorKind
from autometa.domain.kinds import SkipReason
from autometa.domain.triggers import UnknownTriggerKind, get_kind
from autometa.notify.alerts import Alerts
from autometa.notify.watches import LowGasWatch
from autometa.worker.batch import (
    BATCH_OVERHEAD,
    CALL_RESERVE,
    DEFAULT_BLOCK_GAS_LIMIT,
    GAS_HEADROOM,
    PRE_ACTION_GAS,
    RETRYABLE,
    SILENT,
    UNKNOWN_GAS_LIMIT,
    BatchOutcome,
    BatchPlan,
    RunKey,
    Simulation,
    batch_gas,
    item_gas,
    pack_run,
    proof_gas,
    proof_of,
    run_allowance,
)
from autometa.worker.queue import Delivery, Job, JobQueue
from autometa.worker.recording import BatchRecorder, included_at, rows_from_events
from autometa.worker.stagecpu import StageClock

__all__ = [
    "CALL_RESERVE",
    "GAS_HEADROOM",
    "PRE_ACTION_GAS",
    "RETRYABLE",
    "SILENT",
    "UNKNOWN_GAS_LIMIT",
    "BatchOutcome",
    "Executor",
    "OutOfGasFunds",
    "batch_gas",
    "item_gas",
    "pack_run",
]

log = structlog.get_logger("autometa.worker.executor")

DEFAULT_BATCH_GAS_SHARE = 0.15  # Settings.BATCH_GAS_SHARE's default


class OutOfGasFunds(Exception):
    """The node refused a batch because this executor's account cannot pay for its gas."""

    def __init__(self, message: str, required_wei: int, runs: list[Delivery]) -> None:
        super().__init__(message)
        self.required_wei, self.runs = required_wei, runs


class Executor:
    def __init__(
        self,
        w3: AsyncWeb3[Any],
        address: str,
        sender: TransactionSender,
        queue: JobQueue,
        store: Any | None = None,
        *,
        batch_size: int = 50,
        max_concurrent: int = 8,
        worker_id: str | None = None,
        version: str = "",
        linger_s: float = 0.05,
        heartbeat_s: float = 5.0,
        funds_poll_s: tuple[float, float] = (0.5, 15.0),
        batch_gas_share: float = DEFAULT_BATCH_GAS_SHARE,
        alerts: Alerts | None = None,
        heads: NewHeads | None = None,
        record_defer_s: float = 3.0,
    ) -> None:
        self.w3, self.sender, self.queue, self.store = w3, sender, queue, store
        self.core = autometa_async(w3, address)
        self.codec = BatchCodec(self.core.address)
        self.recorder = BatchRecorder(store, sender.default_address, self.core.address) if store is not None else None
        # One thread writes every batch's rows, in turn: rows are bookkeeping, and a thread per
        # batch (asyncio's pool: six on two cores) took the GIL from the event loop that sends
        # the next batches, ~6 of every 7 switches while a burst was recorded.
        self._record_pool = ThreadPoolExecutor(1, thread_name_prefix="executor-record")
        self._sending = 0  # batches being planned or sent now
        self.record_defer_s = record_defer_s
        self.cpu = StageClock()
        self.address = sender.default_address
        self.batch_size, self.max_concurrent = batch_size, max_concurrent
        self.worker_id = worker_id or f"executor-{socket.gethostname()}-{os.getpid()}"
        self.version, self.linger_s, self.heartbeat_s = version, linger_s, heartbeat_s
        self._held: set[int] = set()  # ids of deliveries we hold (buffered or in flight)
        self._deliveries: dict[int, Delivery] = {}
        self._simulate_v1 = True
        self.outcomes: list[BatchOutcome] = []
        self._chain_id: int | None = None
        self.funds_poll_s = funds_poll_s  # (first, longest) wait between balance checks when broke
        self._batched: set[int] = set()  # ids of held deliveries that are in a batch
        self._funded = asyncio.Event()
        self._funded.set()
        self._starving: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._buffer: asyncio.Queue[Delivery] = asyncio.Queue()
        if not 0 < batch_gas_share <= 1:
            raise ValueError(f"batch_gas_share must be in (0, 1], got {batch_gas_share}")
        self.batch_gas_share = batch_gas_share
        self._block_gas: tuple[int, float] | None = None  # (the block gas limit, when read)
        self._carry: Delivery | None = None  # taken but over the last batch's gas budget: the next batch's first
        self.heads = heads if heads is not None else NewHeads(ws_url_for(provider_url(w3) or ""))
        self.alerts = alerts
        t = alerts.thresholds if alerts is not None else None
        self.gas_watch = LowGasWatch(t.low_gas_wei, t.gas_check_blocks) if t is not None else None

    # ------------------------------------------------------------------ loop

    async def run(self, stop: asyncio.Event) -> None:
        # Take work only as fast as it can go out: a slot first, then one batch's runs, and a
        # buffer of one batch. Runs not yet read stay in the shared stream for any executor;
        # with a deep buffer (2 rounds of batches) one executor hoarded 70 % of a 1,000-run
        # burst and worked through it in rounds while the other sat idle.
        buffer = self._buffer = asyncio.Queue(maxsize=self.batch_size)
        slots = asyncio.Semaphore(self.max_concurrent)
        batches: set[asyncio.Task[None]] = set()

        async def touch() -> None:
            while True:
                await asyncio.sleep(1.0)
                with contextlib.suppress(Exception):
                    await self.cpu.timed("read", self.queue.touch(list(self._deliveries.values())))

        async def beat() -> None:
            with contextlib.suppress(Exception):
                await self.chain_id()  # the heartbeat row is keyed by the chain
            while True:
                await asyncio.to_thread(self._beat)
                await asyncio.sleep(self.heartbeat_s)

        async def first_gas_check() -> None:
            with contextlib.suppress(Exception):
                await self._check_gas(int(await self.w3.eth.block_number))

        self._reader = asyncio.create_task(self._read())
        helpers = [asyncio.create_task(touch()), asyncio.create_task(beat()), asyncio.create_task(self.heads.run())]
        if self.gas_watch is not None:
            helpers.append(asyncio.create_task(first_gas_check()))
        log.info("executor.started", worker_id=self.worker_id, address=self.address, batch_size=self.batch_size)
        try:
            while not stop.is_set():
                if not self._funded.is_set():
                    await _wait_or_stop(self._funded, stop, 0.5)
                else:
                    await slots.acquire()
                    batch = await self.cpu.timed("gather", self._gather(buffer))
                    if batch:
                        task = asyncio.create_task(self._guarded(batch, slots))
                        batches.add(task)
                        task.add_done_callback(batches.discard)
                    else:
                        slots.release()
                for helper in [*helpers, self._reader, self._starving]:
                    if helper is not None and helper.done() and not helper.cancelled() and helper.exception():
                        raise helper.exception()  # type: ignore[misc]
            # Drain (SIGTERM, key rotation): take no more jobs, give back at once the ones not yet
            # in a batch (any executor takes them now, not after the idle timeout), finish the
            # batches in flight (their transactions mined and recorded), then exit.
            log.info("executor.draining", worker_id=self.worker_id, address=self.address, batches=len(batches))
            handed = await self._hand_back_idle()
            if batches:
                await asyncio.gather(*batches, return_exceptions=True)
            log.info(
                "executor.drained",
                worker_id=self.worker_id,
                address=self.address,
                handed_back=handed,
                in_flight=len(self.sender.in_flight(self.address)),
            )
        finally:
            tasks = [t for t in [*helpers, self._reader, self._starving] if t is not None]
            await _cancel_all(tasks)
            if self.store is not None:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.store.heartbeats.remove, self._chain_id or 0, self.worker_id)

    async def _read(self) -> None:
        await self.cpu.timed("read", self._read_forever())

    async def _read_forever(self) -> None:
        async for delivery in self.queue.deliveries():
            self._hold(delivery)
            await self._buffer.put(delivery)

    async def _gather(self, buffer: asyncio.Queue[Delivery]) -> list[Delivery]:
        """Up to `batch_size` runs whose gas fits `batch_gas_share` of the block gas limit (none
        if nothing comes within 0.5 s). A burst is gathered into one batch: runs are taken while
        they arrive within `linger_s` of each other, but the first is never held longer than 6
        lingers."""
        if self._carry is not None:
            batch, self._carry = [self._carry], None
        else:
            try:
                batch = [await asyncio.wait_for(buffer.get(), 0.5)]
            except TimeoutError:
                return []
        self._batched.add(id(batch[0]))  # taken: no longer ours to hand back when broke
        budget = int(self.batch_gas_share * await self._block_gas_limit())
        gas = BATCH_OVERHEAD + run_allowance(batch[0].job.gas_limit) + proof_gas(batch[0].job)
        deadline = time.monotonic() + 6 * self.linger_s
        while len(batch) < self.batch_size:
            wait = min(self.linger_s, deadline - time.monotonic())
            try:
                d = buffer.get_nowait() if not buffer.empty() else await asyncio.wait_for(buffer.get(), max(0.0, wait))
            except TimeoutError:
                break
            self._batched.add(id(d))
            gas += run_allowance(d.job.gas_limit) + proof_gas(d.job)
            if gas > budget:  # this one starts the next batch
                self._carry = d
                break
            batch.append(d)
        return batch

    async def _block_gas_limit(self) -> int:
        """The newest block's gas limit, read once and again every 10 minutes (it moves slowly,
        if at all); the last known (or 30 M) when the node cannot say."""
        if self._block_gas is None or time.monotonic() - self._block_gas[1] > 600:
            known = self._block_gas[0] if self._block_gas is not None else DEFAULT_BLOCK_GAS_LIMIT
            try:
                reply = await self.w3.provider.make_request(RPCEndpoint("eth_getBlockByNumber"), ["latest", False])
                limit = int(reply["result"]["gasLimit"], 16)
            except Exception as exc:
                log.warning("executor.block_gas_unknown", error=str(exc)[:200], using=known)
                limit = known
            self._block_gas = (limit, time.monotonic())
        return self._block_gas[0]

    def _hold(self, d: Delivery) -> None:
        self._held.add(id(d))
        self._deliveries[id(d)] = d

    def _drop(self, d: Delivery) -> None:
        self._held.discard(id(d))
        self._batched.discard(id(d))
        self._deliveries.pop(id(d), None)

    def _beat(self) -> None:
        if self.store is None:
            return
        try:
            self.store.heartbeats.beat(
                self._chain_id or 0,
                self.worker_id,
                "executor",
                self.address,
                self.version,
                host=socket.gethostname(),
                pid=os.getpid(),
                extra={"in_flight": len(self._deliveries), "chain_id": self._chain_id},
            )
        except Exception as exc:
            log.warning("executor.heartbeat_failed", error=str(exc))

    async def _guarded(self, batch: list[Delivery], slots: asyncio.Semaphore) -> None:
        released = False

        def free() -> None:
            # A slot bounds transactions in flight, not bookkeeping: it is freed as soon as the
            # batch is included, so recording rows never delays the next batch.
            nonlocal released
            if not released:
                released = True
                slots.release()

        self._batched.update(id(d) for d in batch)
        try:
            await self.execute(batch, on_included=free)
        except OutOfGasFunds as exc:
            log.warning("executor.batch_refused", runs=len(exc.runs), reason=str(exc))
            self._funded.clear()  # stop reading before the runs go back, or we would take them again
            if self._reader is not None:
                self._reader.cancel()
            for d in exc.runs:
                self._drop(d)
            await self.queue.hand_back(exc.runs)
            if self._starving is None:
                self._starving = asyncio.create_task(self._starve(exc.required_wei))
        except Exception:
            # Not acknowledged: after the idle timeout another executor (or we) take them again.
            log.exception("executor.batch_failed", runs=len(batch))
            for d in batch:
                self._drop(d)
        finally:
            free()

    async def _starve(self, required_wei: int) -> None:
        """Out of gas funds: stop reading, hand back every job not yet in a batch (including
        those a stream read gave us that were not yet yielded), and wait until the balance
        covers `required_wei` (one batch at the fee ceiling) before reading again."""
        self._funded.clear()
        handed = await self._hand_back_idle()
        delay, longest = self.funds_poll_s
        balance = await self._balance()
        log.warning(
            "executor.needs_gas_funds",
            address=self.address,
            balance_wei=balance,
            required_wei=required_wei,
            shortfall_wei=max(required_wei - balance, 0),
            handed_back=handed,
            hint=f"send at least {max(required_wei - balance, 0)} wei to {self.address}; "
            "this executor reads no jobs until then",
        )
        await self._report_low_gas(balance, refused_for=required_wei)
        while balance is None or balance < required_wei:
            await asyncio.sleep(delay)
            delay = min(delay * 2, longest)
            balance = await self._balance()
        log.info("executor.funded", address=self.address, balance_wei=balance, required_wei=required_wei)
        self._reader = asyncio.create_task(self._read())
        self._starving = None
        self._funded.set()

    async def _check_gas(self, block: int) -> None:
        """executor.low_gas: the balance, read at most once per `gas_check_blocks` blocks and only
        when this executor has spent (nothing else lowers it: an idle executor reads nothing)."""
        if self.gas_watch is None or not self.gas_watch.due(block):
            return
        self.gas_watch.checked_block = block  # before the read: concurrent batches do not read twice
        await self._report_low_gas(await self._balance(), block=block)

    async def _report_low_gas(self, balance: int, *, block: int | None = None, refused_for: int | None = None) -> None:
        if self.gas_watch is None or self.alerts is None:
            return
        at = block if block is not None else self.gas_watch.checked_block or 0
        if not self.gas_watch.observe(balance, at, refused=refused_for is not None):
            return
        key = f"{self.address}:{block}" if refused_for is None else f"{self.address}:refused:{int(time.time() * 1000)}"
        await self.alerts.operator(
            "executor.low_gas",
            key,
            {
                "executor": self.address,
                "balance_wei": str(balance) if balance >= 0 else None,
                "block_number": block,
                "threshold_wei": str(self.gas_watch.threshold_wei),
                "required_wei": str(refused_for) if refused_for is not None else None,
                "refused": refused_for is not None,
            },
        )

    async def _hand_back_idle(self) -> int:
        """Stop reading and hand back every job we hold that is not in a batch (including those
        a stream read gave us that were not yet yielded); returns how many."""
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.wait([self._reader], timeout=2.0)  # bounded: never wedge on a stuck read
        idle = [d for d in self._deliveries.values() if id(d) not in self._batched]
        while not self._buffer.empty():
            self._buffer.get_nowait()
        for d in idle:
            self._drop(d)
        keep = {d.message_id for d in self._deliveries.values() if d.message_id}
        return await self.queue.hand_back(idle) + await self.queue.hand_back_held(keep)

    async def _balance(self) -> int:
        try:
            return int(await self.w3.eth.get_balance(self.address))  # type: ignore[arg-type]
        except Exception as exc:
            log.warning("executor.balance_unavailable", address=self.address, error=str(exc))
            return -1

    async def _batch_cost(self, tx: dict[str, Any], runs: int) -> int:
        """The most the refused batch could cost: its gas limit at the fee ceiling."""
        gas = tx.get("gas")
        if not gas:
            try:
                estimate = await self.sender.simulate(tx, "pending")
                gas = int(estimate * self.sender.config.gas_multiplier) + self.sender.config.gas_headroom
            except Exception:
                gas = batch_gas(runs * 100_000, [0])  # a guess: the estimate failed too
        fees = await self.sender.fee_policy.current(self.w3)
        return int(gas) * fees.ceiling

    # ------------------------------------------------------------------ one batch

    # ------------------------------------------------------------------ one batch

    async def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(await self.w3.eth.chain_id)
        return self._chain_id

    async def execute(self, batch: list[Delivery], on_included: Callable[[], None] | None = None) -> BatchOutcome:
        """Plan, send and settle one batch; acknowledge its jobs. Returns what happened.
        `on_included` is called once the transaction is mined (or nothing was sent). Proof runs
        go out as one transaction each, at once beside the batch of the others; then
        `on_included` waits for all of them, and the outcomes are merged."""
        batch = await self._without_missing_proofs(batch)
        if not batch:
            if on_included is not None:
                on_included()
            return BatchOutcome()
        proofs = [d for d in batch if d.job.proof is not None]
        if not proofs or len(batch) == 1:
            return await self._execute_one(batch, on_included)
        # One delivery per run before splitting (`_plan` dedupes only within its transaction):
        # the same run in two transactions would have the second mined as a paid-for skip.
        batch = list((await self._distinct(batch)).values())
        proofs = [d for d in batch if d.job.proof is not None]
        rest = [d for d in batch if d.job.proof is None]
        parts = ([rest] if rest else []) + [[d] for d in proofs]
        left = len(parts)

        def one_included() -> None:
            nonlocal left
            left -= 1
            if left == 0 and on_included is not None:
                on_included()

        done = await asyncio.gather(*(self._execute_one(p, one_included) for p in parts), return_exceptions=True)
        broke = [r for r in done if isinstance(r, OutOfGasFunds)]
        if broke:  # every refused part's runs go back, as for one refused transaction
            runs = [d for exc in broke for d in exc.runs]
            raise OutOfGasFunds(str(broke[0]), max(exc.required_wei for exc in broke), runs)
        failed = [r for r in done if isinstance(r, BaseException)]
        if failed:
            raise failed[0]  # the failed part's jobs stay unacknowledged: reclaimed, as for one transaction
        return _merged([r for r in done if isinstance(r, BatchOutcome)])

    async def _distinct(self, batch: list[Delivery]) -> dict[RunKey, Delivery]:
        """One delivery per run; a second one of the same run (a reclaimed job beside its
        original) is acknowledged: one suffices."""
        unique: dict[RunKey, Delivery] = {}
        for d in batch:
            key = (d.job.workflow_id, d.job.run_index)
            if key in unique:
                await self._finish(d)
            else:
                unique[key] = d
        return unique

    async def _without_missing_proofs(self, batch: list[Delivery]) -> list[Delivery]:
        """The batch less its runs that need a proof and carry none (a job from a scheduler older
        than proofs): in `executeBatch` the contract would skip such a run as BAD_PROOF, which is
        never retried. Each is released and acknowledged, so the current scheduler offers it
        again, with its proof."""
        kept: list[Delivery] = []
        for d in batch:
            job = d.job
            if job.proof is not None or not _needs_proof(job.kind):
                kept.append(d)
                continue
            log.warning(
                "executor.proof_missing",
                workflow_id=job.workflow_id,
                run_index=job.run_index,
                kind=job.kind,
                hint="a scheduler older than this executor queued it; released for a current one to offer again",
            )
            await self.queue.release(job)
            await self._finish(d)
        return kept

    async def _execute_one(self, batch: list[Delivery], on_included: Callable[[], None] | None) -> BatchOutcome:
        """One transaction: a batch, or one proof run."""
        self._sending += 1
        done = False

        def sent() -> None:  # past its sending (broadcast, refused, or nothing to send)
            nonlocal done
            if not done:
                done = True
                self._sending -= 1

        try:
            plan = await self.cpu.timed("simulate", self._plan(batch))
            receipt = await self._send(plan, on_included, sent) if plan.runs else None
        finally:
            sent()
        await self.cpu.timed("record", self._settle(plan, receipt))
        return plan.outcome

    async def _plan(self, batch: list[Delivery]) -> BatchPlan:
        """Distinct runs, simulated; the simulation's skips recorded and dropped; the gas sized."""
        unique = await self._distinct(batch)
        # The newest job's block and base fee: what the scheduler read once for every job of that
        # block, so neither the simulation nor the sender asks the node for them again.
        newest = max((d.job for d in unique.values()), key=lambda j: j.trigger_block)
        fees = self.sender.fee_policy.from_base_fee(newest.base_fee)
        price = None if fees is None else min(newest.base_fee + int(fees.max_priority_fee_per_gas or 0), fees.ceiling)
        plan = BatchPlan(
            unique=unique,
            runs={key: pack_run(d.job) for key, d in unique.items()},
            head=newest.trigger_block or None,
            fees=fees,
            price=price,
        )
        t0 = plan.started
        plan.stages["queued_s"] = round(t0 - min(d.job.enqueued_at for d in unique.values()), 3)
        skipped, plan.simulated_block, sim_gas = await self._simulate(
            list(plan.runs.values()),
            plan.head,
            price,
            data=self._calldata(plan),
            # a proof run is checked in the next block's context, where it will run: inside the
            # head, `blockhash(head)` is 0 and a LOG of the head block would look forged
            tag="pending" if plan.proof_job is not None else "latest",
        )
        plan.stages["simulate_s"] = round(time.time() - t0, 3)
        for key, reason in skipped.items():
            plan.outcome.skipped[key] = reason
            await self._record_skip(unique[key].job, reason, plan.simulated_block, simulated=True)
            plan.runs.pop(key, None)
        if plan.runs:
            limits = [unique[key].job.gas_limit for key in plan.runs]
            # a STATE view may use its whole gas cap at inclusion (a proof run is alone in its plan)
            extra = sum(proof_gas(unique[key].job) for key in plan.runs)
            if min(limits) > 0:
                # Sized from the items' limits, never from an estimate alone: an item short of
                # gas is skipped, not reverted, so eth_estimateGas can find a gas that skips them.
                if sim_gas:  # the simulation executed every run still in the batch (+ the skips)
                    plan.gas = batch_gas(sim_gas, limits) + extra
                else:
                    with contextlib.suppress(Exception):  # it would revert: the sender says why
                        estimate = int(await self.w3.eth.estimate_gas(self._tx(plan)))  # type: ignore[arg-type]
                        plan.gas = batch_gas(estimate, limits, executed=False) + extra
            plan.outcome.gas = plan.gas
        return plan

    def _calldata(self, plan: BatchPlan) -> str:
        """`executeWithProof(id, run, 0, proof)` for a proof run, else `executeBatch(runs)`."""
        job = plan.proof_job
        proof = proof_of(job) if job is not None else None
        if job is not None and proof is not None:
            return self.codec.proof_calldata(job.workflow_id, job.run_index, pack_run(job) & (2**64 - 1), proof)
        return self.codec.calldata(list(plan.runs.values()))

    def _tx(self, plan: BatchPlan) -> dict[str, Any]:
        tx: dict[str, Any] = {"from": self.address, "to": self.core.address, "data": self._calldata(plan)}
        if plan.gas is not None:
            tx["gas"] = plan.gas
        return tx

    async def _send(
        self, plan: BatchPlan, on_included: Callable[[], None] | None, on_sent: Callable[[], None] = lambda: None
    ) -> Any:
        """Send the planned runs in one transaction and follow it until mined; the receipt (None:
        the node refused it as one that reverts, or the base fee is above the fee cap; its runs
        are released). Raises OutOfGasFunds when the node refused it for this executor's balance
        (nothing sent; the simulation's skips settled here, the runs for the caller to hand back)."""
        tx = self._tx(plan)
        digest = hashlib.blake2b(repr(sorted(plan.runs)).encode(), digest_size=6).hexdigest()
        t0 = plan.started
        try:
            sent = await self.cpu.timed(
                "send", self.sender.send(tx, f"batch:{digest}", fees=plan.fees, block=plan.head)
            )
            plan.stages["send_s"] = round(time.time() - t0, 3)
            receipt = await self.cpu.timed(
                "receipt", self.sender.wait(sent, raise_on_revert=False, heads=self.heads, raw=True)
            )
            plan.stages["mined_s"] = round(time.time() - t0, 3)
            if on_included is not None:
                on_included()
        except FeeCapBelowBaseFee as exc:
            # The sender priced it afresh and the market is above the cap: nothing was sent, and no
            # resend can go through until the base fee falls or the operator raises the cap. The
            # runs go back (the scheduler offers them again), not into a retry loop.
            log.warning(
                "executor.fee_cap_below_base_fee",
                runs=len(plan.runs),
                base_fee_gwei=round(exc.base_fee_wei / GWEI, 3),
                cap_gwei=round(exc.cap_wei / GWEI, 3),
                setting="MAX_FEE_PER_GAS_GWEI",
                hint=f"the block's base fee is above MAX_FEE_PER_GAS_GWEI={exc.cap_wei / GWEI:g}: raise it to run "
                "these workflows now; their runs are released and offered again",
            )
            await self._release(plan, list(plan.runs))
            return None
        except BroadcastError as exc:
            if exc.kind is not BroadcastErrorKind.INSUFFICIENT_FUNDS:
                raise
            # Nothing was sent: the simulated skips are settled as usual, the runs go back.
            for key in plan.outcome.skipped:
                await self._release_if_retryable(plan, key)
                await self._finish(plan.unique[key])
            cost = await self._batch_cost(tx, len(plan.runs))
            raise OutOfGasFunds(str(exc), cost, [plan.unique[key] for key in plan.runs]) from exc
        except TransactionReverted as exc:
            log.warning("executor.batch_reverted", runs=len(plan.runs), reason=str(exc))
            await self._release(plan, list(plan.runs))
            return None
        plan.outcome.tx_hash, plan.outcome.block = sent.tx_hash, int(receipt["blockNumber"])
        if int(receipt["status"]) != 1:
            # Nothing in it happened (no run consumed): offer the runs again.
            plan.outcome.reverted = True
            log.warning("executor.batch_reverted", runs=len(plan.runs), tx_hash=sent.tx_hash, gas=sent.gas_limit)
            await self._release(plan, list(plan.runs))
        return receipt

    async def _settle(self, plan: BatchPlan, receipt: Any) -> None:
        """Record the receipt's runs and skips, release the skips worth retrying, acknowledge
        every job of the batch."""
        outcome = plan.outcome
        if receipt is not None and not outcome.reverted:
            await self._record_receipt(receipt, plan)
        for key in outcome.skipped:
            await self._release_if_retryable(plan, key)
        for d in plan.unique.values():
            await self._finish(d)
        self.outcomes.append(outcome)
        if outcome.block is not None:
            await self._check_gas(outcome.block)
        plan.stages["recorded_s"] = round(time.time() - plan.started, 3)
        log.info(
            "executor.batch",
            runs=len(plan.unique),
            executed=len(outcome.executed),
            skipped=len(outcome.skipped),
            tx_hash=outcome.tx_hash,
            block=outcome.block,
            gas=plan.gas or "estimated",
            **plan.stages,
        )
        log.info(
            "executor.cpu", runs=sum(len(o.executed) + len(o.skipped) for o in self.outcomes), **self.cpu.snapshot_ms()
        )

    async def _release(self, plan: BatchPlan, keys: list[RunKey]) -> None:
        for key in keys:
            await self.queue.release(plan.unique[key].job)

    async def _release_if_retryable(self, plan: BatchPlan, key: RunKey) -> None:
        if plan.outcome.skipped.get(key) in RETRYABLE:
            await self.queue.release(plan.unique[key].job)

    async def _finish(self, d: Delivery) -> None:
        await d.ack()
        self._drop(d)

    async def _simulate(
        self,
        packed: list[int],
        head: int | None = None,
        price: int | None = None,
        *,
        data: str | None = None,
        tag: str = "latest",
    ) -> Simulation:
        """Which runs the contract would skip right now (eth_simulateV1 with the logs), the
        block simulated on, and the gas the batch used (None: unknown, or it would revert).
        `head`, `price`: the newest block number and the gas price (base fee + tip), when known.
        `data`: the transaction's calldata (default: `executeBatch(packed)`). `tag`: the block
        simulated on; "pending" runs the call as the next block (anvil, reth; geth's "pending" is
        its head, and it simulates the block after it)."""
        block = head if head is not None else int(await self.w3.eth.block_number)
        if not self._simulate_v1:
            return Simulation({}, block, None)
        gas_price = price if price is not None else int(await self.w3.eth.gas_price)
        call = {
            "from": self.address,
            "to": self.core.address,
            "data": data if data is not None else self.codec.calldata(packed),
            "gasPrice": hex(gas_price),
        }
        try:
            reply = await self.w3.provider.make_request(
                RPCEndpoint("eth_simulateV1"),
                [{"blockStateCalls": [{"calls": [call]}], "validation": False}, tag],
            )
        except Exception as exc:
            reply = {"error": str(exc)}  # type: ignore[typeddict-item]
        if "error" in reply and "insufficient funds" in str(reply["error"]).lower():
            return Simulation({}, block, None)  # the node checks our balance (anvil does): sending will say so
        if "error" in reply or not reply.get("result"):
            if method_unsupported(reply.get("error")):
                log.info("executor.simulate_unavailable", error=str(reply.get("error")))
                self._simulate_v1 = False  # for good: this node lacks the method
            else:  # a rate limit, a timeout, a 5xx: this batch goes unsimulated, the next one tries again
                log.warning("executor.simulate_failed", error=str(reply.get("error"))[:300])
            return Simulation({}, block, None)
        result = reply["result"][0]["calls"][0]
        if result.get("status") not in ("0x1", 1):
            return Simulation({}, block, None)  # the whole batch reverts: sending (estimating) will say why
        skipped: dict[RunKey, SkipReason] = {}
        for ev in self.codec.run_events(result.get("logs", [])):
            if ev.event == "RunSkipped":
                skipped[(int(ev.args["workflowId"]), int(ev.args["runIndex"]))] = SkipReason(int(ev.args["reason"]))
        used = result.get("gasUsed")
        return Simulation(skipped, block, (int(used, 16) if isinstance(used, str) else used) or None)

    async def _after_sending(self) -> None:
        """Wait (at most `record_defer_s`) until no batch is being planned or sent and no run
        waits to be batched: during a burst the next batches' simulation, signing and broadcast
        come first and the rows of the mined ones after (they were written as soon as each
        receipt came, on the same two cores, and a 1,000-run burst's second block got a third of
        the runs the first did). The jobs stay held (touched) meanwhile, so none is reclaimed."""
        deadline = time.monotonic() + self.record_defer_s
        while (self._sending > 0 or not self._buffer.empty()) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def _record_receipt(self, receipt: Any, plan: BatchPlan) -> None:
        runs, skips = rows_from_events(self.codec.run_events(receipt.get("logs", [])))
        plan.outcome.executed.extend(row.key for row in runs)
        plan.outcome.skipped.update({row.key: row.reason for row in skips})
        if self.recorder is None:
            return
        await self._after_sending()
        included = included_at(receipt)
        if included is None:
            included = int((await self.w3.eth.get_block(receipt["blockNumber"]))["timestamp"])
        tx = "0x" + bytes(receipt["transactionHash"]).hex()
        jobs = {key: d.job for key, d in plan.unique.items()}
        chain_id = await self.chain_id()
        block = int(receipt["blockNumber"])
        write = self.recorder.write
        await self.cpu.threaded(
            "record", write, runs, skips, jobs, chain_id, tx, block, included, pool=self._record_pool
        )

    async def _record_skip(self, job: Job, reason: SkipReason, block: int, *, simulated: bool) -> None:
        """A run dropped at simulation: logged, and recorded with a marker hash."""
        log.info(
            "executor.skip",
            workflow_id=job.workflow_id,
            run_index=job.run_index,
            reason=reason.label,
            simulated=simulated,
        )
        if self.recorder is None or reason in SILENT:
            return
        chain_id = await self.chain_id()
        await self.cpu.threaded(
            "record", self.recorder.simulated_skip, job, reason, block, chain_id, pool=self._record_pool
        )


def _needs_proof(kind: int) -> bool:
    """Whether runs of this trigger kind go through `executeWithProof` (the registry says)."""
    try:
        return get_kind(kind).needs_proof
    except UnknownTriggerKind:
        return False


def _merged(outcomes: list[BatchOutcome]) -> BatchOutcome:
    """Several transactions' outcomes as one (the last transaction's hash and block)."""
    merged = BatchOutcome()
    for o in outcomes:
        merged.executed.extend(o.executed)
        merged.skipped.update(o.skipped)
        merged.tx_hash, merged.block = o.tx_hash or merged.tx_hash, o.block or merged.block
        merged.gas, merged.reverted = o.gas or merged.gas, merged.reverted or o.reverted
    return merged


async def _wait_or_stop(event: asyncio.Event, stop: asyncio.Event, seconds: float) -> None:
    waits = [asyncio.create_task(event.wait()), asyncio.create_task(stop.wait())]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


async def _cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel the tasks and wait until each has ended. A cancellation can be swallowed inside a
    library's own error handling (seen: the stream reader's blocking Redis read went on to
    reclaim jobs and then waited forever on a full buffer), so a task still running after a
    second is asked again."""
    pending = {t for t in tasks if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=1.0)
    await asyncio.gather(*tasks, return_exceptions=True)
