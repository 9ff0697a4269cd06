"""The scheduler's side of the trigger kinds: one evaluator per kind, registered by number.

An evaluator turns a workflow into its trigger-index entry. A kind that fires as soon as its
time gate opens (time, interval) needs nothing more; a kind with a condition (price, state)
also names a `ConditionBook` — the structure the index hosts for it, holding the armed
workflows of that kind until an observation (a price, a block's view results) makes them due.
A workflow whose kind has no evaluator is an error (`UnknownTriggerKind`), never another kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from autometa.domain.kinds import Comparator
from autometa.domain.state import WorkflowState
from autometa.domain.triggers import UnknownTriggerKind, get_kind


@dataclass(frozen=True)
class TriggerEntry:
    """What the index needs of a workflow: primitives only (see `entry_from_state`).
    `token`/`comparator`/`threshold` are the PRICE kind's condition, `condition` another's."""

    workflow_id: int
    run_index: int
    kind: int
    due: int
    end: int = 0  # 0 = no end
    token: str | None = None
    comparator: Comparator = Comparator.BELOW
    threshold: int = 0
    gas_limit: int = 0
    condition: object = None  # another condition kind's own primitives (e.g. a StateCondition)


class ConditionBook(Protocol):
    """The armed workflows of one condition kind, hosted by the trigger index."""

    def set(self, entry: TriggerEntry) -> None:
        """Remember `entry`'s condition (the workflow is not armed yet)."""

    def arm(self, wid: int) -> None:
        """Start watching the condition of `wid` (its time gate opened)."""

    def arm_many(self, wids: list[int]) -> None:
        """`arm` for many at once (a bulk load)."""

    def disarm(self, wid: int) -> None:
        """Stop watching `wid` (it changed, was removed or fired)."""

    def memory_bytes(self) -> int: ...


class ArmedSet:
    """`arm` / `arm_many` / `disarm` for a book whose armed workflows are a plain set (`_armed`)."""

    _armed: set[int]

    def arm(self, wid: int) -> None:
        self._armed.add(wid)

    def arm_many(self, wids: list[int]) -> None:
        self._armed.update(wids)

    def disarm(self, wid: int) -> None:
        self._armed.discard(wid)


@dataclass(frozen=True)
class Evaluator:
    """One kind on the scheduler's side. `book`: None for kinds due by time alone."""

    code: int
    entry: Callable[[WorkflowState, int, int, int], TriggerEntry]  # (state, due, end, gas)
    book: Callable[[], ConditionBook] | None = None


_EVALUATORS: dict[int, Evaluator] = {}


def register(evaluator: Evaluator) -> Evaluator:
    kind = get_kind(evaluator.code)  # a kind the domain does not know cannot be evaluated
    if evaluator.code in _EVALUATORS:
        raise RuntimeError(f"evaluator for trigger kind {kind.name} registered twice")
    _EVALUATORS[evaluator.code] = evaluator
    return evaluator


def evaluator_for(code: int) -> Evaluator:
    ev = _EVALUATORS.get(int(code))
    if ev is None:
        raise UnknownTriggerKind(code)
    return ev


def evaluators() -> list[Evaluator]:
    return [_EVALUATORS[c] for c in sorted(_EVALUATORS)]


def time_entry(state: WorkflowState, due: int, end: int, gas: int) -> TriggerEntry:
    """The entry of a kind due by time alone."""
    return TriggerEntry(state.id, state.run_count, int(state.trigger_type), due, end, gas_limit=gas)
