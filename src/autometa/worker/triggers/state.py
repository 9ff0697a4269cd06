"""STATE on the scheduler's side: every armed STATE workflow is re-checked each block from one
batch of view calls.

Identical `(target, calldata)` pairs are read once (a call id per distinct pair, reference
counted by the armed workflows using it), through Multicall3's `aggregate3` in chunks of at most
`chunk` calls with `allowFailure` (a reverting view makes only its own workflows not hold). The
workflows of one call that read the same word the same way with the same comparator share one
sorted threshold list, so a result selects the holding ones by bisection — O(log n + k) per
group, not a comparison per workflow."""

from __future__ import annotations

import asyncio
import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode, encode
from web3 import AsyncWeb3
from web3.exceptions import ContractLogicError, Web3RPCError
from web3.types import BlockIdentifier

from autometa.chain.multicall3 import MULTICALL3_ADDRESS
from autometa.domain.triggers.state import COMPARATOR_CODES, READ_CODES, STATE_CODE, StateTriggerData
from autometa.worker.triggers.registry import Evaluator, TriggerEntry, register

AGGREGATE3_SELECTOR = bytes.fromhex("82ad56cb")  # aggregate3((address,bool,bytes)[])
DEFAULT_CHUNK = 500
# The contract's READ_* / CMP_* numbers: the book compares by them and a run's proof packs them.
_READS = READ_CODES
_OPS = COMPARATOR_CODES


Call = tuple[int, bytes, bytes, int]  # (call id, target, calldata, view gas)


@dataclass(frozen=True)
class StateCondition:
    """A STATE trigger as primitives: the call, which word, how to read it, the comparison."""

    target: bytes  # 20 bytes
    calldata: bytes
    word: int
    read_as: int  # _READS
    op: int  # _OPS
    threshold: int  # an address as its integer
    view_gas: int

    @classmethod
    def of(cls, data: StateTriggerData) -> StateCondition:
        t = data.threshold
        threshold = int(t, 16) if isinstance(t, str) else int(t)
        return cls(
            bytes.fromhex(data.target[2:]),
            bytes.fromhex(data.calldata[2:]),
            data.word,
            _READS[data.read_as],
            _OPS[data.comparator],
            threshold,
            data.view_gas,
        )

    def trigger_data(self) -> bytes:
        """The packed `triggerData` whose hash the contract stored (`encode_data`'s layout): the
        proof a run hands `executeWithProof`. Rebuilt from the condition: no second copy kept."""
        return (
            self.target
            + bytes([self.word, self.read_as, self.op])
            + self.view_gas.to_bytes(4, "big")
            + (self.threshold % 2**256).to_bytes(32, "big")
            + self.calldata
        )


def read_word(data: bytes, word: int, read_as: int) -> int | None:
    """The return word as a number, or None if it is missing or not a valid value of its type."""
    raw = data[32 * word : 32 * word + 32]
    if len(raw) < 32:
        return None
    value = int.from_bytes(raw, "big")
    if read_as == 1:
        return value - 2**256 if value >= 2**255 else value
    if read_as == 2 and value > 1 or read_as == 3 and value >= 2**160:
        return None
    return value


