"""The event indexer: follows the Autometa contract's events into the store.

It reads logs in block ranges from a stored checkpoint, stays `confirmations` blocks behind the
head, remembers recent block hashes, and on a reorg rolls the store back to the last common
ancestor (restoring touched workflows from the contract's view at that block) and re-indexes.
Every write is idempotent (keyed by block and log index), so a crash mid-range only means the
range is applied again. Listeners (the scheduler) hear about every workflow whose state changed,
so nothing downstream ever polls per user.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from types import SimpleNamespace
from typing import Any, NamedTuple

import structlog
from eth_utils import event_abi_to_log_topic
from hexbytes import HexBytes
from sqlalchemy import select
from web3 import Web3
from web3.contract import Contract
from web3.datastructures import AttributeDict
from web3.exceptions import TransactionNotFound

from autometa.chain.contracts import autometa
from autometa.chain.events import EventDecoder
from autometa.domain.assets import asset_to_bytes32
from autometa.domain.kinds import ActionType, SkipReason, Status
from autometa.domain.outcomes import PriceSource, RunStatus
from autometa.domain.state import WorkflowState
from autometa.domain.triggers import UnknownTriggerKind
from autometa.domain.workflow import ZERO_ADDRESS, SpecTuple, WorkflowSpec
from autometa.store import Store
from autometa.store.escrow import Movement
from autometa.store.executions import OnchainRun
from autometa.store.models import Execution
from autometa.store.models import Workflow as WorkflowRow
from autometa.store.types import checksum

log = structlog.get_logger("autometa.indexer")

Listener = Callable[[list[WorkflowState]], None]
REORG_WINDOW = 64  # block hashes remembered per range, the deepest reorg we detect exactly
# A range aims at this many logs at most. Reading 10,000 at once (a backlog of creations packed
# in 160 blocks) peaked at ~60 MB in web3's response handling alone, and a process keeps most
# of its peak as heap it never returns. The first range after a start is FIRST_SPAN blocks (the
# density is unknown) and the span doubles back to batch_blocks while ranges stay below it.
# Measured on that backlog (scheduler RSS after catch-up): 1,000 logs 161 MB, 500 158, 300 154;
# smaller means more ranges (each re-reads its block hashes), for a few MB.
RANGE_LOGS = 500
FIRST_SPAN = 8


RESULT_REFUSALS = ("results", "response size", "too large", "more than")
RANGE_REFUSALS = ("range", "block", "limit", "too many", "exceed")


def range_refused(exc: Exception) -> str | None:
    """Whether an eth_getLogs error says the request was too big — "results" (too many logs)
    or "blocks" (too long a range), as providers say it in their own words — or None when the
    node failed for another reason (a rate limit says nothing about the range)."""
    text = str(exc).lower()
    if "429" in text or "too many requests" in text or "rate" in text:
        return None
    if any(word in text for word in RESULT_REFUSALS):
        return "results"
    if any(word in text for word in RANGE_REFUSALS):
        return "blocks"
    return None


# Decoded with `chain.events` (the hot ones of a burst; their arguments are plain values).
_FAST_EVENTS = frozenset({"RunExecuted", "RunSkipped", "RunFailed", "WorkflowStatusChanged"})


class _Log(NamedTuple):
    """A decoded log with the attributes of web3's event data that `_apply` reads."""

    args: SimpleNamespace
    blockNumber: int  # noqa: N815 (web3's names)
    logIndex: int  # noqa: N815
    transactionHash: bytes  # noqa: N815


def _formatted(raw: Mapping[str, Any]) -> AttributeDict[str, Any]:
    """A JSON-RPC log in the form web3's `get_logs` gives (ints, HexBytes, a checksummed
    address) without web3's generic formatter pipeline, which was about a seventh of the
    scheduler's CPU (profiled) for a 500-run block's ~1,000 logs. An AttributeDict, as web3's
    are: `process_log` gives attribute access only for those."""
    return AttributeDict(
        {
            "address": checksum(raw["address"]),
            "topics": [HexBytes(t) for t in raw["topics"]],
            "data": HexBytes(raw["data"]),
            "blockNumber": int(raw["blockNumber"], 16),
            "blockHash": HexBytes(raw["blockHash"]),
            "transactionHash": HexBytes(raw["transactionHash"]),
            "transactionIndex": int(raw["transactionIndex"], 16),
            "logIndex": int(raw["logIndex"], 16),
            "removed": bool(raw.get("removed", False)),
        }
    )


# Applied by `_RunBulk` (RunFailed only notes its reason for the RunExecuted that follows).
_BULK_EVENTS = frozenset({"RunExecuted", "RunSkipped", "RunFailed", "WorkflowStatusChanged"})


