"""The scheduler's trigger index: which runs are due, without scanning every workflow.

* **Time**: every workflow waits in one heap keyed by its next due time (a TIME or INTERVAL
  trigger's moment, a PRICE trigger's time gate: `not_before`, the cooldown after a run). Entries
  are never removed from the heap; a per-workflow version makes stale ones (after an update or
  removal) be skipped when they surface (lazy invalidation).
* **Conditions**: when the gate of a kind with a condition opens, the workflow is *armed* in
  the `ConditionBook` its evaluator names (`worker/triggers/`): the price book holds PRICE
  triggers by token and threshold, so a new price fires what it crosses in O(log n + k). Kinds
  without a condition become ready at once. The kinds are the evaluator registry's; a workflow
  of a kind with no evaluator is refused (`UnknownTriggerKind`), never indexed as another kind.

A run handed out (by `due_by_time` or `crossed`) is *fired*: it leaves the index until the
workflow's new state arrives (`upsert`, from the indexer after the run) or `rearm` puts it back
(the run was skipped or lost). So a price that stays below a threshold fires once, not every
block, and a tick costs only the workflows it newly crosses.

Per workflow the index holds a few machine integers in column arrays indexed by workflow id
(on-chain ids are dense from 1), not an object: a million workflows fit in tens of megabytes.
`now` must not go backwards between calls.
"""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Iterable
from typing import NamedTuple

from autometa.domain.kinds import TriggerType
from autometa.domain.state import WorkflowState
from autometa.domain.triggers.cron import CRON_CODE
from autometa.domain.triggers.log import LOG_CODE
from autometa.domain.triggers.state import STATE_CODE
from autometa.worker.triggers import ConditionBook, TriggerEntry, evaluator_for, evaluators
from autometa.worker.triggers.cron import CronBook
from autometa.worker.triggers.log import LogBook
from autometa.worker.triggers.price import PriceBook
from autometa.worker.triggers.state import StateBook

__all__ = ["ABSENT", "ARMED", "FIRED", "READY", "WAITING", "DueRun", "TriggerEntry", "TriggerIndex", "entry_from_state"]

# Where a workflow is in the index (the `_where` column).
ABSENT, WAITING, ARMED, READY, FIRED = 0, 1, 2, 3, 4
MAX_WORKFLOW_ID = 2**32 - 1
_U64 = 2**64 - 1


class DueRun(NamedTuple):
    """A run to perform now. `price` is the price that crossed (8 decimals), for PRICE triggers."""

    workflow_id: int
    run_index: int
    kind: int
    due_time: int
    token: str | None = None
    price: int | None = None
    threshold: int | None = None
    gas_limit: int = 0  # the action's gasLimit (0: unknown): lets the executor size the tx itself


def _heap_key(due: int, wid: int, version: int) -> int:
    """A heap entry: due (< 2**64) above workflow id and version (each < 2**32)."""
    return due << 64 | wid << 32 | version


def entry_from_state(state: WorkflowState) -> TriggerEntry | None:
    """The index entry of a workflow, or None if it will never run again. A kind without an
    evaluator raises `UnknownTriggerKind`."""
    evaluator = evaluator_for(state.trigger_type)
    due = state.next_due_time()
    if due is None:
        return None
    return evaluator.entry(state, due, state.spec.end_time() or 0, state.spec.resolved_gas_limit)