class _Group:
    """The workflows of one (call, word, read_as, comparator), sorted by (threshold, id)."""

    __slots__ = ("thresholds", "ids")

    def __init__(self) -> None:
        self.thresholds: list[int] = []
        self.ids: list[int] = []

    def _at(self, threshold: int, wid: int) -> int:
        lo = bisect_left(self.thresholds, threshold)
        hi = bisect_right(self.thresholds, threshold, lo)
        return bisect_left(self.ids, wid, lo, hi)

    def insert(self, threshold: int, wid: int) -> None:
        i = self._at(threshold, wid)
        self.thresholds.insert(i, threshold)
        self.ids.insert(i, wid)

    def delete(self, threshold: int, wid: int) -> None:
        i = self._at(threshold, wid)
        if i < len(self.ids) and self.ids[i] == wid and self.thresholds[i] == threshold:
            del self.thresholds[i], self.ids[i]

    def take(self, op: int, value: int) -> list[int]:
        """Remove and return the ids whose `value <op> threshold` holds."""
        th = self.thresholds
        if op in (0, 1):  # value < t / value <= t: thresholds above (or at) value, a suffix
            i = bisect_right(th, value) if op == 0 else bisect_left(th, value)
            spans = [(i, len(th))]
        elif op in (2, 3):  # value > t / value >= t: thresholds below (or at) value, a prefix
            spans = [(0, bisect_left(th, value) if op == 2 else bisect_right(th, value))]
        else:
            lo, hi = bisect_left(th, value), bisect_right(th, value)
            spans = [(lo, hi)] if op == 4 else [(hi, len(th)), (0, lo)]  # delete the later span first
        out: list[int] = []
        for a, b in spans:
            out.extend(self.ids[a:b])
            del self.thresholds[a:b], self.ids[a:b]
        return out


class StateBook:
    """The armed STATE workflows (a `ConditionBook`), grouped by distinct call."""

    def __init__(self) -> None:
        self._cond: dict[int, StateCondition] = {}
        self._call_ids: dict[tuple[bytes, bytes], int] = {}
        self._calls: list[tuple[bytes, bytes]] = []
        self._gas: dict[int, int] = {}  # call id -> the largest view gas asked for it
        self._armed: dict[int, int] = {}  # call id -> armed workflows using it
        self._groups: dict[tuple[int, int, int, int], _Group] = {}

    def _call_id(self, c: StateCondition) -> int:
        key = (c.target, c.calldata)
        cid = self._call_ids.get(key)
        if cid is None:
            cid = self._call_ids[key] = len(self._calls)
            self._calls.append(key)
        self._gas[cid] = max(self._gas.get(cid, 0), c.view_gas)
        return cid

    def _group(self, wid: int) -> tuple[tuple[int, int, int, int], StateCondition]:
        c = self._cond[wid]
        return (self._call_ids[(c.target, c.calldata)], c.word, c.read_as, c.op), c

    def set(self, entry: TriggerEntry) -> None:
        if not isinstance(entry.condition, StateCondition):
            raise ValueError("a state trigger needs its StateCondition")
        self._cond[entry.workflow_id] = entry.condition
        self._call_id(entry.condition)

    def arm(self, wid: int) -> None:
        key, c = self._group(wid)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group()
        group.insert(c.threshold, wid)
        self._armed[key[0]] = self._armed.get(key[0], 0) + 1

    def arm_many(self, wids: list[int]) -> None:
        for wid in wids:
            self.arm(wid)

    def disarm(self, wid: int) -> None:
        key, c = self._group(wid)
        self._groups[key].delete(c.threshold, wid)
        self._armed[key[0]] -= 1

    def proof(self, wid: int) -> str:
        """The 0x-hex `triggerData` a run of `wid` hands `executeWithProof` (KeyError: not a
        STATE workflow of this book)."""
        return "0x" + self._cond[wid].trigger_data().hex()

    def calls(self) -> list[Call]:
        """The distinct calls armed workflows wait on: (call id, target, calldata, view gas)."""
        return [(cid, *self._calls[cid], self._gas[cid]) for cid, n in self._armed.items() if n > 0]

    def take_holding(self, results: dict[int, tuple[bool, bytes]]) -> list[int]:
        """Remove and return the armed workflows whose condition holds on `results` (call id →
        (success, return data)); a failed or missing call holds for none of its workflows."""
        out: list[int] = []
        for (cid, word, read_as, op), group in self._groups.items():
            result = results.get(cid)
            if not group.ids or result is None or not result[0]:
                continue
            value = read_word(result[1], word, read_as)
            if value is None:
                continue
            taken = group.take(op, value)
            self._armed[cid] -= len(taken)
            out.extend(taken)
        return out

    def memory_bytes(self) -> int:
        return sum(len(g.ids) * 72 for g in self._groups.values()) + len(self._cond) * 200


