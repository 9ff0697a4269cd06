"""A range's run events are written in bulk (`_RunBulk`): a bounded number of statements for a
block of N runs, and the same rows as applying the events one by one (`bulk_runs = False`)."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import event, select

from autometa.chain.indexer import EventIndexer, SyncResult, _Log, _row_from_state
from autometa.domain.kinds import SkipReason, Status
from autometa.domain.state import WorkflowState
from autometa.domain.workflow import WorkflowSpec
from autometa.store import Store
from autometa.store.models import EscrowEvent, Execution
from autometa.store.models import Workflow as WorkflowRow

N = 200
BLOCK, TS = 50, 1_700_000_000
EXECUTOR = "0x" + "ee" * 20
OWNERS = ["0x" + "0a" * 20, "0x" + "0b" * 20]
TOKEN = "0x" + "70" * 20
# BEGIN, the locks, the outbox's subscription read, the created workflow's read, per flush (two
# here: a deposit in the middle) each transaction's SELECT + INSERT + UPDATE, the escrow and
# workflow executemanys. One by one it is ~5 statements a run.
MAX_STATEMENTS = 40


def spec(amount: int = 10**12) -> WorkflowSpec:
    return WorkflowSpec.model_validate(
        {
            "trigger_type": 2,
            "trigger_data": {"token": "ethereum", "comparator": 0, "price_usd": 3200},
            "action_type": 0,
            "action_data": {"to": "0x" + "cc" * 20, "amount_wei": amount},
            "max_runs": 3,
        }
    )


def tx(n: int) -> bytes:
    return bytes([n]) * 32


class Block:
    """Synthetic decoded logs of one block, in log order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any, Any]] = []

    def add(self, name: str, txn: int, **args: Any) -> None:
        log = _Log(SimpleNamespace(**args), BLOCK, len(self.events), tx(txn))
        self.events.append((name, log, None))

    def executed(self, txn: int, wid: int, run: int, success: bool, *, status: int = 1, **kw: Any) -> None:
        args = {"gasUsed": 50_000 + wid, "gasPrice": 10**9, "fee": (50_000 + wid) * 10**9, "premiumBps": 100}
        args |= {"price": 3_000 * 10**8, "priceSource": 1} if wid % 2 else {"price": 0, "priceSource": 0}
        args |= kw
        if not success:
            self.add("RunFailed", txn, workflowId=wid, runIndex=run, reason=b"\x08\xc3\x79\xa0" + bytes([wid % 256]))
        args |= {"workflowId": wid, "runIndex": run, "executor": EXECUTOR, "success": success, "status": status}
        self.add("RunExecuted", txn, **args)

    @property
    def runs(self) -> list[tuple[int, int, int, bytes]]:
        return [
            (0, int(ev.args.workflowId), int(ev.args.runIndex), ev.transactionHash)
            for name, ev, _ in self.events
            if name in ("RunExecuted", "RunSkipped")
        ]


def burst() -> Block:
    """N runs in four transactions: failures, skips, ERC-20 workflows, a workflow created in the
    block and run in it, status changes after (and before) a run, a deposit in the middle, a
    workflow run twice (a failure, then a success)."""
    b = Block()
    b.add("WorkflowCreated", 1, workflowId=N + 1, owner=OWNERS[0], relayer="0x" + "00" * 20, spec=spec().to_abi())
    b.add("WorkflowStatusChanged", 1, workflowId=2, status=int(Status.PAUSED), reason=0)
    for i in range(N):
        wid, txn = i + 1, 2 + i * 4 // N
        if i == N // 2:
            b.add("Deposited", txn, user=OWNERS[1], amount=10**18, **{"from": OWNERS[1]})
        if i % 5 == 4 or wid == 2:
            b.add("RunSkipped", txn, workflowId=wid, runIndex=0, executor=EXECUTOR, reason=int(SkipReason.NOT_DUE))
        else:
            b.executed(txn, wid, 0, i % 7 != 3, status=3 if wid == 1 else 1)
        if wid == 1:
            b.add("WorkflowStatusChanged", txn, workflowId=1, status=3, reason=3)
    b.executed(5, N + 1, 0, True)
    b.executed(5, 4, 0, True)  # workflow 4 failed above (i=3): a success now clears its streak
    b.add("WorkflowStatusChanged", 5, workflowId=4, status=int(Status.PAUSED), reason=0)
    return b


