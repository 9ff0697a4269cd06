"""The executor (`autometa executor`): jobs from the queue → simulated → one `executeBatch` tx.

Jobs are gathered into batches of up to `batch_size`, with up to `max_concurrent` batches in
flight. Each batch is first simulated (`eth_simulateV1`, which returns the logs): runs the
contract would skip (insufficient escrow, condition no longer true, already done, …) are dropped
and their skips recorded, so the owner and the executor pay nothing for them. The rest go out in
one transaction through the core `TransactionSender` (nonces, fees, replacement) with this
executor's own key. Every run's outcome is recorded from the receipt (tx hash, status, gas, fee,
price and its source, trigger-to-inclusion latency) before its job is acknowledged, so a killed
executor's unacknowledged jobs are reclaimed and finished by another one; the contract refuses a
run index twice, so a reclaimed job never runs twice.

Gas: the simulation already executed the batch, so when it skipped nothing and every job
carries its action's `gasLimit`, the transaction's gas is sized from the simulation instead of
asking the node for `eth_call` + `eth_estimateGas` again (a binary search of several more
executions of the whole batch, on the hot path of every batch). The contract skips an item
(SKIP_OUT_OF_GAS: not consumed, not charged, retried) unless `gasleft()` covers its whole
`gasLimit` (+ 2/63, CALL_RESERVE, PRE_ACTION_GAS); any action may use all of its limit at
inclusion though it used less in the simulation (one owner's action could otherwise starve the
others), so the gas is `gasUsed * 5/4 + Σ (gasLimit + 2·gasLimit/63) + reserves + headroom`
(refunds are capped at a fifth), and a batch is gathered only while the sum of its items' gas
limits stays within `gas_budget`. Otherwise (a skip changed the batch, a job without its gas limit, no
`eth_simulateV1`) the sender estimates as before. Fees do not depend on the gas limit: the
contract charges measured gas at min(gas price, the owner's cap). A batch that still reverts
(state moved between simulation and inclusion) executes none of its runs: their claims are
released so the scheduler offers them again.

Out of gas funds: when the node refuses a batch for insufficient funds, the executor hands its
jobs back to the stream at once (re-appended for any executor, their claims kept), with every
job it holds but has not started, and stops reading the queue until its balance covers the
batch again (polled with backoff, logged as `executor.needs_gas_funds` with the address and the
amount). Otherwise a broke executor would keep taking jobs and failing them, each waiting out
the idle timeout before another executor could reclaim it.

Profile: `executor.batch` logs each stage in seconds since the batch was formed: `queued_s`
(enqueue → batch, measured backwards), `simulate_s`, `send_s` (accepted by the node),
`mined_s` (receipt seen; the slot is freed here) and `recorded_s` (rows written, jobs acked).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from web3 import AsyncWeb3
from web3.logs import DISCARD

from autometa.chain.contracts import autometa_async
from autometa.chain.nonces import BroadcastErrorKind
from autometa.chain.rpc_support import method_unsupported
from autometa.chain.sender import BroadcastError, TransactionReverted, TransactionSender
from autometa.domain.kinds import SkipReason
from autometa.domain.outcomes import PriceSource, RunStatus
from autometa.notify.alerts import Alerts
from autometa.notify.watches import LowGasWatch
from autometa.store.executions import SIMULATED_SKIP_PREFIX
from autometa.worker.queue import Delivery, Job, JobQueue

log = structlog.get_logger("autometa.worker.executor")

# Skips worth retrying later: the scheduler offers the run again (the queue claim is released).
RETRYABLE = {
    SkipReason.NOT_DUE,
    SkipReason.CONDITION_FALSE,
    SkipReason.INSUFFICIENT_ESCROW,
    SkipReason.PRICE_UNAVAILABLE,
    SkipReason.OUT_OF_GAS,
    SkipReason.VIEW_FAILED,  # a STATE view that failed now may answer in a later block
}
# Skips that mean "someone already did it" or "it is over": nothing to tell the owner.
SILENT = {SkipReason.RUN_DONE, SkipReason.BAD_RUN_INDEX}
CALL_RESERVE = 40_000  # ActionExecutor.CALL_RESERVE: gas kept back beyond each action's gasLimit
PRE_ACTION_GAS = 25_000  # ActionExecutor.PRE_ACTION_GAS: a run's gas before its action, checked with it
GAS_HEADROOM = 50_000  # for state that moves between simulation and inclusion
GAS_BUDGET = 10_000_000  # the most Σ gasLimit one batch gathers (well under a block's gas limit)
UNKNOWN_GAS_LIMIT = 200_000  # what a job without its gasLimit counts for in the budget


def item_gas(gas_limit: int) -> int:
    """What one item's action may take at inclusion: its whole limit, + 1/63 for EIP-150 and
    + 1/63 for an ERC-20 action's wrapper call."""
    return gas_limit + 2 * (gas_limit // 63)


def batch_gas(base_gas: int, gas_limits: list[int], *, executed: bool = True) -> int:
    """A gas limit for a batch (see the module docstring): enough for every item's action to use
    all of its limit at inclusion. `base_gas`: what the simulation used executing the batch, or
    (`executed=False`) an eth_estimateGas, which may have found the gas at which every item is
    skipped for gas (a skip is no revert): then each item's run around its action is added too."""
    per_item = 0 if executed else PRE_ACTION_GAS + CALL_RESERVE
    allowance = sum(item_gas(g) + per_item for g in gas_limits) + CALL_RESERVE + PRE_ACTION_GAS
    return base_gas * 5 // 4 + allowance + GAS_HEADROOM


def pack_run(job: Job) -> int:
    """`workflowId << 96 | runIndex << 64 | attestedPrice` (an oracle-checked run attests 0)."""
    attested = job.price if job.price and job.price_source not in (None, PriceSource.ORACLE) else 0
    return job.workflow_id << 96 | job.run_index << 64 | attested


class OutOfGasFunds(Exception):
    """The node refused a batch because this executor's account cannot pay for its gas."""

    def __init__(self, message: str, required_wei: int, runs: list[Delivery]) -> None:
        super().__init__(message)
        self.required_wei, self.runs = required_wei, runs


@dataclass
class BatchOutcome:
    executed: list[tuple[int, int]] = field(default_factory=list)
    skipped: dict[tuple[int, int], SkipReason] = field(default_factory=dict)
    tx_hash: str | None = None
    block: int | None = None
    gas: int | None = None  # the gas limit sized from the simulation; None: the sender estimated
    reverted: bool = False  # the transaction was mined but reverted: none of its runs happened


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
        gas_budget: int = GAS_BUDGET,
        alerts: Alerts | None = None,
    ) -> None:
        self.w3, self.sender, self.queue, self.store = w3, sender, queue, store
        self.core = autometa_async(w3, address)
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
        self.gas_budget = gas_budget
        self._carry: Delivery | None = None  # taken but over the last batch's gas budget: the next batch's first
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
                    await self.queue.touch(list(self._deliveries.values()))

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
        helpers = [asyncio.create_task(touch()), asyncio.create_task(beat())]
        if self.gas_watch is not None:
            helpers.append(asyncio.create_task(first_gas_check()))
        log.info("executor.started", worker_id=self.worker_id, address=self.address, batch_size=self.batch_size)
        try:
            while not stop.is_set():
                if not self._funded.is_set():
                    await _wait_or_stop(self._funded, stop, 0.5)
                else:
                    await slots.acquire()
                    batch = await self._gather(buffer)
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
        async for delivery in self.queue.deliveries():
            self._hold(delivery)
            await self._buffer.put(delivery)

    async def _gather(self, buffer: asyncio.Queue[Delivery]) -> list[Delivery]:
        """Up to `batch_size` runs (none if nothing comes within 0.5 s). A burst is gathered
        into one batch: runs are taken while they arrive within `linger_s` of each other, but
        the first is never held longer than 6 lingers."""
        if self._carry is not None:
            batch, self._carry = [self._carry], None
        else:
            try:
                batch = [await asyncio.wait_for(buffer.get(), 0.5)]
            except TimeoutError:
                return []
        self._batched.add(id(batch[0]))  # taken: no longer ours to hand back when broke
        gas = item_gas(batch[0].job.gas_limit or UNKNOWN_GAS_LIMIT)
        deadline = time.monotonic() + 6 * self.linger_s
        while len(batch) < self.batch_size:
            wait = min(self.linger_s, deadline - time.monotonic())
            try:
                d = await asyncio.wait_for(buffer.get(), max(0.0, wait))
            except TimeoutError:
                break
            self._batched.add(id(d))
            gas += item_gas(d.job.gas_limit or UNKNOWN_GAS_LIMIT)
            if gas > self.gas_budget:  # the sum of the limits must fit: this one starts the next batch
                self._carry = d
                break
            batch.append(d)
        return batch

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

    async def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(await self.w3.eth.chain_id)
        return self._chain_id

    async def execute(self, batch: list[Delivery], on_included: Callable[[], None] | None = None) -> BatchOutcome:
        """Simulate, send and record one batch; acknowledge its jobs. Returns what happened.
        `on_included` is called once the transaction is mined (or nothing was sent)."""
        unique: dict[tuple[int, int], Delivery] = {}
        for d in batch:
            key = (d.job.workflow_id, d.job.run_index)
            if key in unique:
                await self._finish(d)  # the same run twice in one batch: one suffices
            else:
                unique[key] = d
        outcome = BatchOutcome()
        t0 = time.time()
        stages = {"queued_s": round(t0 - min(d.job.enqueued_at for d in unique.values()), 3)}
        runs = {key: pack_run(d.job) for key, d in unique.items()}
        # The newest job's block and base fee: what the scheduler read once for every job of that
        # block, so neither the simulation nor the sender asks the node for them again.
        newest = max((d.job for d in unique.values()), key=lambda j: j.trigger_block)
        head = newest.trigger_block or None
        fees = self.sender.fee_policy.from_base_fee(newest.base_fee)
        price = None if fees is None else min(newest.base_fee + int(fees.max_priority_fee_per_gas or 0), fees.ceiling)
        skipped, sim_block, sim_gas = await self._simulate(list(runs.values()), head, price)
        stages["simulate_s"] = round(time.time() - t0, 3)
        tx: dict[str, Any] = {"from": self.address, "to": self.core.address}
        for key, reason in skipped.items():
            outcome.skipped[key] = reason
            await self._record_skip(unique[key].job, reason, sim_block, simulated=True)
            runs.pop(key, None)
        if runs:
            tx["data"] = self.core.encode_abi("executeBatch", args=[list(runs.values())])
            limits = [unique[key].job.gas_limit for key in runs]
            if min(limits) > 0:
                # Sized from the items' limits, never from an estimate alone: an item short of
                # gas is skipped, not reverted, so eth_estimateGas can find a gas that skips them.
                if sim_gas:  # the simulation executed every run still in the batch (+ the skips)
                    tx["gas"] = outcome.gas = batch_gas(sim_gas, limits)
                else:
                    with contextlib.suppress(Exception):  # it would revert: the sender says why
                        estimate = int(await self.w3.eth.estimate_gas(tx))  # type: ignore[arg-type]
                        tx["gas"] = outcome.gas = batch_gas(estimate, limits, executed=False)
            digest = hashlib.blake2b(repr(sorted(runs)).encode(), digest_size=6).hexdigest()
            try:
                sent = await self.sender.send(tx, f"batch:{digest}", fees=fees, block=head)
                stages["send_s"] = round(time.time() - t0, 3)
                receipt = await self.sender.wait(sent, raise_on_revert=False)
                stages["mined_s"] = round(time.time() - t0, 3)
                if on_included is not None:
                    on_included()
            except BroadcastError as exc:
                if exc.kind is not BroadcastErrorKind.INSUFFICIENT_FUNDS:
                    raise
                # Nothing was sent: the simulated skips are settled as usual, the runs go back.
                for key, reason in outcome.skipped.items():
                    if reason in RETRYABLE:
                        await self.queue.release(unique[key].job)
                    await self._finish(unique[key])
                cost = await self._batch_cost(tx, len(runs))
                raise OutOfGasFunds(str(exc), cost, [unique[key] for key in runs]) from exc
            except TransactionReverted as exc:
                log.warning("executor.batch_reverted", runs=len(runs), reason=str(exc))
                for key in runs:
                    await self.queue.release(unique[key].job)
                    await self._finish(unique[key])
                return outcome
            outcome.tx_hash, outcome.block = sent.tx_hash, int(receipt["blockNumber"])
            if int(receipt["status"]) != 1:
                # Nothing in it happened (no run consumed): offer the runs again.
                outcome.reverted = True
                log.warning("executor.batch_reverted", runs=len(runs), tx_hash=sent.tx_hash, gas=sent.gas_limit)
                for key in runs:
                    await self.queue.release(unique[key].job)
            else:
                await self._record_receipt(receipt, unique, outcome)
        for key, reason in outcome.skipped.items():
            if reason in RETRYABLE:
                await self.queue.release(unique[key].job)
        for d in unique.values():
            await self._finish(d)
        self.outcomes.append(outcome)
        if outcome.block is not None:
            await self._check_gas(outcome.block)
        stages["recorded_s"] = round(time.time() - t0, 3)
        log.info(
            "executor.batch",
            runs=len(unique),
            executed=len(outcome.executed),
            skipped=len(outcome.skipped),
            tx_hash=outcome.tx_hash,
            block=outcome.block,
            gas=tx.get("gas", "estimated"),
            **stages,
        )
        return outcome

    async def _finish(self, d: Delivery) -> None:
        await d.ack()
        self._drop(d)

    async def _simulate(
        self, packed: list[int], head: int | None = None, price: int | None = None
    ) -> tuple[dict[tuple[int, int], SkipReason], int, int | None]:
        """Which runs the contract would skip right now (eth_simulateV1 with the logs), the
        block simulated on, and the gas the batch used (None: unknown, or it would revert).
        `head`, `price`: the newest block number and the gas price (base fee + tip), when known."""
        block = head if head is not None else int(await self.w3.eth.block_number)
        if not self._simulate_v1:
            return {}, block, None
        data = self.core.encode_abi("executeBatch", args=[packed])
        gas_price = price if price is not None else int(await self.w3.eth.gas_price)
        call = {"from": self.address, "to": self.core.address, "data": data, "gasPrice": hex(gas_price)}
        try:
            reply = await self.w3.provider.make_request(
                "eth_simulateV1",  # type: ignore[arg-type]
                [{"blockStateCalls": [{"calls": [call]}], "validation": False}, "latest"],
            )
        except Exception as exc:
            reply = {"error": str(exc)}
        if "error" in reply and "insufficient funds" in str(reply["error"]).lower():
            return {}, block, None  # the node checks our balance (anvil does): sending will say so
        if "error" in reply or not reply.get("result"):
            if method_unsupported(reply.get("error")):
                log.info("executor.simulate_unavailable", error=str(reply.get("error")))
                self._simulate_v1 = False  # for good: this node lacks the method
            else:  # a rate limit, a timeout, a 5xx: this batch goes unsimulated, the next one tries again
                log.warning("executor.simulate_failed", error=str(reply.get("error"))[:300])
            return {}, block, None
        result = reply["result"][0]["calls"][0]
        if result.get("status") not in ("0x1", 1):
            return {}, block, None  # the whole batch reverts: sending (estimating) will say why
        skipped: dict[tuple[int, int], SkipReason] = {}
        event = self.core.events.RunSkipped()
        for raw in result.get("logs", []):
            try:
                ev = event.process_log(_log_entry(raw))
            except Exception:
                continue
            args = ev["args"]  # a plain dict: web3 returns AttributeDicts only for AttributeDict logs
            skipped[(int(args["workflowId"]), int(args["runIndex"]))] = SkipReason(args["reason"])
        used = result.get("gasUsed")
        return skipped, block, (int(used, 16) if isinstance(used, str) else used) or None

    async def _record_receipt(
        self, receipt: Any, unique: dict[tuple[int, int], Delivery], outcome: BatchOutcome
    ) -> None:
        stamps = [entry.get("blockTimestamp") for entry in receipt.get("logs", [])]
        if stamps and stamps[0] is not None:  # newer nodes put the block's time in each log
            included = int(stamps[0], 16) if isinstance(stamps[0], str) else int(stamps[0])
        else:
            included = int((await self.w3.eth.get_block(receipt["blockNumber"]))["timestamp"])
        tx = "0x" + bytes(receipt["transactionHash"]).hex()
        chain_id = await self.chain_id()
        rows: list[dict[str, Any]] = []
        for ev in self.core.events.RunExecuted().process_receipt(receipt, errors=DISCARD):
            a = ev.args
            key = (int(a.workflowId), int(a.runIndex))
            outcome.executed.append(key)
            source = PriceSource.onchain(a.priceSource)
            rows.append(
                {
                    "kind": "run",
                    "key": key,
                    "log_index": int(ev.logIndex),
                    "status": RunStatus.of(a.success),
                    "gas_used": int(a.gasUsed),
                    "gas_price": int(a.gasPrice),
                    "fee": int(a.fee),
                    "premium_bps": int(a.premiumBps),
                    "price": int(a.price) if a.priceSource else None,
                    "source": source,
                }
            )
        for ev in self.core.events.RunSkipped().process_receipt(receipt, errors=DISCARD):
            key = (int(ev.args.workflowId), int(ev.args.runIndex))
            outcome.skipped[key] = SkipReason(ev.args.reason)
            rows.append(
                {"kind": "skip", "key": key, "log_index": int(ev.logIndex), "reason": SkipReason(ev.args.reason)}
            )
        if self.store is None:
            return
        await asyncio.to_thread(self._write_rows, rows, unique, chain_id, tx, int(receipt["blockNumber"]), included)

    def _write_rows(
        self,
        rows: list[dict[str, Any]],
        unique: dict[tuple[int, int], Delivery],
        chain_id: int,
        tx: str,
        block: int,
        included: int,
    ) -> None:
        ex = self.store.executions  # type: ignore[union-attr]
        with ex.batch([(chain_id, *row["key"], tx) for row in rows]):  # one transaction for the batch's rows
            self._write_rows_in(ex, rows, unique, chain_id, tx, block, included)

    def _write_rows_in(
        self,
        ex: Any,
        rows: list[dict[str, Any]],
        unique: dict[tuple[int, int], Delivery],
        chain_id: int,
        tx: str,
        block: int,
        included: int,
    ) -> None:
        for row in rows:
            wid, run = row["key"]
            job = unique[row["key"]].job if row["key"] in unique else None
            if row["kind"] == "skip":
                if row["reason"] in SILENT:
                    continue
                ex.record_onchain(
                    chain_id=chain_id,
                    contract=self.core.address,
                    workflow_id=wid,
                    run_index=run,
                    tx_hash=tx,
                    log_index=row["log_index"],
                    block_number=block,
                    status=RunStatus.SKIPPED,
                    included_at=included,
                    executor=self.address,
                    skip_reason=row["reason"].label,
                )
                continue
            ex.record_onchain(
                chain_id=chain_id,
                contract=self.core.address,
                workflow_id=wid,
                run_index=run,
                tx_hash=tx,
                log_index=row["log_index"],
                block_number=block,
                status=row["status"],
                included_at=included,
                executor=self.address,
                gas_used=row["gas_used"],
                gas_price=row["gas_price"],
                fee=row["fee"],
                premium_bps=row["premium_bps"],
                price=row["price"],
                price_source=row["source"],
            )
            if job is not None:
                tier = job.price_source if job.price_source in _STORE_SOURCES else None
                ex.record_offchain(
                    chain_id=chain_id,
                    contract=self.core.address,
                    workflow_id=wid,
                    run_index=run,
                    tx_hash=tx,
                    price_source=tier,
                    triggered_at=job.triggered_at,
                    executor=self.address,
                )

    async def _record_skip(self, job: Job, reason: SkipReason, block: int, *, simulated: bool) -> None:
        """A run dropped at simulation: no transaction, so the row gets a marker hash (zeros,
        then a digest of the run and the block) instead of a real one."""
        log.info(
            "executor.skip",
            workflow_id=job.workflow_id,
            run_index=job.run_index,
            reason=reason.label,
            simulated=simulated,
        )
        if self.store is None or reason in SILENT:
            return
        digest = hashlib.blake2b(f"{job.workflow_id}:{job.run_index}:{block}".encode(), digest_size=24).hexdigest()
        marker = SIMULATED_SKIP_PREFIX + digest
        chain_id = await self.chain_id()
        await asyncio.to_thread(
            self.store.executions.record_onchain,
            chain_id=chain_id,
            contract=self.core.address,
            workflow_id=job.workflow_id,
            run_index=job.run_index,
            tx_hash=marker,
            log_index=0,
            block_number=block,
            status=RunStatus.SKIPPED,
            included_at=int(time.time()),
            executor=self.address,
            skip_reason=reason.label,
        )


async def _wait_or_stop(event: asyncio.Event, stop: asyncio.Event, seconds: float) -> None:
    waits = [asyncio.create_task(event.wait()), asyncio.create_task(stop.wait())]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


_STORE_SOURCES = set(PriceSource)


def _log_entry(raw: dict[str, Any]) -> dict[str, Any]:
    """An eth_simulateV1 log (hex strings) in the shape web3's `process_log` decodes."""
    from hexbytes import HexBytes

    return {
        "address": AsyncWeb3.to_checksum_address(raw["address"]),
        "topics": [HexBytes(t) for t in raw["topics"]],
        "data": HexBytes(raw["data"]),
        "logIndex": int(raw.get("logIndex", "0x0"), 16),
        "transactionIndex": 0,
        "transactionHash": HexBytes(raw.get("transactionHash") or b"\0" * 32),
        "blockHash": HexBytes(raw.get("blockHash") or b"\0" * 32),
        "blockNumber": int(raw.get("blockNumber", "0x0"), 16),
    }


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