def _run_facts(name: str, a: Any, tx: str, index: int, failed: dict[tuple[str, int, int], bytes]) -> OnchainRun:
    """A RunExecuted's or RunSkipped's facts (a RunExecuted takes its run's RunFailed reason from
    `failed`): one form for the bulk path and the one-by-one `record_onchain`."""
    wid, run = int(a.workflowId), int(a.runIndex)
    if name == "RunSkipped":
        return OnchainRun(wid, run, index, RunStatus.SKIPPED, skip_reason=SkipReason(a.reason).label)
    return OnchainRun(
        wid,
        run,
        index,
        RunStatus.of(a.success),
        gas_used=int(a.gasUsed),
        gas_price=int(a.gasPrice),
        fee=int(a.fee),
        premium_bps=int(a.premiumBps),
        price=int(a.price) if a.priceSource else None,
        price_source=PriceSource.onchain(a.priceSource),
        revert_reason=failed.pop((tx, wid, run), None),
    )


class _RunBulk:
    """A stretch of a range's run and status events, written in a few statements at `flush`
    instead of ~5 a run (`_apply`): each transaction's runs with `record_batch`, the escrow
    movements with one `record_many`, and the workflows' run and status changes folded in
    order onto their loaded rows (the same replay guard as each event's UPDATE) and written
    with one `write_loaded`. The rows come out as `_apply` event by event gives them; the
    caller flushes before any other event, so the order across kinds holds too."""

    def __init__(self, indexer: EventIndexer, held: dict[int, WorkflowRow]) -> None:
        self.indexer, self.held = indexer, held
        # (tx, block, executor) -> that transaction's run logs, in log order
        self.runs: dict[tuple[str, int, str], list[OnchainRun]] = {}
        self.escrow: list[Movement] = []
        self.changed: dict[int, WorkflowRow] = {}
        self.stale: list[tuple[int, int, str]] = []  # executed runs with orphaned reports to drop

    def _workflow(self, wid: int) -> WorkflowRow | None:
        row = self.held.get(wid)
        if row is None:  # created in this range (after the range's rows were read), or unknown
            ix = self.indexer
            row = ix.store.workflows.get(ix.chain_id, ix.contract, wid)
            if row is not None:
                self.held[wid] = row
        return row

    def add(self, name: str, ev: Any, result: SyncResult, failed: dict[tuple[str, int, int], bytes]) -> None:
        ix = self.indexer
        a, block, index = ev.args, int(ev.blockNumber), int(ev.logIndex)
        tx = "0x" + bytes(ev.transactionHash).hex()
        wid = int(a.workflowId)
        if name == "RunFailed":
            failed[(tx, wid, int(a.runIndex))] = bytes(a.reason)
            return
        row = self._workflow(wid)
        if name == "WorkflowStatusChanged":
            if row is not None and ix.store.workflows.apply_status_loaded(
                row, int(a.status), block, index, int(a.reason)
            ):
                self.changed[wid] = row
        elif name == "RunExecuted":
            run, ts = int(a.runIndex), ix._timestamp(block)
            self.runs.setdefault((tx, block, checksum(a.executor)), []).append(_run_facts(name, a, tx, index, failed))
            if row is not None and ix.store.workflows.apply_run_loaded(
                row, run, bool(a.success), int(a.status), block, ts, index
            ):
                self.changed[wid] = row
            if a.success and ix._stale_reports:
                self.stale.append((wid, run, tx))
            self.escrow.extend(ix._executed_escrow(row, a, tx, block, index))
        else:  # RunSkipped
            self.runs.setdefault((tx, block, checksum(a.executor)), []).append(_run_facts(name, a, tx, index, failed))
        result.touched.add(wid)

    def flush(self) -> None:
        ix = self.indexer
        for (tx, block, executor), runs in self.runs.items():
            ix.store.executions.record_batch(
                chain_id=ix.chain_id,
                contract=ix.contract,
                tx_hash=tx,
                block_number=block,
                included_at=ix._timestamp(block),
                executor=executor,
                onchain=runs,
            )
        for wid, run, tx in self.stale:  # after the runs' rows, as `_apply` drops them
            ix._drop_stale_reports(wid, run, tx)
        ix.store.escrow.record_many(self.escrow)
        ix.store.workflows.write_loaded(self.changed.values())
        self.runs, self.escrow, self.changed, self.stale = {}, [], {}, []


class IndexerStalled(RuntimeError):
    """The indexer keeps finding a reorg it cannot roll back: the node and the store disagree."""


@dataclass
class SyncResult:
    from_block: int
    to_block: int
    events: int = 0
    reorg_depth: int = 0
    touched: set[int] = field(default_factory=set)