def seed(store: Store, chain: int, contract: str) -> None:
    for wid in range(1, N + 1):
        row = _row_from_state(
            WorkflowState(wid, OWNERS[wid % 2], Status.ACTIVE, spec()),
            chain,
            contract=contract,
            created_block=10,
            created_tx="0x" + "99" * 32,
            updated_block=10,
            updated_log_index=wid,
            failures=1 if wid % 3 == 0 else 0,
        )
        if wid % 4 == 0:  # an ERC-20 transfer: no payout from escrow
            row |= {"action_kind": 1, "token": TOKEN}
        store.workflows.upsert(row)
    # the executor recorded a few runs of the second transaction first (pending rows)
    for wid in range(N // 4 + 1, N // 4 + 6):
        store.executions.record_offchain(
            chain_id=chain,
            contract=contract,
            workflow_id=wid,
            run_index=0,
            tx_hash=tx(3),
            triggered_at=TS - 10,
            executor=EXECUTOR,
        )


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as s:
        yield s


def make_indexer(dev_chain: Any, store: Store, chain: int, *, bulk: bool) -> EventIndexer:
    dep = dev_chain.deployment
    indexer = EventIndexer(dev_chain.w3, store, dep.address, dep.block)
    indexer.chain_id, indexer.bulk_runs = chain, bulk
    indexer._timestamps[BLOCK] = TS
    seed(store, chain, indexer.contract)
    return indexer


def apply(indexer: EventIndexer, block: Block) -> tuple[SyncResult, list[str]]:
    """The block's events as `_ingest` applies them (one transaction, its runs' locks first)."""
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    result = SyncResult(BLOCK, BLOCK)
    runs = [(indexer.chain_id, w, r, t) for _, w, r, t in block.runs]
    store = indexer.store
    event.listen(store.engine, "before_cursor_execute", count)
    try:
        with store.executions.batch(runs):
            ids = {int(ev.args.workflowId) for _, ev, _ in block.events if hasattr(ev.args, "workflowId")}
            held = {int(w.id): w for w in store.workflows.get_many(indexer.chain_id, indexer.contract, ids)}
            indexer._apply_events(block.events, result, {}, held)
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    return result, seen


def snapshot(store: Store, chain: int) -> dict[str, list[dict[str, Any]]]:
    """The chain's rows, without what differs by chain or by when they were written."""

    def rows(model: Any, order: list[Any], skip: set[str]) -> list[dict[str, Any]]:
        got = session.scalars(select(model).where(model.chain_id == chain).order_by(*order)).all()
        return [{c: getattr(r, c) for c in model.__table__.columns.keys() if c not in skip} for r in got]

    with store.session() as session:
        return {
            "executions": rows(
                Execution,
                [Execution.tx_hash, Execution.log_index, Execution.workflow_id],
                {"id", "chain_id", "created_at", "reported_at"},
            ),
            "escrow": rows(EscrowEvent, [EscrowEvent.log_index, EscrowEvent.kind], {"id", "chain_id", "created_at"}),
            "workflows": rows(WorkflowRow, [WorkflowRow.id], {"chain_id"}),
        }


def test_a_block_of_runs_is_indexed_in_bounded_statements_as_one_by_one_would(dev_chain, store: Store) -> None:  # type: ignore[no-untyped-def]
    block = burst()
    bulk = make_indexer(dev_chain, store, 7001, bulk=True)
    single = make_indexer(dev_chain, store, 7002, bulk=False)

    result, seen = apply(bulk, block)
    assert len(seen) <= MAX_STATEMENTS, f"{len(seen)} statements for {N} runs"
    one_by_one, seen_single = apply(single, block)
    assert len(seen_single) > 3 * N  # what the bounded count is measured against
    assert result.touched == one_by_one.touched and result.touched == set(range(1, N + 2))

    expected = snapshot(store, 7002)
    assert snapshot(store, 7001) == expected
    executions, escrow, workflows = expected["executions"], expected["escrow"], expected["workflows"]
    assert len(executions) == N + 2 and sum(r["status"] == "skipped" for r in executions) == N // 5 + 1
    assert all(r["revert_reason"] for r in executions if r["status"] == "failed")
    assert sum(r["latency_s"] is not None for r in executions) == 5  # the executor's pending rows, completed
    assert {r["kind"] for r in escrow} == {"fee", "payout", "deposit"}
    by_id = {r["id"]: r for r in workflows}
    assert by_id[1]["status"] == 3 and by_id[1]["run_count"] == 1  # completed after its run
    assert by_id[2]["status"] == int(Status.PAUSED) and by_id[2]["run_count"] == 0
    assert by_id[4]["failures"] == 0 and by_id[4]["run_count"] == 1 and by_id[4]["status"] == int(Status.PAUSED)
    assert by_id[N + 1]["run_count"] == 1 and by_id[N + 1]["last_run"] == TS  # created and run in the block
    assert by_id[6]["failures"] == 0 and by_id[6]["run_count"] == 1  # a streak of 1, cleared

    # indexed again (a crash before the checkpoint): the same rows, still few statements
    _, seen = apply(bulk, block)
    apply(single, block)
    assert len(seen) <= MAX_STATEMENTS
    assert snapshot(store, 7001) == snapshot(store, 7002) == expected