class TriggerIndex:
    """Due runs by time and by price. Not thread-safe: one owner (the scheduler's loop)."""

    def __init__(self) -> None:
        self._where = array("B")
        self._kind = array("B")
        self._version = array("L")
        self._run = array("L")
        self._due = array("Q")
        self._end = array("Q")
        self._gas = array("I")  # the action's gasLimit (uint24 on chain)
        # (due, workflow id, version) packed in one int (`_heap_key`): ordered the same as the
        # tuple, a third of its memory (one object instead of a tuple and its integers).
        self._heap: list[int] = []
        self._ready: list[int] = []  # time triggers whose due time passed in `crossed`
        # The condition kinds' books, by kind number, as their evaluators make them.
        self._books: dict[int, ConditionBook] = {ev.code: ev.book() for ev in evaluators() if ev.book}
        self._kinds = frozenset(ev.code for ev in evaluators())
        prices = self._books[int(TriggerType.PRICE)]
        assert isinstance(prices, PriceBook)
        self.prices: PriceBook = prices
        states = self._books[STATE_CODE]
        assert isinstance(states, StateBook)
        self.states: StateBook = states
        crons, logs = self._books[CRON_CODE], self._books[LOG_CODE]
        assert isinstance(crons, CronBook) and isinstance(logs, LogBook)
        self.crons: CronBook = crons
        self.logs: LogBook = logs
        self._count = 0
        self._now = 0

    # ------------------------------------------------------------------ bookkeeping

    def __len__(self) -> int:
        """Workflows the index knows (waiting, armed, ready or fired)."""
        return self._count

    def __contains__(self, wid: object) -> bool:
        return isinstance(wid, int) and 0 <= wid < len(self._where) and self._where[wid] != ABSENT

    @property
    def tokens(self) -> list[str]:
        """Tokens that have (or had) price triggers: the prices the scheduler must follow."""
        return self.prices.tokens

    def armed_tokens(self) -> list[str]:
        """Tokens with at least one trigger waiting for its price now."""
        return self.prices.armed_tokens()

    def where(self, wid: int) -> int:
        return self._where[wid] if 0 <= wid < len(self._where) else ABSENT

    def run_index(self, wid: int) -> int | None:
        return self._run[wid] if wid in self else None

    def heap_size(self) -> int:
        return len(self._heap)

    def _grow(self, wid: int) -> None:
        if not 0 <= wid <= MAX_WORKFLOW_ID:
            raise ValueError(f"workflow id {wid} out of range for the trigger index")
        extra = wid + 1 - len(self._where)
        if extra <= 0:
            return
        extra = max(extra, len(self._where) // 2, 16)
        for col in (self._where, self._kind):
            col.extend(bytes(extra))
        for col in (self._version, self._run, self._due, self._end, self._gas):
            col.extend(array(col.typecode, bytes(extra * col.itemsize)))

    def _disarm(self, wid: int) -> None:
        """Take `wid` out of its condition book if it is armed there."""
        if self._where[wid] == ARMED:
            self._books[self._kind[wid]].disarm(wid)

    # ------------------------------------------------------------------ updates

    def upsert(self, state: WorkflowState) -> None:
        """A workflow's current state (from the indexer): index its next run, or forget it."""
        entry = entry_from_state(state)
        if entry is None:
            self.remove(state.id)
        else:
            self.upsert_entry(entry)

    def upsert_entry(self, e: TriggerEntry) -> None:
        kind = int(e.kind)
        if kind not in self._kinds:
            evaluator_for(kind)  # raises UnknownTriggerKind
        book = self._books.get(kind)
        wid = e.workflow_id
        self._grow(wid)
        self._disarm(wid)  # by its old condition, before the book takes the new one
        if book is not None:
            book.set(e)
        if self._where[wid] == ABSENT:
            self._count += 1
        self._version[wid] = (self._version[wid] + 1) & 0xFFFFFFFF
        self._kind[wid], self._run[wid], self._gas[wid] = kind, e.run_index, e.gas_limit
        self._due[wid], self._end[wid] = min(e.due, _U64), min(e.end, _U64)
        self._where[wid] = WAITING
        heapq.heappush(self._heap, _heap_key(self._due[wid], wid, self._version[wid]))

    def upsert_many(self, entries: Iterable[TriggerEntry], *, arm: bool = True) -> None:
        """Bulk load (a scheduler's start): like `upsert_entry` for each, with price triggers
        whose gate is already open merged into their thresholds in one sort. `arm=False`: a
        page of a longer load; `arm_loaded` ends it."""
        for e in entries:
            self.upsert_entry(e)
        if arm:
            self.arm_loaded()

    def arm_loaded(self) -> None:
        """Arm, in one sort per book, what the loaded entries' open gates let in."""
        self._advance(self._now, bulk=True)

    def remove(self, wid: int) -> None:
        """The workflow will not run again (cancelled, paused, completed)."""
        if wid not in self:
            return
        self._disarm(wid)
        forget = getattr(self._books.get(self._kind[wid]), "forget", None)
        if forget is not None:  # a book that keeps more than the armed set (LOG's pending logs)
            forget(wid)
        self._version[wid] = (self._version[wid] + 1) & 0xFFFFFFFF
        self._where[wid] = ABSENT
        self._count -= 1

    def rearm(self, wid: int) -> None:
        """Put a fired run back (it was skipped or lost): it may be handed out again."""
        if self.where(wid) != FIRED:
            return
        self._version[wid] = (self._version[wid] + 1) & 0xFFFFFFFF
        self._where[wid] = WAITING
        heapq.heappush(self._heap, _heap_key(self._due[wid], wid, self._version[wid]))

    # ------------------------------------------------------------------ queries

    def _advance(self, now: int, bulk: bool = False) -> None:
        """Move everything whose time gate opened by `now` out of the heap: condition triggers
        into their kind's book, time triggers into the ready list."""
        self._now = max(self._now, now)
        heap = self._heap
        pending: dict[int, list[int]] = {}  # condition kind -> workflows to arm in bulk
        while heap and heap[0] >> 64 <= now:
            key = heapq.heappop(heap)
            wid, version = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
            if self._version[wid] != version or self._where[wid] != WAITING:
                continue  # stale entry
            end = self._end[wid]
            if end and now > end:  # expired before it could run: never due again
                self.remove(wid)
                continue
            book = self._books.get(self._kind[wid])
            if book is not None:
                self._where[wid] = ARMED
                if bulk:
                    pending.setdefault(self._kind[wid], []).append(wid)
                else:
                    book.arm(wid)
            else:
                self._where[wid] = READY
                self._ready.append(wid)
        for kind, wids in pending.items():
            self._books[kind].arm_many(wids)

    def due_by_time(self, now: int) -> list[DueRun]:
        """TIME / INTERVAL runs due at `now` (a block timestamp). They are fired: handed out once."""
        self._advance(now)
        out: list[DueRun] = []
        ready, self._ready = self._ready, []
        for wid in ready:
            if self._where[wid] != READY:
                continue
            end = self._end[wid]
            if end and now > end:
                self.remove(wid)
                continue
            self._where[wid] = FIRED
            out.append(DueRun(wid, self._run[wid], self._kind[wid], self._due[wid], gas_limit=self._gas[wid]))
        return out

    def crossed(self, token: str, price: int, now: int) -> list[DueRun]:
        """PRICE runs whose condition holds at `price` (8 decimals) at time `now`, among those
        not already handed out. They are fired."""
        self._advance(now)
        out: list[DueRun] = []
        for threshold, wid in self.prices.take_crossed(token, price):
            end = self._end[wid]
            if end and now > end:
                self._where[wid] = WAITING  # already out of the thresholds
                self.remove(wid)
                continue
            self._where[wid] = FIRED
            out.append(
                DueRun(
                    wid, self._run[wid], int(TriggerType.PRICE), self._due[wid], token, price, threshold, self._gas[wid]
                )
            )
        return out

    def book(self, kind: int) -> ConditionBook:
        """The condition book of `kind` (KeyError for a kind due by time alone)."""
        return self._books[int(kind)]

    def advance(self, now: int) -> None:
        """Arm what became due by `now` (`due_by_time` and `crossed` do it themselves)."""
        self._advance(now)

    def fire(self, kind: int, wids: list[int], now: int) -> list[DueRun]:
        """Hand out the runs of `kind` whose condition its book found holding (the book has
        already taken them out). They are fired."""
        out: list[DueRun] = []
        append, size = out.append, len(self._where)
        where, kinds, ends, runs, dues, gas = self._where, self._kind, self._end, self._run, self._due, self._gas
        for wid in wids:  # tens of thousands per block at worst: locals, positional tuples
            if not 0 <= wid < size or where[wid] != ARMED or kinds[wid] != kind:
                continue
            end = ends[wid]
            if end and now > end:
                where[wid] = WAITING  # already out of the book
                self.remove(wid)
                continue
            where[wid] = FIRED
            append(DueRun(wid, runs[wid], kind, dues[wid], None, None, None, gas[wid]))
        return out

    def memory_bytes(self) -> int:
        """Bytes held by the index's arrays and heap (an estimate for the heap's tuples)."""
        cols = (self._where, self._kind, self._version, self._run, self._due, self._end, self._gas)
        total = sum(c.buffer_info()[1] * c.itemsize for c in cols)
        total += sum(book.memory_bytes() for book in self._books.values())
        total += len(self._heap) * (8 + 40)
        return total
