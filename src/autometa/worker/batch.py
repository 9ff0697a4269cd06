"""One executor batch as typed records: what is planned (`BatchPlan`), what the simulation said
(`Simulation`), the rows its receipt yields (`RunRow`, `SkipRow`) and what happened
(`BatchOutcome`); and the gas arithmetic that sizes a batch.

Gas: the simulation already executed the batch, so when every job carries its action's
`gasLimit` the transaction's gas is sized from the simulation instead of asking the node for
`eth_call` + `eth_estimateGas` again. The contract skips an item (SKIP_OUT_OF_GAS: not consumed,
not charged, retried) unless `gasleft()` covers its whole `gasLimit` (+ 2/63, CALL_RESERVE,
PRE_ACTION_GAS); any action may use all of its limit at inclusion though it used less in the
simulation (one owner's action could otherwise starve the others), so the gas is
`gasUsed * 5/4 + Σ (gasLimit + 2·gasLimit/63) + reserves + headroom` (refunds are capped at a
fifth). Fees do not depend on the gas limit: the contract charges measured gas at min(gas price,
the owner's cap).

Batch size: a batch is gathered while its gas (`run_allowance` per run, the same formula with
the action's own run for `gasUsed`) stays within a share of the block gas limit
(BATCH_GAS_SHARE), and at most `BATCH_SIZE` runs. A block takes a transaction only while its gas
limit fits the gas the block has left, so a few big batches leave much of a block unused (with
batches of 50 native transfers, 450 of the ~560 runs a 30 M block holds); batches of 0.15 of a
block (~25 such runs) fill ~90 % of it.

Proof runs (STATE, LOG: `Job.proof`) are gathered like the others but each is sent as its own
`executeWithProof` transaction (`proof_of`); their gas adds what a STATE view may use at
inclusion beyond its simulation (`proof_gas`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import NamedTuple

from autometa.chain.fees import Fees
from autometa.domain.kinds import SkipReason
from autometa.domain.outcomes import PriceSource
from autometa.domain.triggers.state import STATE_CODE
from autometa.worker.queue import Delivery, Job

RunKey = tuple[int, int]  # (workflow id, run index)

CALL_RESERVE = 40_000  # ActionExecutor.CALL_RESERVE: gas kept back beyond each action's gasLimit
PRE_ACTION_GAS = 25_000  # ActionExecutor.PRE_ACTION_GAS: a run's gas before its action, checked with it
GAS_HEADROOM = 50_000  # for state that moves between simulation and inclusion
TX_BASE_GAS = 21_000  # a transaction's intrinsic gas
UNKNOWN_GAS_LIMIT = 200_000  # what a job without its gasLimit counts for when gathering
DEFAULT_BLOCK_GAS_LIMIT = 30_000_000  # until the node said (or when it cannot)

# Skips worth retrying later: the scheduler offers the run again (the queue claim is released).
RETRYABLE = frozenset(
    {
        SkipReason.NOT_DUE,
        SkipReason.CONDITION_FALSE,
        SkipReason.INSUFFICIENT_ESCROW,
        SkipReason.PRICE_UNAVAILABLE,
        SkipReason.OUT_OF_GAS,
        SkipReason.VIEW_FAILED,  # a STATE view that failed now may answer in a later block
    }
)
# Skips that mean "someone already did it" or "it is over": nothing to tell the owner.
SILENT = frozenset({SkipReason.RUN_DONE, SkipReason.BAD_RUN_INDEX})


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


def run_allowance(gas_limit: int) -> int:
    """A run's share of its batch's gas limit before simulating: its `item_gas` plus what the
    run may use (its action's limit and the contract's work around it) × 5/4."""
    limit = gas_limit or UNKNOWN_GAS_LIMIT
    return item_gas(limit) + (limit + PRE_ACTION_GAS) * 5 // 4


BATCH_OVERHEAD = TX_BASE_GAS * 5 // 4 + CALL_RESERVE + PRE_ACTION_GAS + GAS_HEADROOM  # a batch's gas beyond its runs'


def pack_run(job: Job) -> int:
    """`workflowId << 96 | runIndex << 64 | word`: the attested price (an oracle-checked run
    attests 0) or a CRON run's tick, which the contract reads from the same word."""
    if job.tick:
        return job.workflow_id << 96 | job.run_index << 64 | job.tick
    attested = job.price if job.price and job.price_source not in (None, PriceSource.ORACLE) else 0
    return job.workflow_id << 96 | job.run_index << 64 | attested


def proof_of(job: Job) -> bytes | None:
    """The bytes a run hands `executeWithProof` (None: the run rides in `executeBatch`). A run
    with a proof is sent alone: `executeBatch` carries one word per run, and a STATE run
    without its data is refused as SKIP_BAD_PROOF, which is not retried."""
    if job.proof is None:
        return None
    return bytes.fromhex(job.proof.removeprefix("0x"))


def proof_gas(job: Job) -> int:
    """Gas a proof run may use at inclusion beyond what its simulation used: a STATE view may
    take up to its view gas cap (bytes 23-26 of the triggerData) however little it took when
    simulated; a LOG attestation's checks are fixed."""
    proof = proof_of(job)
    if proof is None or job.kind != STATE_CODE or len(proof) < 27:
        return 0
    return int.from_bytes(proof[23:27], "big")


class Simulation(NamedTuple):
    """What `eth_simulateV1` said of a batch: the runs the contract would skip, the block it
    simulated on, and the gas the batch used (None: unknown, or the batch would revert)."""

    skipped: dict[RunKey, SkipReason]
    block: int
    gas: int | None


class RunRow(NamedTuple):
    """A RunExecuted log of a mined batch, as the store records it."""

    key: RunKey
    log_index: int
    success: bool
    gas_used: int
    gas_price: int
    fee: int
    premium_bps: int
    price: int | None
    source: str | None


class SkipRow(NamedTuple):
    """A RunSkipped log of a mined batch."""

    key: RunKey
    log_index: int
    reason: SkipReason


@dataclass
class BatchOutcome:
    executed: list[RunKey] = field(default_factory=list)
    skipped: dict[RunKey, SkipReason] = field(default_factory=dict)
    tx_hash: str | None = None
    block: int | None = None
    gas: int | None = None  # the gas limit sized from the simulation; None: the sender estimated
    reverted: bool = False  # the transaction was mined but reverted: none of its runs happened


@dataclass
class BatchPlan:
    """A batch after planning: its distinct runs, what goes into the transaction, and the
    prices it is sent at. `runs` loses the runs the simulation skipped."""

    unique: dict[RunKey, Delivery]
    runs: dict[RunKey, int]  # run -> packed argument of executeBatch
    head: int | None  # the newest job's trigger block (None: unknown)
    fees: Fees | None  # from that block's base fee (None: the sender reads the market)
    price: int | None  # the gas price to simulate at
    outcome: BatchOutcome = field(default_factory=BatchOutcome)
    simulated_block: int = 0
    gas: int | None = None  # the transaction's gas limit (None: the sender estimates)
    started: float = field(default_factory=time.time)  # when planning began (unix s)
    stages: dict[str, float] = field(default_factory=dict)  # seconds since `started`, per step

    @property
    def proof_job(self) -> Job | None:
        """The one run of a proof plan (sent as `executeWithProof`); None for a batch."""
        if len(self.unique) != 1:
            return None
        (d,) = self.unique.values()
        return d.job if d.job.proof is not None else None

    def jobs(self, keys: list[RunKey] | None = None) -> list[Job]:
        return [self.unique[k].job for k in (keys if keys is not None else list(self.unique))]
