"""The rules of the events workers observe (see ``autometa.notify.alerts``): pure state
machines fed by the scheduler and executors, each reporting once per crossing of its threshold."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LowGasWatch:
    """An executor's balance: read at most once per ``every_blocks`` blocks, and only after it
    sent transactions (nothing else spends it, so an idle executor reads nothing); low once per
    crossing below ``threshold_wei``."""

    threshold_wei: int
    every_blocks: int
    checked_block: int | None = None
    low: bool = False

    def due(self, block: int) -> bool:
        if self.threshold_wei <= 0:
            return False
        return self.checked_block is None or block - self.checked_block >= self.every_blocks

    def observe(self, balance: int, block: int, *, refused: bool = False) -> bool:
        """True when this reading crosses into "low" (report it). ``refused``: the node refused a
        batch for funds, which is low whatever the threshold. A negative balance: unreadable."""
        self.checked_block = block
        if balance < 0 and not refused:
            return False
        now_low = refused or (self.threshold_wei > 0 and balance < self.threshold_wei)
        crossed = now_low and not self.low
        self.low = now_low
        return crossed


@dataclass
class RpcWatch:
    """Every RPC call of this process failing for ``down_after_s``: down once per outage; the
    first success after that: recovered. One success in between means it is not down."""

    down_after_s: float
    clock: Callable[[], float] = time.monotonic
    failing_since: float | None = None
    failures: int = 0
    down: bool = False
    last_error: str = ""

    def failure(self, error: str) -> bool:
        """True when this failure makes the endpoint count as down (report rpc.down)."""
        now = self.clock()
        if self.failing_since is None:
            self.failing_since = now
        self.failures += 1
        self.last_error = error
        if not self.down and self.failures >= 2 and now - self.failing_since >= self.down_after_s:
            self.down = True
            return True
        return False

    def success(self) -> float | None:
        """Seconds it was down if this success ends a reported outage (report rpc.recovered)."""
        was_down, since = self.down, self.failing_since
        self.failing_since, self.failures, self.down = None, 0, False
        if was_down and since is not None:
            return self.clock() - since
        return None


@dataclass
class BacklogWatch:
    """Due runs waiting too long or too many jobs queued: one event per crossing."""

    max_wait_blocks: int
    max_depth: int
    backed_up: bool = False

    def observe(self, oldest_wait_blocks: int, waiting_long: int, depth: int | None) -> bool:
        now = waiting_long > 0 or (depth is not None and depth > self.max_depth)
        crossed = now and not self.backed_up
        self.backed_up = now
        return crossed


@dataclass
class MissedWatch:
    """Runs handed out and not yet executed: since which block each has waited, and which were
    reported missed (once per run)."""

    missed_blocks: int
    backlog_blocks: int
    waiting: dict[int, tuple[int, int]] = field(default_factory=dict)  # workflow id -> (run index, since block)
    reported: set[tuple[int, int]] = field(default_factory=set)

    def handed_out(self, workflow_id: int, run_index: int, block: int) -> None:
        current = self.waiting.get(workflow_id)
        if current is None or current[0] != run_index:
            self.waiting[workflow_id] = (run_index, block)

    def forget(self, workflow_id: int) -> None:
        run = self.waiting.pop(workflow_id, None)
        if run is not None:
            self.reported.discard((workflow_id, run[0]))

    def check(self, block: int) -> tuple[list[tuple[int, int, int]], int, int]:
        """(runs newly missed as (workflow id, run index, since block), runs waiting longer than
        the backlog limit, the longest wait in blocks)."""
        missed, long_waits, oldest = [], 0, 0
        for wid, (run, since) in self.waiting.items():
            waited = block - since
            oldest = max(oldest, waited)
            if waited > self.backlog_blocks:
                long_waits += 1
            if waited >= self.missed_blocks and (wid, run) not in self.reported:
                self.reported.add((wid, run))
                missed.append((wid, run, since))
        return missed, long_waits, oldest

    def reset(self) -> None:
        self.waiting.clear()
        self.reported.clear()
