"""PRICE on the scheduler's side: a workflow whose time gate is open sits in its token's sorted
thresholds, one pair of parallel arrays (threshold, workflow id) for BELOW and one for ABOVE. A
new price `p` takes the BELOW entries with threshold > p (a suffix) and the ABOVE entries with
threshold < p (a prefix): O(log n + k) by bisection. Per workflow a few machine integers in
column arrays indexed by workflow id, not an object."""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right

from autometa.domain.kinds import Comparator, TriggerType
from autometa.domain.state import WorkflowState
from autometa.domain.triggers.price import PriceTriggerData
from autometa.domain.types import price_to_int
from autometa.worker.triggers.registry import Evaluator, TriggerEntry, register


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


class PriceBook:
    """The armed PRICE workflows, by token and comparator (a `ConditionBook`)."""

    def __init__(self) -> None:
        self._token = array("H")
        self._comparator = array("B")
        self._threshold = array("Q")
        self._sides: dict[tuple[int, int], _Side] = {}  # (token no., comparator) -> thresholds
        self._token_ids: dict[str, int] = {}
        self._token_names: list[str] = []

    def _grow(self, wid: int) -> None:
        extra = wid + 1 - len(self._token)
        if extra > 0:
            extra = max(extra, len(self._token) // 2, 16)
            for col in (self._token, self._comparator, self._threshold):
                col.extend(array(col.typecode, bytes(extra * col.itemsize)))

    def _token_no(self, token: str) -> int:
        no = self._token_ids.get(token)
        if no is None:
            no = self._token_ids[token] = len(self._token_names)
            self._token_names.append(token)
        return no

    def _side(self, key: tuple[int, int]) -> _Side:
        side = self._sides.get(key)
        if side is None:
            side = self._sides[key] = _Side()
        return side

    def _key(self, wid: int) -> tuple[int, int]:
        return self._token[wid], self._comparator[wid]

    def set(self, entry: TriggerEntry) -> None:
        if entry.token is None:
            raise ValueError("a price trigger needs a token")
        wid = entry.workflow_id
        self._grow(wid)
        self._token[wid] = self._token_no(entry.token)
        self._comparator[wid], self._threshold[wid] = int(entry.comparator), entry.threshold

    def arm(self, wid: int) -> None:
        self._side(self._key(wid)).insert(self._threshold[wid], wid)

    def arm_many(self, wids: list[int]) -> None:
        pending: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for wid in wids:
            pending.setdefault(self._key(wid), []).append((self._threshold[wid], wid))
        for key, pairs in pending.items():
            self._side(key).insert_many(pairs)

    def disarm(self, wid: int) -> None:
        self._side(self._key(wid)).delete(self._threshold[wid], wid)

    @property
    def tokens(self) -> list[str]:
        return list(self._token_names)

    def armed_tokens(self) -> list[str]:
        return [self._token_names[t] for (t, _), side in self._sides.items() if len(side)]

    def take_crossed(self, token: str, price: int) -> list[tuple[int, int]]:
        """Remove and return (threshold, workflow id) of the armed triggers `price` satisfies."""
        no = self._token_ids.get(token)
        if no is None:
            return []
        out: list[tuple[int, int]] = []
        for comparator in (Comparator.BELOW, Comparator.ABOVE):
            side = self._sides.get((no, comparator))
            if side is None or not len(side):
                continue
            thresholds, ids = side.take_above(price) if comparator is Comparator.BELOW else side.take_below(price)
            out.extend(zip(thresholds, ids, strict=True))
        return out

    def memory_bytes(self) -> int:
        cols = (self._token, self._comparator, self._threshold)
        return sum(c.buffer_info()[1] * c.itemsize for c in cols) + sum(len(s) * 16 for s in self._sides.values())


def price_entry(state: WorkflowState, due: int, end: int, gas: int) -> TriggerEntry:
    t = state.spec.trigger_data
    if not isinstance(t, PriceTriggerData):
        raise TypeError(f"workflow {state.id}: a price entry for {type(t).__name__}")
    return TriggerEntry(
        state.id,
        state.run_count,
        int(TriggerType.PRICE),
        due,
        end,
        t.token,
        t.comparator,
        price_to_int(t.price_usd),
        gas,
    )


register(Evaluator(int(TriggerType.PRICE), price_entry, PriceBook))
