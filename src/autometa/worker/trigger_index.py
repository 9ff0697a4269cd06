"""The scheduler's trigger index: which runs are due, without scanning every workflow.

* **Time**: TIME and INTERVAL triggers, and the time gate of PRICE triggers (`not_before`, the
  cooldown after a run), sit in one heap keyed by the next due time. Entries are never removed
  from the heap; a per-workflow version makes stale ones (after an update or removal) be
  skipped when they surface (lazy invalidation).
* **Price**: a PRICE trigger whose time gate is open sits in its token's sorted thresholds, one
  pair of parallel arrays (threshold, workflow id) for BELOW and one for ABOVE. A new price `p`
  fires the BELOW entries with threshold > p (a suffix) and the ABOVE entries with threshold < p
  (a prefix): O(log n + k) by bisection.

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
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import NamedTuple

from autometa.domain.kinds import Comparator, TriggerType
from autometa.domain.state import WorkflowState
from autometa.domain.types import price_to_int
from autometa.domain.workflow import PriceTriggerData

# Where a workflow is in the index (the `_where` column).
ABSENT, WAITING, ARMED, READY, FIRED = 0, 1, 2, 3, 4
MAX_WORKFLOW_ID = 2**32 - 1
_U64 = 2**64 - 1


class DueRun(NamedTuple):
    """A run to perform now. `price` is the price that crossed (8 decimals), for PRICE triggers."""

    workflow_id: int
    run_index: int
    kind: TriggerType
    due_time: int
    token: str | None = None
    price: int | None = None
    threshold: int | None = None
    gas_limit: int = 0  # the action's gasLimit (0: unknown): lets the executor size the tx itself


@dataclass(frozen=True)
class TriggerEntry:
    """What the index needs of a workflow: primitives only (see `entry_from_state`)."""

    workflow_id: int
    run_index: int
    kind: TriggerType
    due: int
    end: int = 0  # 0 = no end
    token: str | None = None
    comparator: Comparator = Comparator.BELOW
    threshold: int = 0
    gas_limit: int = 0


def entry_from_state(state: WorkflowState) -> TriggerEntry | None:
    """The index entry of a workflow, or None if it will never run again."""
    due = state.next_due_time()
    if due is None:
        return None
    end = state.spec.end_time() or 0
    gas = state.spec.resolved_gas_limit
    t = state.spec.trigger_data
    if isinstance(t, PriceTriggerData):
        threshold = price_to_int(t.price_usd)
        return TriggerEntry(
            state.id, state.run_count, TriggerType.PRICE, due, end, t.token, t.comparator, threshold, gas
        )
    return TriggerEntry(state.id, state.run_count, state.trigger_type, due, end, gas_limit=gas)


class _Side:
    """One token's thresholds for one comparator, sorted by (threshold, workflow id)."""

    __slots__ = ("thresholds", "ids")

    def __init__(self) -> None:
        self.thresholds = array("Q")
        self.ids = array("Q")

    def __len__(self) -> int:
        return len(self.thresholds)

    def _position(self, threshold: int, wid: int) -> int:
        lo = bisect_left(self.thresholds, threshold)
        hi = bisect_right(self.thresholds, threshold, lo)
        return bisect_left(self.ids, wid, lo, hi)

    def insert(self, threshold: int, wid: int) -> None:
        i = self._position(threshold, wid)
        self.thresholds.insert(i, threshold)
        self.ids.insert(i, wid)

    def insert_many(self, pairs: list[tuple[int, int]]) -> None:
        """Many at once: one sort-merge instead of many memmoves (bulk loads)."""
        if len(pairs) < 64:
            for threshold, wid in pairs:
                self.insert(threshold, wid)
            return
        merged = sorted([*zip(self.thresholds, self.ids, strict=True), *pairs])
        self.thresholds = array("Q", (t for t, _ in merged))
        self.ids = array("Q", (w for _, w in merged))

    def delete(self, threshold: int, wid: int) -> bool:
        i = self._position(threshold, wid)
        if i < len(self.ids) and self.ids[i] == wid and self.thresholds[i] == threshold:
            del self.thresholds[i]
            del self.ids[i]
            return True
        return False

    def take_above(self, price: int) -> tuple[array[int], array[int]]:
        """Remove and return the entries with threshold > price (BELOW triggers that hold)."""
        i = bisect_right(self.thresholds, price)
        taken = self.thresholds[i:], self.ids[i:]
        del self.thresholds[i:]
        del self.ids[i:]
        return taken

    def take_below(self, price: int) -> tuple[array[int], array[int]]:
        """Remove and return the entries with threshold < price (ABOVE triggers that hold)."""
        i = bisect_left(self.thresholds, price)
        taken = self.thresholds[:i], self.ids[:i]
        del self.thresholds[:i]
        del self.ids[:i]
        return taken