def state_from_row(row: WorkflowRow) -> WorkflowState:
    """A stored workflow as the domain's WorkflowState."""
    asset = asset_to_bytes32(row.asset) if row.asset else b"\0" * 32
    spec = WorkflowSpec.from_abi(
        SpecTuple(
            triggerKind=row.trigger_kind,
            comparator=row.comparator,
            startTime=row.start_time,
            endTime=row.end_time,
            interval=row.interval,
            priceUsd=int(row.price_usd),
            asset=asset,
            actionKind=row.action_kind,
            target=row.target,
            token=row.token or ZERO_ADDRESS,
            amount=int(row.amount),
            data=bytes.fromhex((row.data or "0x")[2:]),
            maxRuns=row.max_runs,
            gasLimit=row.gas_limit,
            maxFeePerRun=int(row.max_fee_per_run),
            triggerData=bytes.fromhex((row.trigger_data or "0x")[2:]),
        )
    )
    return WorkflowState(
        int(row.id),
        row.owner,
        Status(row.status),
        spec,
        int(row.run_count),
        int(row.last_run),
        int(row.failures),
        created_block=int(row.created_block or 0),
    )


def states_from_rows(rows: list[WorkflowRow]) -> list[WorkflowState]:
    """The rows as states; one of a trigger kind this version does not know is logged and left
    out (a newer contract's kind must not stop the scheduler, nor pass for another kind)."""
    states = []
    for row in rows:
        try:
            states.append(state_from_row(row))
        except UnknownTriggerKind as exc:
            log.error("indexer.unknown_trigger_kind", workflow_id=int(row.id), error=str(exc))
    return states


def _row_from_state(state: WorkflowState, chain_id: int, **extra: Any) -> dict[str, Any]:
    t = state.spec.to_abi()
    return {
        "id": state.id,
        "chain_id": chain_id,
        "owner": state.owner,
        "status": int(state.status),
        "trigger_kind": t.triggerKind,
        "comparator": t.comparator,
        "start_time": t.startTime,
        "end_time": t.endTime,
        "interval": t.interval,
        "price_usd": t.priceUsd,
        "asset": bytes(t.asset),
        "action_kind": t.actionKind,
        "target": t.target,
        "token": None if t.token == ZERO_ADDRESS else t.token,
        "amount": t.amount,
        "data": "0x" + bytes(t.data).hex(),
        "trigger_data": "0x" + bytes(t.triggerData).hex(),
        "max_runs": t.maxRuns,
        "gas_limit": t.gasLimit,
        "max_fee_per_run": t.maxFeePerRun,
        "run_count": state.run_count,
        "last_run": state.last_run,
        "failures": state.failures,
        **extra,
    }