MAX_ALONE = 64  # failed calls re-read alone per block, at most


async def _aggregate(
    w3: AsyncWeb3[Any], part: list[Call], block: BlockIdentifier, multicall: str, gas: int | None = None
) -> list[tuple[bool, bytes]] | None:
    """One `aggregate3` eth_call; None if the node refuses it as a whole (it reverted or ran out
    of gas). Transport errors propagate: an unreachable node is not a failed view."""
    data = AGGREGATE3_SELECTOR + encode(["(address,bool,bytes)[]"], [[(t, True, d) for _, t, d, _ in part]])
    tx: dict[str, Any] = {"to": multicall, "data": data}
    if gas is not None:
        tx["gas"] = gas
    try:
        raw = await w3.eth.call(tx, block)  # type: ignore[arg-type]
    except (ContractLogicError, Web3RPCError):
        return None
    (replies,) = decode(["(bool,bytes)[]"], bytes(raw))
    return [(bool(ok), bytes(ret)) for ok, ret in replies]


async def read_calls(
    w3: AsyncWeb3[Any],
    calls: list[Call],
    block: BlockIdentifier = "latest",
    chunk: int = DEFAULT_CHUNK,
    multicall: str = MULTICALL3_ADDRESS,
) -> dict[int, tuple[bool, bytes]]:
    """Each call's (success, return data) at `block`: `chunk` calls per `aggregate3` eth_call,
    the chunks in parallel.

    Multicall3 gives a call all the gas left, so one view that burns it (a loop) would starve the
    calls after it in its chunk. So a chunk refused as a whole is split in halves until the bad
    call stands alone, and the calls that failed inside a chunk are read once more alone, each
    with its own view gas as the limit (at most MAX_ALONE per block): a starved call then
    succeeds and a gas burner fails alone. Nothing fails in the common case: one eth_call per
    chunk."""

    async def split(part: list[Call]) -> list[tuple[int, tuple[bool, bytes]]]:
        replies = await _aggregate(w3, part, block, multicall)
        if replies is not None:
            return [(cid, r) for (cid, *_), r in zip(part, replies, strict=True)]
        if len(part) == 1:
            return [(part[0][0], (False, b""))]
        halves = await asyncio.gather(split(part[: len(part) // 2]), split(part[len(part) // 2 :]))
        return halves[0] + halves[1]

    parts = [calls[i : i + chunk] for i in range(0, len(calls), chunk)]
    results = {cid: r for done in await asyncio.gather(*(split(p) for p in parts)) for cid, r in done}
    failed = [c for c in calls if not results[c[0]][0]][:MAX_ALONE]
    if len(calls) > 1 and failed:
        alone = await asyncio.gather(*(_aggregate(w3, [c], block, multicall, gas=c[3] + 50_000) for c in failed))
        for c, replies in zip(failed, alone, strict=True):
            if replies is not None:
                results[c[0]] = replies[0]
    return results


def rpc_calls_for(distinct: int, chunk: int = DEFAULT_CHUNK) -> int:
    return math.ceil(distinct / chunk)


def state_entry_of(
    wid: int, run_index: int, data: StateTriggerData, due: int = 0, end: int = 0, gas: int = 0
) -> TriggerEntry:
    return TriggerEntry(wid, run_index, STATE_CODE, due, end, gas_limit=gas, condition=StateCondition.of(data))


def _state_entry(state: Any, due: int, end: int, gas: int) -> TriggerEntry:
    data = state.spec.trigger_data
    if not isinstance(data, StateTriggerData):
        raise TypeError(f"workflow {state.id}: a state entry for {type(data).__name__}")
    return state_entry_of(state.id, state.run_count, data, due, end, gas)


register(Evaluator(STATE_CODE, _state_entry, StateBook))
