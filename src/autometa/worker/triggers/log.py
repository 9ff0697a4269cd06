"""LOG on the scheduler's side: one run per matching log, in log order, after the confirmation rule.

* `LogBook` (the index's `ConditionBook` for LOG) keeps every LOG workflow's filter and the logs
  it has yet to run for, sorted by `block << 32 | index` — the contract's own order. Logs at or
  before the contract's cursor (the word after the last fired log) are never kept, so a log that
  fired is not offered again, after a restart either. An armed workflow with a pending log is
  handed the oldest; the log leaves the book only once the contract's cursor has passed it (the
  run executed), so a skipped or lost run offers the same log again.
* `LogScanner` reads the logs of all LOG workflows with one `eth_getLogs` per block (addresses
  and topic0s as sets; topics 1-3 filtered here), `confirmations` blocks behind the head (or
  the node's `finalized` / `safe` block). Its checkpoint is the block up to which no log is
  left to run (the scanned block, or just before the oldest pending log), so a restart scans
  again from there in ranges of at most `max_range` blocks: nothing is skipped, and what already
  fired is dropped by the contract's cursor.
* A run's proof is `abi.encode(uint256 blockNumber, bytes32 blockHash, bytes32 txHash, uint256
  logIndex)`, what `executeWithProof` decodes; the contract checks the block hash with
  `blockhash`, so a log more than 256 blocks old can no longer be attested and is dropped (logged)."""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import structlog
from eth_abi.abi import encode
from eth_utils import to_checksum_address
from web3 import AsyncWeb3

from autometa.chain.indexer import range_refused
from autometa.domain.state import WorkflowState
from autometa.domain.triggers.log import LOG_CODE, LogTriggerData
from autometa.worker.triggers.registry import ArmedSet, Evaluator, TriggerEntry, register

if TYPE_CHECKING:
    from autometa.store import Store

log = structlog.get_logger("autometa.worker.triggers.log")

BLOCKHASH_WINDOW = 256  # blocks `blockhash` answers for
INCLUSION_MARGIN = 8  # blocks a run may take to be included after the block that hands it out
DEFAULT_MAX_RANGE = 500


class LogRef(NamedTuple):
    """One observed log: its order key (`block << 32 | index`) and what the proof names."""

    key: int
    block: int
    block_hash: bytes
    tx_hash: bytes
    log_index: int

    def proof(self) -> str:
        """`abi.encode(blockNumber, blockHash, txHash, logIndex)`, as `executeWithProof` reads it."""
        words = [self.block, self.block_hash, self.tx_hash, self.log_index]
        return "0x" + encode(["uint256", "bytes32", "bytes32", "uint256"], words).hex()


def log_ref(raw: Mapping[str, Any]) -> LogRef:
    block, index = int(raw["blockNumber"]), int(raw["logIndex"])
    return LogRef(block << 32 | index, block, bytes(raw["blockHash"]), bytes(raw["transactionHash"]), index)


@dataclass(frozen=True)
class LogCondition:
    emitter: str  # lowercase 0x-hex
    topic0: bytes
    topics: tuple[bytes | None, bytes | None, bytes | None]
    cursor: int  # the contract's next acceptable log key
    after_block: int  # logs of later blocks only (the creation block; 0: unknown)

    @classmethod
    def of(cls, data: LogTriggerData, word: int, created_block: int) -> LogCondition:
        t = tuple(bytes.fromhex(x[2:]) if x is not None else None for x in data.topics)
        return cls(data.emitter.lower(), bytes.fromhex(data.topic0[2:]), t, word, created_block)  # type: ignore[arg-type]

    def wants(self, ref: LogRef, topics: list[bytes]) -> bool:
        if ref.key < self.cursor or ref.block <= self.after_block:
            return False
        for i, want in enumerate(self.topics, start=1):
            if want is not None and (len(topics) <= i or topics[i] != want):
                return False
        return True