class TriggerIndex:
    """Due runs by time and by price. Not thread-safe: one owner (the scheduler's loop)."""

    def __init__(self) -> None:
        self._where = array("B")
        self._kind = array("B")
        self._version = array("L")
        self._run = array("L")
        self._due = array("Q")
        self._end = array("Q")
        self._token = array("H")
        self._comparator = array("B")
        self._threshold = array("Q")
        self._gas = array("I")  # the action's gasLimit (uint24 on chain)
        self._heap: list[tuple[int, int, int]] = []  # (due, workflow id, version)
        self._ready: list[int] = []  # time triggers whose due time passed in `crossed`
        self._sides: dict[tuple[int, int], _Side] = {}  # (token no., comparator) -> thresholds
        self._token_ids: dict[str, int] = {}
        self._token_names: list[str] = []
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
        return list(self._token_names)

    def armed_tokens(self) -> list[str]:
        """Tokens with at least one trigger waiting for its price now."""
        return [self._token_names[t] for (t, _), side in self._sides.items() if len(side)]

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
        for col in (self._where, self._kind, self._comparator):
            col.extend(bytes(extra))
        for col in (self._version, self._run, self._due, self._end, self._token, self._threshold, self._gas):
            col.extend(array(col.typecode, bytes(extra * col.itemsize)))

    def _token_no(self, token: str) -> int:
        no = self._token_ids.get(token)
        if no is None:
            no = self._token_ids[token] = len(self._token_names)
            self._token_names.append(token)
        return no

    def _side(self, token_no: int, comparator: int) -> _Side:
        side = self._sides.get((token_no, comparator))
        if side is None:
            side = self._sides[(token_no, comparator)] = _Side()
        return side

    def _disarm(self, wid: int) -> None:
        """Take `wid` out of its price thresholds if it is there."""
        if self._where[wid] == ARMED:
            self._side(self._token[wid], self._comparator[wid]).delete(self._threshold[wid], wid)

    # ------------------------------------------------------------------ updates

    def upsert(self, state: WorkflowState) -> None:
        """A workflow's current state (from the indexer): index its next run, or forget it."""
        entry = entry_from_state(state)
        if entry is None:
            self.remove(state.id)
        else:
            self.upsert_entry(entry)

    def upsert_entry(self, e: TriggerEntry) -> None:
        wid = e.workflow_id
        self._grow(wid)
        if self._where[wid] == ABSENT:
            self._count += 1
        self._disarm(wid)
        self._version[wid] = (self._version[wid] + 1) & 0xFFFFFFFF
        self._kind[wid], self._run[wid], self._gas[wid] = int(e.kind), e.run_index, e.gas_limit
        self._due[wid], self._end[wid] = min(e.due, _U64), min(e.end, _U64)
        if e.kind is TriggerType.PRICE:
            if e.token is None:
                raise ValueError("a price trigger needs a token")
            self._token[wid] = self._token_no(e.token)
            self._comparator[wid], self._threshold[wid] = int(e.comparator), e.threshold
        self._where[wid] = WAITING
        heapq.heappush(self._heap, (self._due[wid], wid, self._version[wid]))

    def upsert_many(self, entries: list[TriggerEntry]) -> None:
        """Bulk load (a scheduler's start): like `upsert_entry` for each, with price triggers
        whose gate is already open merged into their thresholds in one sort."""
        for e in entries:
            self.upsert_entry(e)
        self._advance(self._now, bulk=True)

    def remove(self, wid: int) -> None:
        """The workflow will not run again (cancelled, paused, completed)."""
        if wid not in self:
            return
        self._disarm(wid)
        self._version[wid] = (self._version[wid] + 1) & 0xFFFFFFFF
        self._where[wid] = ABSENT
        self._count -= 1

    def rearm(self, wid: int) -> None:
        """Put a fired run back (it was skipped or lost): it may be handed out again."""
        if self.where(wid) != FIRED:
            return
        self._version[wid] = (self._version[wid] + 1) & 0xFFFFFFFF
        self._where[wid] = WAITING
        heapq.heappush(self._heap, (self._due[wid], wid, self._version[wid]))

    # ------------------------------------------------------------------ queries

    def _advance(self, now: int, bulk: bool = False) -> None:
        """Move everything whose time gate opened by `now` out of the heap: price triggers into
        their thresholds, time triggers into the ready list."""
        self._now = max(self._now, now)
        heap = self._heap
        pending: dict[tuple[int, int], list[tuple[int, int]]] = {}
        while heap and heap[0][0] <= now:
            _, wid, version = heapq.heappop(heap)
            if self._version[wid] != version or self._where[wid] != WAITING:
                continue  # stale entry
            end = self._end[wid]
            if end and now > end:  # expired before it could run: never due again
                self.remove(wid)
                continue
            if self._kind[wid] == TriggerType.PRICE:
                self._where[wid] = ARMED
                key = (self._token[wid], self._comparator[wid])
                if bulk:
                    pending.setdefault(key, []).append((self._threshold[wid], wid))
                else:
                    self._side(*key).insert(self._threshold[wid], wid)
            else:
                self._where[wid] = READY
                self._ready.append(wid)
        for key, pairs in pending.items():
            self._side(*key).insert_many(pairs)

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
            out.append(DueRun(wid, self._run[wid], TriggerType(self._kind[wid]), self._due[wid],
                              gas_limit=self._gas[wid]))  # fmt: skip
        return out

    def crossed(self, token: str, price: int, now: int) -> list[DueRun]:
        """PRICE runs whose condition holds at `price` (8 decimals) at time `now`, among those
        not already handed out. They are fired."""
        self._advance(now)
        no = self._token_ids.get(token)
        if no is None:
            return []
        out: list[DueRun] = []
        for comparator in (Comparator.BELOW, Comparator.ABOVE):
            side = self._sides.get((no, comparator))
            if side is None or not len(side):
                continue
            thresholds, ids = side.take_above(price) if comparator is Comparator.BELOW else side.take_below(price)
            for threshold, wid in zip(thresholds, ids, strict=True):
                end = self._end[wid]
                if end and now > end:
                    self._where[wid] = WAITING  # already out of the thresholds
                    self.remove(wid)
                    continue
                self._where[wid] = FIRED
                out.append(DueRun(wid, self._run[wid], TriggerType.PRICE, self._due[wid], token, price, threshold,
                                  self._gas[wid]))  # fmt: skip
        return out

    def memory_bytes(self) -> int:
        """Bytes held by the index's arrays and heap (an estimate for the heap's tuples)."""
        cols = (self._where, self._kind, self._version, self._run, self._due, self._end, self._token,
                self._comparator, self._threshold, self._gas)  # fmt: skip
        total = sum(c.buffer_info()[1] * c.itemsize for c in cols)
        total += sum(len(s) * 16 for s in self._sides.values())
        total += len(self._heap) * (8 + 64 + 3 * 32)
        return total
