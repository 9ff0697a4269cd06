"""CRON on the scheduler's side: due at the spec's next tick, run for the latest tick passed.

A workflow waits in the index's time heap until its next allowed tick after its floor (its
creation time from the contract's word, `not_before`, its last run — the contract's own rule).
When that moment passes it is armed in the `CronBook`; each block the scheduler takes the armed
ones with the latest tick at or before the block's time (`last_tick`), which is what the job
names. So a tick runs once (the run moves `lastRun` past it), and ticks missed while nothing ran
run once — the latest — not once per missed tick."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from autometa.domain.state import WorkflowState
from autometa.domain.triggers.cron import CRON_CODE, CronTriggerData, last_tick, next_tick
from autometa.worker.triggers.registry import ArmedSet, Evaluator, TriggerEntry, register
from autometa.worker.triggers.words import cron_created


@dataclass(frozen=True)
class CronCondition:
    spec: str
    floor: int  # the earliest tick the contract accepts (the entry's due)


class CronBook(ArmedSet):
    """The CRON workflows whose next tick has come (a `ConditionBook`): armed until taken."""

    def __init__(self) -> None:
        self._cond: dict[int, CronCondition] = {}
        self._armed: set[int] = set()

    def set(self, entry: TriggerEntry) -> None:
        if not isinstance(entry.condition, CronCondition):
            raise ValueError("a cron trigger needs its spec")
        self._cond[entry.workflow_id] = entry.condition

    def take_due(self, now: int) -> dict[int, int]:
        """Remove and return the armed workflows with the tick each runs for (the latest ≤ now)."""
        out: dict[int, int] = {}
        for wid in self._armed:
            cond = self._cond[wid]
            tick = last_tick(cond.spec, now)
            if tick >= cond.floor:
                out[wid] = tick
        self._armed.difference_update(out)
        return out

    def memory_bytes(self) -> int:
        return sum(sys.getsizeof(c.spec) + 120 for c in self._cond.values()) + len(self._armed) * 40


def cron_entry(state: WorkflowState, due: int, end: int, gas: int) -> TriggerEntry:
    """`due` is the domain's next tick after `not_before` / the last run; before the first run it
    is also raised to the first tick at or after the creation time the contract stored."""
    data = state.spec.trigger_data
    if not isinstance(data, CronTriggerData):
        raise TypeError(f"workflow {state.id}: a cron entry for {type(data).__name__}")
    if state.run_count == 0 and state.trigger_word:
        due = max(due, next_tick(data.spec, cron_created(state.trigger_word) - 1))
    return TriggerEntry(
        state.id, state.run_count, CRON_CODE, due, end, gas_limit=gas, condition=CronCondition(data.spec, due)
    )


register(Evaluator(CRON_CODE, cron_entry, CronBook))