class LogBook(ArmedSet):
    """The LOG workflows' filters and pending logs (a `ConditionBook`)."""

    def __init__(self) -> None:
        self._cond: dict[int, LogCondition] = {}
        self._by_filter: dict[tuple[str, bytes], set[int]] = {}
        self._pending: dict[int, list[LogRef]] = {}
        self._armed: set[int] = set()

    def set(self, entry: TriggerEntry) -> None:
        cond = entry.condition
        if not isinstance(cond, LogCondition):
            raise ValueError("a log trigger needs its filter")
        wid = entry.workflow_id
        self._unfilter(wid)
        self._cond[wid] = cond
        self._by_filter.setdefault((cond.emitter, cond.topic0), set()).add(wid)
        pending = [r for r in self._pending.get(wid, []) if r.key >= cond.cursor]
        if pending:
            self._pending[wid] = pending
        else:
            self._pending.pop(wid, None)

    def forget(self, wid: int) -> None:
        """`wid` left the index (paused, cancelled, completed): drop its filter and logs."""
        self._unfilter(wid)
        self._pending.pop(wid, None)
        self._armed.discard(wid)

    def _unfilter(self, wid: int) -> None:
        old = self._cond.pop(wid, None)
        if old is not None:
            ids = self._by_filter.get((old.emitter, old.topic0))
            if ids is not None:
                ids.discard(wid)
                if not ids:
                    del self._by_filter[(old.emitter, old.topic0)]

    def filter(self) -> tuple[list[str], list[str]]:
        """(addresses, topic0s) of one eth_getLogs covering every LOG workflow."""
        emitters = sorted({str(to_checksum_address(e)) for e, _ in self._by_filter})
        topics = sorted({"0x" + t.hex() for _, t in self._by_filter})
        return emitters, topics

    def observe(self, logs: list[Any]) -> int:
        """Add each log to the workflows it matches (once); returns how many were added."""
        added = 0
        for raw in logs:
            topics = [bytes(t) for t in raw["topics"]]
            if not topics:
                continue
            wids = self._by_filter.get((str(raw["address"]).lower(), topics[0]))
            if not wids:
                continue
            ref = log_ref(raw)
            for wid in wids:
                if not self._cond[wid].wants(ref, topics):
                    continue
                pending = self._pending.setdefault(wid, [])
                i = bisect_left(pending, ref)
                if i < len(pending) and pending[i].key == ref.key:
                    continue
                pending.insert(i, ref)
                added += 1
        return added

    def take_ready(self, head: int, min_age: int = 1) -> dict[int, LogRef]:
        """Remove the armed workflows whose oldest pending log is at least `min_age` blocks
        older than `head` from the armed set; return each with that log. Logs `blockhash` can no
        longer attest (older than 256 blocks) are dropped."""
        out: dict[int, LogRef] = {}
        for wid in [w for w in self._armed if self._pending.get(w) and self._pending[w][0].block <= head - min_age]:
            pending = self._pending[wid]
            stale = 0
            while stale < len(pending) and pending[stale].block <= head - BLOCKHASH_WINDOW + INCLUSION_MARGIN:
                stale += 1
            if stale:
                log.warning("scheduler.log_too_old", workflow_id=wid, dropped=stale, oldest_block=pending[0].block)
                del pending[:stale]
            if pending:
                out[wid] = pending[0]
        self._armed.difference_update(out)
        return out

    def drop_block(self, block: int) -> int:
        """Forget every pending log of `block` (a reorg replaced it); returns how many."""
        dropped = 0
        for pending in self._pending.values():
            keep = [r for r in pending if r.block != block]
            dropped += len(pending) - len(keep)
            pending[:] = keep
        return dropped

    def pending(self, wid: int) -> list[LogRef]:
        return list(self._pending.get(wid, []))

    def oldest_pending_block(self) -> int | None:
        blocks = [p[0].block for wid, p in self._pending.items() if p and wid in self._cond]
        return min(blocks) if blocks else None

    def __bool__(self) -> bool:
        return bool(self._by_filter)

    def memory_bytes(self) -> int:
        return len(self._cond) * 300 + sum(len(p) * 200 for p in self._pending.values())


class LogCursor(Protocol):
    """Where the scanner keeps its checkpoint (the block up to which no log is left to run)."""

    async def get(self) -> int | None: ...

    async def set(self, block: int) -> None: ...


class MemoryLogCursor:
    """No store: a restart scans from the confirmed head (nothing backfilled)."""

    def __init__(self) -> None:
        self.block: int | None = None

    async def get(self) -> int | None:
        return self.block

    async def set(self, block: int) -> None:
        self.block = block


class StoreLogCursor:
    """The checkpoint in the store's checkpoints table (`logs:<chain>:<contract>`)."""

    def __init__(self, store: Store, chain_id: int, contract: str) -> None:
        self.store, self.chain_id, self.name = store, chain_id, f"logs:{chain_id}:{contract.lower()}"

    async def get(self) -> int | None:
        cp = await asyncio.to_thread(self.store.checkpoints.get, self.chain_id, self.name)
        return int(cp.block_number) if cp is not None else None

    async def set(self, block: int) -> None:
        await asyncio.to_thread(self.store.checkpoints.set, self.chain_id, self.name, block)


