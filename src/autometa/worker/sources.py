"""Where the scheduler learns workflows from, without polling per user.

* `IndexerWorkflowSource`: the event indexer (`chain/indexer.py`) writes the store and tells
  its listeners which workflows changed; the scheduler applies exactly those.
* `ChainWorkflowSource`: no store: the initial set from `workflowCount` + `getWorkflow`, then
  per block only the workflows named by the contract's events in that block.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import structlog
from eth_utils import event_abi_to_log_topic
from web3 import AsyncWeb3

from autometa.chain.contracts import autometa_async
from autometa.chain.indexer import EventIndexer
from autometa.domain.state import WorkflowState
from autometa.domain.triggers import UnknownTriggerKind
from autometa.worker.queue import Job, JobQueue

log = structlog.get_logger("autometa.worker.sources")

# Events whose first indexed topic is a workflow id and that may change its state.
_WORKFLOW_EVENTS = ("WorkflowCreated", "WorkflowStatusChanged", "RunExecuted", "RunSkipped", "RunFailed")


class WorkflowSource(Protocol):
    async def initial(self) -> list[WorkflowState]:
        """Every workflow that may still run (a scheduler's start or takeover)."""
        ...

    async def changes(self, block: int, header: Mapping[str, Any] | None = None) -> list[WorkflowState]:
        """Workflows whose state changed up to `block` since the last call (`header`: that
        block's, when the caller has it: number, hash, parentHash)."""
        ...


class ChainWorkflowSource:
    def __init__(self, w3: AsyncWeb3[Any], address: str, batch: int = 200) -> None:
        self.w3 = w3
        self.core = autometa_async(w3, address)
        self.address = str(self.core.address)  # the deployment (the scheduler reads trigger words there)
        self.batch = batch
        self._topics = [
            "0x" + event_abi_to_log_topic(abi).hex()
            for abi in self.core.abi
            if abi["type"] == "event" and abi["name"] in _WORKFLOW_EVENTS
        ]
        self._next_block: int | None = None

    async def _read(self, ids: list[int]) -> list[WorkflowState]:
        views = await asyncio.gather(*(self.core.functions.getWorkflow(wid).call() for wid in ids))
        states = []
        for wid, view in zip(ids, views, strict=True):
            try:
                states.append(WorkflowState.from_view(view))
            except UnknownTriggerKind as exc:  # a newer contract's kind: never read as another
                log.error("workflows.unknown_trigger_kind", workflow_id=wid, error=str(exc))
        return states

    async def initial(self) -> list[WorkflowState]:
        block = int(await self.w3.eth.block_number)
        count = int(await self.core.functions.workflowCount().call(block_identifier=block))
        states: list[WorkflowState] = []
        for start in range(1, count + 1, self.batch):
            chunk = await self._read(list(range(start, min(start + self.batch, count + 1))))
            states.extend(s for s in chunk if s.is_live)
            log.info("workflows.loading", loaded=min(start + self.batch - 1, count), total=count)
        self._next_block = block + 1
        return states

    async def changes(self, block: int, header: Mapping[str, Any] | None = None) -> list[WorkflowState]:
        if self._next_block is None:
            self._next_block = block
        if block < self._next_block:
            return []
        logs = await self.w3.eth.get_logs(
            {"address": self.core.address, "fromBlock": self._next_block, "toBlock": block, "topics": [self._topics]}  # type: ignore[typeddict-item]
        )
        self._next_block = block + 1
        ids = sorted({int.from_bytes(bytes(item["topics"][1]), "big") for item in logs if len(item["topics"]) > 1})
        return await self._read(ids) if ids else []


class IndexerWorkflowSource:
    """Runs the (synchronous) indexer in a thread each block and collects what it reports.

    queue: when given, the claims of runs a reorg undid are released before the changes are
    handed on, so the scheduler can queue those runs again at once (a claim outlives its
    acknowledged job by design: it stops duplicate enqueues for its whole TTL)."""

    def __init__(self, indexer: EventIndexer, queue: JobQueue | None = None) -> None:
        self.indexer = indexer
        self.address = str(indexer.core.address)  # the deployment (the scheduler reads trigger words there)
        self.queue = queue
        self._lock = threading.Lock()
        self._changed: dict[int, WorkflowState] = {}
        self._undone: list[tuple[int, int]] = []
        indexer.listeners.append(self._heard)
        indexer.undone_listeners.append(self._heard_undone)

    def _heard_undone(self, runs: list[tuple[int, int]]) -> None:
        with self._lock:
            self._undone.extend(runs)

    async def _release_undone(self) -> None:
        with self._lock:
            runs, self._undone = self._undone, []
        if self.queue is None:
            return
        for wid, run in runs:
            await self.queue.release(Job(wid, run, 0, 0.0))
        if runs:
            log.warning("workflows.runs_undone_by_reorg", runs=len(runs))

    def _heard(self, states: list[WorkflowState]) -> None:
        with self._lock:
            for state in states:
                self._changed[state.id] = state

    def _take(self) -> list[WorkflowState]:
        with self._lock:
            changed, self._changed = list(self._changed.values()), {}
        return changed

    async def _catch_up(self) -> None:
        """Index up to the head before a load, which reads every state from the store: what
        changed on the way is not heard (nor held), and what was heard before is superseded."""
        await asyncio.to_thread(functools.partial(self.indexer.sync, notify=False))
        await self._release_undone()
        self._take()

    async def initial(self) -> list[WorkflowState]:
        await self._catch_up()
        return await asyncio.to_thread(self.indexer.load_states)

    async def initial_pages(self) -> AsyncIterator[list[WorkflowState]]:
        """`initial` a page at a time: the scheduler indexes each page and drops it."""
        await self._catch_up()
        pages = self.indexer.load_state_pages()
        while (page := await asyncio.to_thread(next, pages, None)) is not None:
            yield page

    async def changes(self, block: int, header: Mapping[str, Any] | None = None) -> list[WorkflowState]:
        await asyncio.to_thread(functools.partial(self.indexer.sync, head=header))
        await self._release_undone()
        return self._take()