class EventIndexer:
    """Indexes one Autometa deployment. Not thread-safe: run one per process."""

    def __init__(
        self,
        w3: Web3,
        store: Store,
        address: str,
        start_block: int,
        *,
        confirmations: int | str = 0,
        batch_blocks: int = 2000,
        listeners: Iterable[Listener] = (),
    ) -> None:
        self.w3, self.store = w3, store
        self.core: Contract = autometa(w3, address)
        self.chain_id = int(w3.eth.chain_id)
        self.start_block = start_block
        self.confirmations = confirmations  # blocks behind the head, or a tag: "finalized" / "safe"
        if isinstance(confirmations, str) and not self._tagged_block():
            raise ValueError(
                f"CONFIRMATIONS={confirmations}: this node has no '{confirmations}' block; use a number "
                "of blocks instead (`autometa doctor` shows what the node offers)"
            )
        self.batch_blocks = batch_blocks
        self.listeners = list(listeners)
        # Told the (workflow id, run index) of runs a reorg undid: they are due again, and
        # whoever deduplicates runs (the queue's claims) must let them through once more.
        self.undone_listeners: list[Callable[[list[tuple[int, int]]], None]] = []
        self.contract = Web3.to_checksum_address(self.core.address)  # rows are keyed by it
        self.name = f"indexer:{self.chain_id}:{self.core.address}"
        self._events = {event_abi_to_log_topic(abi): abi["name"] for abi in self.core.abi if abi["type"] == "event"}
        self._decoder = EventDecoder(self.core.abi, _FAST_EVENTS)
        self._timestamps: dict[int, int] = {}
        self._stale_reports: dict[tuple[int, int], set[str]] = {}  # run -> orphaned tx hashes
        self._on_chain: set[str] = set()  # recorded transactions the node confirmed it has
        # a range short enough for a provider's result cap, or for RANGE_LOGS (None: batch_blocks)
        self._dense_span: int | None = FIRST_SPAN if FIRST_SPAN < batch_blocks else None
        self._head_hint: int | None = None  # the head a caller told `sync` (saves asking the node)
        self._quiet = False  # a `sync(notify=False)` is running: listeners are not told
        self.bulk_runs = True  # False: every event applied one by one (`_apply_events`)

    # ------------------------------------------------------------------ progress

    @property
    def indexed_block(self) -> int:
        cp = self.store.checkpoints.get(self.chain_id, self.name)
        return int(cp.block_number) if cp else self.start_block - 1

    def target_block(self) -> int:
        if isinstance(self.confirmations, str):  # what the chain itself calls final (or safe)
            block = self._tagged_block()
            return max(int(block["number"]) if block else self.start_block - 1, self.start_block - 1)
        head = self._head_hint if self._head_hint is not None else int(self.w3.eth.block_number)
        return max(head - self.confirmations, self.start_block - 1)

    def _tagged_block(self) -> Any:
        reply = self.w3.provider.make_request("eth_getBlockByNumber", [self.confirmations, False])  # type: ignore[arg-type]
        result = reply.get("result")
        return {"number": int(result["number"], 16)} if result else None

    def sync(
        self,
        stop: threading.Event | None = None,
        *,
        max_stalls: int = 3,
        head: Mapping[str, Any] | None = None,
        notify: bool = True,
    ) -> list[SyncResult]:
        """Index every range up to the confirmed head; returns what each range did.

        `head`: the header of the chain's newest block (number, hash, parentHash), when the caller
        has it (the scheduler reads it once per block anyway). With CONFIRMATIONS=0 and the index
        one block behind it, that block is read by its hash alone (`follow_head`); otherwise it
        saves asking the node for the head.

        A round that only rolled back (no range read) is a stall; a working rollback lands on a
        canonical block, so the next round moves on. More than `max_stalls` stalls in a row mean
        the rollback does not reach the chain's branch: raise instead of looping for ever.

        `notify=False`: listeners are not told what changed (undone runs still are), for a caller
        that reads every state from the store afterwards anyway (a scheduler's load): telling
        them a backlog's 10,000 workflows meant reading each back and holding its state until
        the end, the peak an idle scheduler then kept as heap it never returned."""
        self._quiet = not notify
        try:
            return self._sync_to(stop, max_stalls, head)
        finally:
            self._quiet = False

    def _sync_to(
        self, stop: threading.Event | None, max_stalls: int, head: Mapping[str, Any] | None
    ) -> list[SyncResult]:
        if head is not None:
            fast = self.follow_head(head)
            if fast is not None:
                return [fast]
        self._head_hint = int(head["number"]) if head is not None else None
        try:
            return self._sync(stop, max_stalls)
        finally:
            self._head_hint = None

    def follow_head(self, head: Mapping[str, Any]) -> SyncResult | None:
        """Index exactly the block `head` (one request: its logs by block hash, EIP-234) when it
        extends the last indexed block: its parent hash is our checkpoint's hash, so no reorg
        happened below it, and logs asked by hash cannot mix two branches. A reorg of `head`
        itself shows at the next block (its parent hash differs), and the full path rolls back.
        None (nothing done) when that does not hold; the caller takes the full path."""
        if self.confirmations != 0:
            return None
        cp = self.store.checkpoints.get(self.chain_id, self.name)
        number = int(head["number"])
        if cp is None or cp.block_hash is None or int(cp.block_number) != number - 1:
            return None
        if HexBytes(head["parentHash"]) != HexBytes(cp.block_hash):
            return None
        block_hash = HexBytes(head["hash"])
        reply = self.w3.provider.make_request(
            "eth_getLogs",  # type: ignore[arg-type]
            [{"address": self.core.address, "blockHash": "0x" + bytes(block_hash).hex()}],
        )
        if reply.get("error") is not None or not isinstance(reply.get("result"), list):
            raise ValueError(f"eth_getLogs by block hash failed: {reply.get('error')}")
        logs = [_formatted(raw) for raw in reply["result"]]
        if any(HexBytes(raw["blockHash"]) != block_hash for raw in logs):
            return None  # a node answering for another block: read the range the full way
        return self._ingest(number, number, logs, {number: bytes(block_hash)}, depth=0)

    def _sync(self, stop: threading.Event | None, max_stalls: int) -> list[SyncResult]:
        results: list[SyncResult] = []
        stalls = 0
        while stop is None or not stop.is_set():
            result = self.sync_once()
            if result is None:
                break
            results.append(result)
            stalls = stalls + 1 if result.to_block < result.from_block else 0
            if stalls > max_stalls:
                raise IndexerStalled(
                    f"{self.name}: a reorg was detected {stalls} times in a row at block {self.indexed_block} "
                    "without the rollback reaching the chain's branch; check the RPC endpoint (is it the same "
                    "chain?) and the store's checkpoints"
                )
        return results

    def sync_once(self) -> SyncResult | None:
        """Check for a reorg, then index the next range. None when already at the target."""
        depth = self._handle_reorg()
        start = self.indexed_block + 1
        end = min(self.target_block(), start + min(self.batch_blocks, self._dense_span or self.batch_blocks) - 1)
        if end < start:
            if depth:
                return SyncResult(start, start - 1, reorg_depth=depth)
            return None
        # The range's recent block hashes before and after reading its logs, and each log's own
        # block hash: a reorg landing while we read (logs from the old branch, hashes from the
        # new) would otherwise be checkpointed as canonical and never detected, its orphaned
        # events (say, runs the reorg undid) kept in the store for good.
        while True:
            window = range(max(start, end - REORG_WINDOW + 1), end + 1)
            before = self._hashes(window)
            try:
                logs = self.w3.eth.get_logs({"address": self.core.address, "fromBlock": start, "toBlock": end})
                if self._dense_span is not None:
                    grown = self._dense_span * 2
                    self._dense_span = grown if grown < self.batch_blocks else None
                break
            except Exception as exc:
                refusal = range_refused(exc)
                if end == start or refusal is None:
                    raise
                # A provider's cap per request: halve the range. A cap on blocks holds for every
                # later range too (remembered); a cap on results only for this busy stretch.
                end = start + (end - start) // 2
                if refusal == "blocks":
                    self.batch_blocks = end - start + 1
                else:  # busy blocks: the next ranges start this small and grow back
                    self._dense_span = end - start + 1
                log.info(
                    "indexer.range_split",
                    blocks=f"{start}-{end}",
                    cap=refusal,
                    batch_blocks=self.batch_blocks,
                    reason=str(exc)[:200],
                )
        if len(logs) > RANGE_LOGS and end > start:  # a busy stretch: the next ranges sized for RANGE_LOGS
            self._dense_span = max(1, (end - start + 1) * RANGE_LOGS // len(logs))
        after = self._hashes(sorted(set(window) | {int(raw["blockNumber"]) for raw in logs}))
        if any(after[n] != h for n, h in before.items()) or any(
            bytes(raw["blockHash"]) != after[int(raw["blockNumber"])] for raw in logs
        ):
            log.warning("the chain changed while a range was read: read again", blocks=f"{start}-{end}")
            return None
        return self._ingest(start, end, logs, {n: after[n] for n in window}, depth)

    def _ingest(self, start: int, end: int, logs: Any, hashes: dict[int, bytes], depth: int) -> SyncResult:
        """Apply the logs of blocks `start`..`end` (read from the canonical chain, `hashes` its
        recent block hashes, `end`'s included) and checkpoint `end`."""
        result = SyncResult(start, end, reorg_depth=depth)
        failed_reasons: dict[tuple[str, int, int], bytes] = {}
        # Runs' and status events decoded up front (small; the runs' locks are taken first), the
        # rest as each is applied: a backlog's 10,000 creations, each with its decoded spec, were
        # otherwise all alive at once, a peak the process kept as heap after catching up.
        events = [
            (name, self._decode(name, raw) if name in _FAST_EVENTS else None, raw)
            for raw in sorted(logs, key=lambda item: (item["blockNumber"], item["logIndex"]))
            if (name := self._events.get(bytes(raw["topics"][0])) if raw["topics"] else None) is not None
        ]
        runs = [
            (self.chain_id, int(ev.args.workflowId), int(ev.args.runIndex), ev.transactionHash)
            for name, ev, _ in events
            if ev is not None and name in ("RunExecuted", "RunSkipped")
        ]
        # The range in one transaction (all or nothing, checkpoint included), its runs' locks
        # taken up front in the order an executor's receipt takes them.
        with self.store.executions.batch(runs):
            # The range's workflows read once and held: the session's identity map keeps only
            # objects someone references, and every run event looks its workflow up 2-3 times.
            held = self.store.workflows.get_many(
                self.chain_id,
                self.contract,
                {int(ev.args.workflowId) for _, ev, _ in events if ev is not None and hasattr(ev.args, "workflowId")},
            )
            self._apply_events(events, result, failed_reasons, {int(w.id): w for w in held})
            self._forget_orphaned(start, end, {"0x" + bytes(raw["transactionHash"]).hex() for raw in logs})
            self.store.checkpoints.remember_blocks(self.chain_id, sorted(hashes.items()))
            self.store.checkpoints.set(self.chain_id, self.name, end, hashes[end])
            self.store.checkpoints.prune(self.chain_id, end - 4 * REORG_WINDOW)
            del held
        if result.events or depth:
            log.info("indexed", blocks=f"{start}-{end}", events=result.events, reorg_depth=depth)
        self._notify(result.touched)
        return result

    def _apply_events(
        self,
        events: list[tuple[str, Any, Any]],
        result: SyncResult,
        failed: dict[tuple[str, int, int], bytes],
        held: dict[int, WorkflowRow],
    ) -> None:
        """Apply a range's events ((name, decoded or None, raw) in log order) inside its store
        transaction. Run and status events go through `_RunBulk` (a few statements for the
        whole stretch between other events) unless the chain has notification subscriptions:
        their hooks read the ledger and the workflow as each run is recorded, so then every
        event is applied one by one, exactly in order."""
        bulk = None
        if (
            self.bulk_runs
            and any(name in _BULK_EVENTS for name, _, _ in events)  # an idle block asks nothing
            and not self.store.notifications.any_active(self.chain_id)
        ):
            bulk = _RunBulk(self, held)
        for name, event, raw in events:
            ev = event if event is not None else self._decode(name, raw)
            if bulk is not None and name in _BULK_EVENTS:
                bulk.add(name, ev, result, failed)
            else:
                if bulk is not None and name != "RunFailed":  # RunFailed only notes a reason
                    bulk.flush()  # what came before this event is written before it
                self._apply(name, ev, result, failed)
            result.events += 1
        if bulk is not None:
            bulk.flush()

    # ------------------------------------------------------------------ reorgs

    def _handle_reorg(self) -> int:
        cp = self.store.checkpoints.get(self.chain_id, self.name)
        if cp is None or cp.block_hash is None:
            return 0
        if self._canonical(int(cp.block_number), cp.block_hash):
            return 0
        ancestor = self.start_block - 1
        for number, known in self.store.checkpoints.recent_blocks(self.chain_id, limit=4 * REORG_WINDOW):
            if number < int(cp.block_number) and self._canonical(number, known):
                ancestor = number
                break
        depth = int(cp.block_number) - ancestor
        log.warning("reorg detected: rolling back", checkpoint=int(cp.block_number), ancestor=ancestor, depth=depth)
        self.rollback_to(ancestor)
        return depth

    def _canonical(self, number: int, known: str | bytes) -> bool:
        try:
            actual = bytes(self.w3.eth.get_block(number)["hash"])
        except Exception:  # block gone (chain shorter than our checkpoint): not canonical
            return False
        return actual == (HexBytes(known) if isinstance(known, str) else bytes(known))

    def rollback_to(self, ancestor: int) -> None:
        """Forget everything indexed after `ancestor`; restore touched workflows from the
        contract's view at `ancestor`, so replaying the new branch's events lands exactly."""
        first = ancestor + 1
        touched = self.store.workflows.changed_since(self.chain_id, self.contract, first)
        # Workflows created on the orphaned branch no longer exist: listeners (the scheduler's
        # trigger index) must drop them too, or they would fire runs of workflows the chain
        # does not have (and, ids being sequential, the ids come back for other workflows).
        gone = []
        for wid in touched:
            row = self.store.workflows.get(self.chain_id, self.contract, wid)
            if row is not None and int(row.created_block) >= first:
                gone.append(dataclasses.replace(state_from_row(row), status=Status.NONE))
        self._on_chain.clear()  # what a reorg orphaned may be among them
        self._remember_reset_reports(first)
        self.store.executions.delete_from_block(self.chain_id, self.contract, first)
        self.store.escrow.delete_from_block(self.chain_id, self.contract, first)
        self.store.workflows.delete_from_block(self.chain_id, self.contract, first)
        self.store.checkpoints.forget_from(self.chain_id, first)
        undone: list[tuple[int, int]] = []
        for wid in touched:
            row = self.store.workflows.get(self.chain_id, self.contract, wid)
            if row is None:
                continue  # created on the orphaned branch: deleted above
            view = self.core.functions.getWorkflow(wid).call(block_identifier=max(ancestor, 0))
            state = WorkflowState.from_view(view)
            undone.extend((wid, run) for run in range(state.run_count, int(row.run_count)))
            self.store.workflows.upsert(
                _row_from_state(
                    state,
                    self.chain_id,
                    contract=self.contract,
                    created_block=row.created_block,
                    created_tx=row.created_tx,
                    updated_block=ancestor,
                    updated_log_index=2**31 - 1,
                )
            )
        ancestor_hash = bytes(self.w3.eth.get_block(ancestor)["hash"]) if ancestor >= 0 else None
        self.store.checkpoints.set(self.chain_id, self.name, ancestor, ancestor_hash)
        self._tell(gone)
        if undone:
            log.warning("reorg undid runs", runs=len(undone))
            for hear in self.undone_listeners:
                try:
                    hear(undone)
                except Exception:
                    log.exception("indexer undone-runs listener failed")
        self._notify(set(touched))

    def _forget_orphaned(self, start: int, end: int, canonical: set[str]) -> None:
        """Drop what executors recorded from transactions a reorg took off the chain. In the
        range just read, a recorded transaction without a log there is orphaned. Below it (within
        the reorg window) an executor may have written its receipt late, after a rollback had
        passed; those transactions are checked once each with the node (no receipt: orphaned)."""
        executions = self.store.executions
        recorded = executions.transactions_in(self.chain_id, self.contract, start, end)
        orphaned = recorded - canonical
        # Only recorded transactions are ever looked up here: a backlog's other transactions
        # (10,000 creations) would sit in this cache for nothing, ~150 B each.
        self._on_chain.update(recorded & canonical)
        for tx in (
            executions.transactions_in(self.chain_id, self.contract, max(start - REORG_WINDOW, 0), start - 1)
            - self._on_chain
        ):
            try:
                self.w3.eth.get_transaction_receipt(tx)  # type: ignore[arg-type]
                self._on_chain.add(tx)
            except TransactionNotFound:
                orphaned.add(tx)
        if len(self._on_chain) > 50_000:
            self._on_chain.clear()  # a bounded cache: at worst, recent ones are asked again
        for wid, run, tx in executions.forget_transactions(self.chain_id, self.contract, orphaned):
            self._stale_reports.setdefault((wid, run), set()).add(tx)
        if orphaned:
            log.warning("forgot rows of orphaned transactions", txs=len(orphaned))

    def _remember_reset_reports(self, first: int) -> None:
        """The executor-reported rows the rollback sends back to 'pending' (their transaction is
        orphaned): once the run is executed by another transaction, such a row can never complete
        and would show the run as pending forever, so it is dropped then (`_drop_stale_reports`)."""
        with self.store.session() as session:
            rows = session.execute(
                select(Execution.workflow_id, Execution.run_index, Execution.tx_hash).where(
                    Execution.chain_id == self.chain_id,
                    Execution.contract == self.contract,
                    Execution.block_number >= first,
                    Execution.reported_at.is_not(None),
                )
            ).all()
        for wid, run, tx in rows:
            self._stale_reports.setdefault((int(wid), int(run)), set()).add(str(tx))

    def _drop_stale_reports(self, wid: int, run: int, tx: str) -> None:
        stale = self._stale_reports.pop((wid, run), set()) - {tx}
        if not stale:
            return
        self.store.executions.drop_pending(self.chain_id, self.contract, wid, run, stale)
        log.info("dropped reports of orphaned transactions", workflow_id=wid, run_index=run, txs=len(stale))

    def _hashes(self, numbers: Iterable[int]) -> dict[int, bytes]:
        return {n: bytes(self.w3.eth.get_block(n)["hash"]) for n in numbers}

    # ------------------------------------------------------------------ reconcile

    def reconcile(self) -> list[int]:
        """Compare every stored workflow with the contract at the indexed block and repair
        differences (there should be none; a non-empty result is logged as a warning)."""
        block = self.indexed_block
        if block < self.start_block:
            return []
        count = int(self.core.functions.workflowCount().call(block_identifier=block))
        fixed = []
        for wid in range(1, count + 1):
            chain_state = WorkflowState.from_view(self.core.functions.getWorkflow(wid).call(block_identifier=block))
            row = self.store.workflows.get(self.chain_id, self.contract, wid)
            if row is not None and state_from_row(row) == chain_state:
                continue
            fixed.append(wid)
            extra: dict[str, Any] = {"updated_block": block, "updated_log_index": 2**31 - 1}
            if row is not None:
                extra |= {"created_block": row.created_block, "created_tx": row.created_tx}
            else:
                extra["created_block"] = block
            self.store.workflows.upsert(_row_from_state(chain_state, self.chain_id, contract=self.contract, **extra))
        if fixed:
            log.warning("reconciled workflows that differed from the chain", workflows=fixed, block=block)
            self._notify(set(fixed))
        return fixed

    # ------------------------------------------------------------------ events

    def _timestamp(self, block: int) -> int:
        if block not in self._timestamps:
            if len(self._timestamps) > 4096:
                self._timestamps.clear()
            self._timestamps[block] = int(self.w3.eth.get_block(block)["timestamp"])
        return self._timestamps[block]

    def _decode(self, name: str, raw: Any) -> Any:
        """A log as `_apply` reads it (`args`, `blockNumber`, `logIndex`, `transactionHash`): the
        runs' and status events by precomputed topic and eth-abi (`chain.events`; web3's
        `process_log` was a sixth of the scheduler's CPU in a burst), the rest through web3."""
        if name not in _FAST_EVENTS:
            return self.core.events[name]().process_log(raw)
        decoded = self._decoder.decode(raw)
        if decoded is None:
            return self.core.events[name]().process_log(raw)
        return _Log(
            SimpleNamespace(**decoded.args), int(raw["blockNumber"]), decoded.log_index, bytes(raw["transactionHash"])
        )

    def _apply(self, name: str, ev: Any, result: SyncResult, failed: dict[tuple[str, int, int], bytes]) -> None:
        a, block, index = ev.args, int(ev.blockNumber), int(ev.logIndex)
        tx = "0x" + bytes(ev.transactionHash).hex()
        chain = self.chain_id
        if name == "WorkflowCreated":
            spec = WorkflowSpec.from_abi(a.spec)
            state = WorkflowState(int(a.workflowId), a.owner, Status.ACTIVE, spec)
            self.store.workflows.upsert(
                _row_from_state(
                    state,
                    chain,
                    contract=self.contract,
                    created_block=block,
                    created_tx=tx,
                    updated_block=block,
                    updated_log_index=index,
                )
            )
            result.touched.add(state.id)
        elif name == "WorkflowStatusChanged":
            self.store.workflows.apply_status(
                chain, self.contract, int(a.workflowId), int(a.status), block, index, int(a.reason)
            )
            result.touched.add(int(a.workflowId))
        elif name == "RunFailed":
            failed[(tx, int(a.workflowId), int(a.runIndex))] = bytes(a.reason)
        elif name == "RunExecuted":
            wid, run = int(a.workflowId), int(a.runIndex)
            ts = self._timestamp(block)
            self.store.executions.record_onchain(
                chain_id=chain,
                contract=self.contract,
                tx_hash=tx,
                block_number=block,
                included_at=ts,
                executor=a.executor,
                **asdict(_run_facts(name, a, tx, index, failed)),
            )
            self.store.workflows.apply_run(
                chain, self.contract, wid, run, bool(a.success), int(a.status), block, ts, index
            )
            if a.success and self._stale_reports:
                self._drop_stale_reports(wid, run, tx)
            row = self.store.workflows.get(self.chain_id, self.contract, wid)
            self.store.escrow.record_many(self._executed_escrow(row, a, tx, block, index))
            result.touched.add(wid)
        elif name == "RunSkipped":
            self.store.executions.record_onchain(
                chain_id=chain,
                contract=self.contract,
                tx_hash=tx,
                block_number=block,
                included_at=self._timestamp(block),
                executor=a.executor,
                **asdict(_run_facts(name, a, tx, index, failed)),
            )
            result.touched.add(int(a.workflowId))
        elif name == "Deposited":
            self.store.escrow.record(
                chain_id=chain,
                contract=self.contract,
                block_number=block,
                tx_hash=tx,
                log_index=index,
                kind="deposit",
                account=a.user,
                counterparty=getattr(a, "from"),
                amount=int(a.amount),
            )
        elif name == "Withdrawn":
            self.store.escrow.record(
                chain_id=chain,
                contract=self.contract,
                block_number=block,
                tx_hash=tx,
                log_index=index,
                kind="withdraw",
                account=a.user,
                counterparty=a.to,
                amount=int(a.amount),
            )
        elif name == "RelayerReimbursed":
            self.store.escrow.record(
                chain_id=chain,
                contract=self.contract,
                block_number=block,
                tx_hash=tx,
                log_index=index,
                kind="reimburse",
                account=a.owner,
                counterparty=a.relayer,
                amount=int(a.amount),
            )

    def _executed_escrow(self, row: WorkflowRow | None, a: Any, tx: str, block: int, index: int) -> list[Movement]:
        """A RunExecuted's escrow movements: its fee, and a successful run's native payout."""
        if row is None:
            return []

        def move(kind: str, counterparty: str, amount: int) -> Movement:
            return Movement(
                chain_id=self.chain_id,
                contract=self.contract,
                block_number=block,
                tx_hash=tx,
                log_index=index,
                kind=kind,
                account=row.owner,
                amount=amount,
                counterparty=counterparty,
                workflow_id=int(a.workflowId),
            )

        moves = []
        if int(a.fee):
            moves.append(move("fee", a.executor, int(a.fee)))
        if a.success and row.action_kind != ActionType.ERC20_TRANSFER and int(row.amount):
            moves.append(move("payout", row.target, int(row.amount)))
        return moves

    def _notify(self, ids: set[int]) -> None:
        if not ids or not self.listeners or self._quiet:
            return
        self._tell(states_from_rows(self.store.workflows.get_many(self.chain_id, self.contract, ids)))

    def _tell(self, states: list[WorkflowState]) -> None:
        if not states or self._quiet:
            return
        for listener in self.listeners:
            try:
                listener(states)
            except Exception:
                log.exception("indexer listener failed")

    def load_states(self) -> list[WorkflowState]:
        """Every indexed workflow of this chain that may still run (for a scheduler's start)."""
        return states_from_rows(self.store.workflows.list_active(self.chain_id, self.contract))

    def load_state_pages(self, page: int = 250) -> Iterator[list[WorkflowState]]:
        """`load_states` a page at a time, for a start that never holds them all at once."""
        for rows in self.store.workflows.active_pages(self.chain_id, self.contract, page):
            yield states_from_rows(rows)