class LogScanner:
    """Feeds the `LogBook` the confirmed logs of every block, from its checkpoint on."""

    def __init__(
        self,
        w3: AsyncWeb3[Any],
        cursor: LogCursor | None = None,
        *,
        confirmations: int | str = 0,
        max_range: int = DEFAULT_MAX_RANGE,
        min_age: int = 0,
    ) -> None:
        self.w3, self.cursor = w3, cursor or MemoryLogCursor()
        # `blockhash(n)` is 0 inside block n, so a run attesting a log of block n can only run in
        # a later block: the executor simulates proof runs on "pending" (the next block's
        # context), so a log is handed out in its own block (0). 1 waits a block, for an
        # executor that checks its runs in the head's context.
        self.min_age = min_age
        self.confirmations, self.max_range = confirmations, max_range
        self.next_block: int | None = None
        self._saved: int | None = None
        self.requests = 0  # eth_getLogs sent (the per-block RPC cost)

    async def target(self, head: int) -> int:
        """The newest block whose logs count (the confirmation rule)."""
        if isinstance(self.confirmations, str):
            block = await self.w3.eth.get_block(self.confirmations)  # type: ignore[arg-type]
            return int(block["number"])
        return head - self.confirmations

    async def start(self, head: int) -> None:
        """Resume after the checkpoint (a restart backfills from there), or at the confirmed head."""
        saved = await self.cursor.get()
        self.next_block = saved + 1 if saved is not None else max(await self.target(head), 0)
        self._saved = saved
        log.info("scheduler.logs_from", block=self.next_block, checkpoint=saved)

    async def scan(self, book: LogBook, head: int) -> int:
        """Read the confirmed logs up to `head`'s rule into `book`; returns how many were added."""
        if self.next_block is None:
            await self.start(head)
        assert self.next_block is not None
        target = await self.target(head)
        if not book:  # no LOG workflow: nothing to read (the checkpoint stays; nothing is pending)
            self.next_block = max(self.next_block, target + 1)
            return 0
        added = 0
        addresses, topics = book.filter()
        while self.next_block <= target:
            start = self.next_block
            end = min(target, start + self.max_range - 1)
            while True:
                try:
                    self.requests += 1
                    logs = await self.w3.eth.get_logs(
                        {"address": addresses, "topics": [topics], "fromBlock": start, "toBlock": end}  # type: ignore[typeddict-item]
                    )
                    break
                except Exception as exc:
                    if end == start or range_refused(exc) is None:
                        raise
                    end = start + (end - start) // 2
            added += book.observe(list(logs))
            self.next_block = end + 1
        oldest = book.oldest_pending_block()
        done = self.next_block - 1 if oldest is None else min(self.next_block - 1, oldest - 1)
        if done != self._saved and done >= 0:
            await self.cursor.set(done)
            self._saved = done
        return added


async def canonical(
    w3: AsyncWeb3[Any], scanner: LogScanner, book: LogBook, ready: dict[int, LogRef]
) -> dict[int, LogRef]:
    """`ready` without the logs whose block is no longer the chain's (a reorg after they were
    read, possible with few confirmations): their blocks' logs are dropped, the scanner reads
    those blocks again, and their workflows stay armed. One header per distinct block."""
    blocks = {ref.block: ref.block_hash for ref in ready.values()}
    orphaned = set()
    for number, known in blocks.items():
        header = await w3.eth.get_block(number)
        if bytes(header["hash"]) != known:
            orphaned.add(number)
    if not orphaned:
        return ready
    for number in orphaned:
        dropped = book.drop_block(number)
        log.warning("scheduler.log_reorged", block=number, dropped=dropped)
    if scanner.next_block is not None:
        scanner.next_block = min(scanner.next_block, min(orphaned))
    kept = {}
    for wid, ref in ready.items():
        if ref.block in orphaned:
            book.arm(wid)
        else:
            kept[wid] = ref
    return kept


def log_entry(state: WorkflowState, due: int, end: int, gas: int) -> TriggerEntry:
    data = state.spec.trigger_data
    if not isinstance(data, LogTriggerData):
        raise TypeError(f"workflow {state.id}: a log entry for {type(data).__name__}")
    condition = LogCondition.of(data, state.trigger_word or 0, state.created_block)
    return TriggerEntry(state.id, state.run_count, LOG_CODE, due, end, gas_limit=gas, condition=condition)


register(Evaluator(LOG_CODE, log_entry, LogBook))
