"""The indexer keeps the store equal to the chain: through runs, escrow moves and reorgs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from web3.logs import DISCARD

from autometa.chain import indexer as indexer_module
from autometa.chain.accounts import dev_account, dev_role
from autometa.chain.contracts import autometa
from autometa.chain.deploy import set_dev_price, transact
from autometa.chain.indexer import EventIndexer, state_from_row
from autometa.chain.web3 import connect
from autometa.domain.kinds import Status
from autometa.domain.state import WorkflowState
from autometa.domain.workflow import WorkflowSpec
from autometa.store import Store
from tests.support.provider_proxy import PublicProviderProxy
from tests.support.rpc_proxy import RpcProxy

RECIPIENT = dev_role("recipient").address


def seed_spec(amount: int = 10**17) -> WorkflowSpec:
    return WorkflowSpec.model_validate(
        {
            "trigger_type": 2,
            "trigger_data": {"token": "ethereum", "comparator": 0, "price_usd": 3200},
            "action_type": 0,
            "action_data": {"to": RECIPIENT, "amount_wei": amount},
            "max_runs": 3,
        }
    )


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as s:
        yield s


@pytest.fixture
def indexer(dev_chain, store: Store) -> EventIndexer:  # type: ignore[no-untyped-def]
    dep = dev_chain.deployment
    return EventIndexer(dev_chain.w3, store, dep.address, dep.block, batch_blocks=5)


def create(chain, owner, spec: WorkflowSpec) -> int:  # type: ignore[no-untyped-def]
    core = autometa(chain.w3, chain.deployment.address)
    receipt = transact(chain.w3, owner, core.functions.createWorkflow(spec.to_abi()))
    (event,) = core.events.WorkflowCreated().process_receipt(receipt, errors=DISCARD)
    return int(event.args.workflowId)


def execute(chain, wid: int, run: int) -> None:  # type: ignore[no-untyped-def]
    core = autometa(chain.w3, chain.deployment.address)
    transact(chain.w3, dev_role("executor"), core.functions.execute(wid, run, 0))


def due_workflow(chain, indexer: EventIndexer):  # type: ignore[no-untyped-def]
    """An owner with escrow and one price workflow whose condition holds ($3100 < $3200), indexed."""
    w3, core = chain.w3, autometa(chain.w3, chain.deployment.address)
    owner = dev_account(3)
    transact(w3, owner, core.functions.deposit(), value=10**18)
    wid = create(chain, owner, seed_spec())
    set_dev_price(w3, dev_role("admin"), chain.deployment.feeds["ethereum"], Decimal("3100"))
    indexer.sync()
    return w3, core, owner, wid


def assert_store_equals_chain(chain, indexer: EventIndexer, accounts: list[str]) -> None:  # type: ignore[no-untyped-def]
    core = autometa(chain.w3, chain.deployment.address)
    count = core.functions.workflowCount().call()
    assert indexer.store.workflows.count(chain_id=indexer.chain_id) == count
    for wid in range(1, count + 1):
        row = indexer.store.workflows.get(indexer.chain_id, indexer.contract, wid)
        assert row is not None
        assert state_from_row(row) == WorkflowState.from_view(core.functions.getWorkflow(wid).call())
    balances = indexer.store.escrow.balances(indexer.chain_id, indexer.contract)
    for account in accounts:
        assert balances.get(account, 0) == core.functions.balanceOf(account).call(), account
    assert indexer.reconcile() == []


def test_runs_and_escrow_are_indexed_exactly(dev_chain, indexer: EventIndexer) -> None:  # type: ignore[no-untyped-def]
    w3, core = dev_chain.w3, autometa(dev_chain.w3, dev_chain.deployment.address)
    users = [dev_account(i) for i in (3, 5, 6)]
    for user in users:
        transact(w3, user, core.functions.deposit(), value=10**18)
    ids = [create(dev_chain, user, seed_spec()) for user in users]
    transact(w3, users[0], core.functions.withdraw(10**16))
    set_dev_price(w3, dev_role("admin"), dev_chain.deployment.feeds["ethereum"], Decimal("3198.15"))
    execute(dev_chain, ids[0], 0)
    execute(dev_chain, ids[0], 0)  # same run again: skipped on-chain, nothing moves
    execute(dev_chain, ids[1], 0)
    transact(w3, users[2], core.functions.pauseWorkflow(ids[2]))
    seen: list[list[WorkflowState]] = []
    indexer.listeners.append(seen.append)
    indexer.sync()
    assert_store_equals_chain(dev_chain, indexer, [u.address for u in users] + [dev_role("executor").address])
    page = indexer.store.executions.list(workflow_id=ids[0])
    statuses = sorted(row.status for row in page.items)
    assert statuses == ["skipped", "success"]
    assert {s.id for batch in seen for s in batch} == set(ids)
    assert indexer.store.workflows.get(indexer.chain_id, indexer.contract, ids[2]).status == Status.PAUSED  # type: ignore[union-attr]


def test_reorg_of_depth_3_over_a_creation(dev_chain, indexer: EventIndexer) -> None:  # type: ignore[no-untyped-def]
    w3 = dev_chain.w3
    owner = dev_account(3)
    kept = create(dev_chain, owner, seed_spec())
    indexer.sync()
    orphan = create(dev_chain, owner, seed_spec(2 * 10**17))
    w3.provider.make_request("anvil_mine", [2])  # type: ignore[arg-type]
    indexer.sync()
    assert indexer.store.workflows.get(indexer.chain_id, indexer.contract, orphan) is not None
    w3.provider.make_request("anvil_reorg", [3, []])  # type: ignore[arg-type]
    results = indexer.sync()
    assert results and results[0].reorg_depth >= 3
    assert indexer.store.workflows.get(indexer.chain_id, indexer.contract, orphan) is None
    assert indexer.store.workflows.get(indexer.chain_id, indexer.contract, kept) is not None
    assert_store_equals_chain(dev_chain, indexer, [owner.address])


def test_a_reorg_tells_listeners_the_orphaned_workflows_are_gone(dev_chain, indexer: EventIndexer) -> None:  # type: ignore[no-untyped-def]
    """The scheduler's trigger index learns workflows only from the listeners: a workflow whose
    creation was reorged out must be reported as no longer live, or it stays armed and fires."""
    w3 = dev_chain.w3
    owner = dev_account(3)
    kept = create(dev_chain, owner, seed_spec())
    indexer.sync()
    orphan = create(dev_chain, owner, seed_spec(2 * 10**17))
    w3.provider.make_request("anvil_mine", [2])  # type: ignore[arg-type]
    indexer.sync()
    heard: list[WorkflowState] = []
    indexer.listeners.append(heard.extend)
    w3.provider.make_request("anvil_reorg", [3, []])  # type: ignore[arg-type]
    indexer.sync()
    last = {s.id: s for s in heard}
    assert orphan in last and not last[orphan].is_live
    assert kept not in last or last[kept].is_live


def test_a_quiet_catch_up_keeps_nothing_of_the_backlog(dev_chain, indexer: EventIndexer) -> None:  # type: ignore[no-untyped-def]
    """A scheduler's load reads every state from the store after catching up: the catch-up
    (`notify=False`) neither tells listeners nor keeps the backlog's transaction hashes (only
    recorded runs' are ever checked against the node), so a large backlog leaves no heap behind."""
    owner = dev_account(3)
    created = [create(dev_chain, owner, seed_spec()) for _ in range(3)]
    heard: list[WorkflowState] = []
    indexer.listeners.append(heard.extend)
    indexer.sync(notify=False)
    assert heard == [] and indexer._on_chain == set()
    assert [r.id for r in indexer.store.workflows.list_active(indexer.chain_id, indexer.contract)] == created
    transact(
        dev_chain.w3, owner, autometa(dev_chain.w3, dev_chain.deployment.address).functions.pauseWorkflow(created[0])
    )
    indexer.sync()  # listeners are told again afterwards
    assert [s.id for s in heard] == [created[0]]


def test_reorg_over_an_execution_restores_the_run_state(dev_chain, indexer: EventIndexer) -> None:  # type: ignore[no-untyped-def]
    w3, core, owner, wid = due_workflow(dev_chain, indexer)
    execute(dev_chain, wid, 0)
    w3.provider.make_request("anvil_mine", [2])  # type: ignore[arg-type]
    indexer.sync()
    assert indexer.store.workflows.get(indexer.chain_id, indexer.contract, wid).run_count == 1  # type: ignore[union-attr]
    undone: list[tuple[int, int]] = []
    indexer.undone_listeners.append(undone.extend)
    w3.provider.make_request("anvil_reorg", [3, []])  # type: ignore[arg-type]
    indexer.sync()
    assert indexer.store.workflows.get(indexer.chain_id, indexer.contract, wid).run_count == 0  # type: ignore[union-attr]
    assert undone == [(wid, 0)]  # the run is due again: the queue's claim on it must go
    assert indexer.store.executions.list(workflow_id=wid).total == 0
    assert_store_equals_chain(dev_chain, indexer, [owner.address, dev_role("executor").address])


def test_a_report_of_an_orphaned_transaction_does_not_stay_pending(dev_chain, indexer: EventIndexer) -> None:  # type: ignore[no-untyped-def]
    """The executor reported its run in a transaction a reorg then dropped: the row goes back
    to 'pending'; once the run is executed by another transaction, that row must go (it can
    never complete), or the run shows as pending forever next to its success."""
    w3, core, owner, wid = due_workflow(dev_chain, indexer)
    receipt = transact(w3, dev_role("executor"), core.functions.execute(wid, 0, 0))
    orphaned = "0x" + bytes(receipt["transactionHash"]).hex()
    indexer.store.executions.record_offchain(
        chain_id=indexer.chain_id,
        contract=indexer.contract,
        workflow_id=wid,
        run_index=0,
        tx_hash=orphaned,
        price_source="oracle",
    )
    w3.provider.make_request("anvil_mine", [2])  # type: ignore[arg-type]
    indexer.sync()
    w3.provider.make_request("anvil_reorg", [3, []])  # type: ignore[arg-type]
    indexer.sync()
    assert [r.status for r in indexer.store.executions.for_run(indexer.chain_id, indexer.contract, wid, 0)] == [
        "pending"
    ]
    execute(dev_chain, wid, 0)  # executed again, in another transaction
    indexer.sync()
    rows = indexer.store.executions.for_run(indexer.chain_id, indexer.contract, wid, 0)
    assert [r.status for r in rows] == ["success"] and rows[0].tx_hash != orphaned


def test_a_reorg_while_a_range_is_read_is_not_checkpointed_as_canonical(dev_chain, indexer: EventIndexer) -> None:  # type: ignore[no-untyped-def]
    """The reorg lands between reading a range's logs and reading its block hashes: the range
    must not be checkpointed with the new branch's hash over the old branch's events (the
    reorg would never be noticed and the undone execution would stay in the store)."""
    w3, core, owner, wid = due_workflow(dev_chain, indexer)
    execute(dev_chain, wid, 0)
    w3.provider.make_request("anvil_mine", [2])  # type: ignore[arg-type]
    read_logs = w3.eth.get_logs
    reorged: list[bool] = []

    def get_logs_then_reorg(params: Any) -> Any:
        logs = read_logs(params)
        if not reorged:
            reorged.append(True)
            w3.provider.make_request("anvil_reorg", [3, []])  # type: ignore[arg-type]
        return logs

    w3.eth.get_logs = get_logs_then_reorg  # type: ignore[method-assign]
    try:
        indexer.sync()
        indexer.sync()
    finally:
        w3.eth.get_logs = read_logs  # type: ignore[method-assign]
    assert reorged
    assert indexer.store.workflows.get(indexer.chain_id, indexer.contract, wid).run_count == 0  # type: ignore[union-attr]
    assert indexer.store.executions.list(workflow_id=wid).total == 0
    assert_store_equals_chain(dev_chain, indexer, [owner.address, dev_role("executor").address])


def test_rows_of_a_transaction_orphaned_before_indexing_are_forgotten(dev_chain, indexer: EventIndexer) -> None:  # type: ignore[no-untyped-def]
    """The executor records a skip and a run from its receipts, then a reorg drops both
    transactions before the indexer reaches their blocks (so no rollback sees the rows): the skip
    never happened and must go; the run goes back to 'pending' and, once executed by another
    transaction, only that success remains (the chaos bench found such skip rows left behind)."""
    w3, core = dev_chain.w3, autometa(dev_chain.w3, dev_chain.deployment.address)
    owner, chain_id = dev_account(3), indexer.chain_id
    transact(w3, owner, core.functions.deposit(), value=10**18)
    skipped_wid, run_wid = create(dev_chain, owner, seed_spec()), create(dev_chain, owner, seed_spec())
    indexer.sync()
    ex = indexer.store.executions

    def record(receipt: Any) -> str:  # what the executor writes from its receipt
        tx, block = "0x" + bytes(receipt["transactionHash"]).hex(), int(receipt["blockNumber"])
        for ev in core.events.RunSkipped().process_receipt(receipt, errors=DISCARD):
            ex.record_onchain(
                chain_id=chain_id,
                contract=indexer.contract,
                workflow_id=ev.args.workflowId,
                run_index=ev.args.runIndex,
                tx_hash=tx,
                log_index=ev.logIndex,
                block_number=block,
                status="skipped",
                skip_reason=int(ev.args.reason),
            )
        for ev in core.events.RunExecuted().process_receipt(receipt, errors=DISCARD):
            ex.record_onchain(
                chain_id=chain_id,
                contract=indexer.contract,
                workflow_id=ev.args.workflowId,
                run_index=ev.args.runIndex,
                tx_hash=tx,
                log_index=ev.logIndex,
                block_number=block,
                status="success",
                fee=int(ev.args.fee),
            )
            ex.record_offchain(
                chain_id=chain_id,
                contract=indexer.contract,
                workflow_id=ev.args.workflowId,
                run_index=ev.args.runIndex,
                tx_hash=tx,
                price_source="oracle",
            )
        return tx

    executor = dev_role("executor")
    skip_receipt = transact(w3, executor, core.functions.execute(skipped_wid, 0, 0))  # $3250: not below 3200
    skip_tx = record(skip_receipt)
    set_dev_price(w3, dev_role("admin"), dev_chain.deployment.feeds["ethereum"], Decimal("3100"))
    run_tx = record(transact(w3, executor, core.functions.execute(run_wid, 0, 0)))
    assert [r.status for r in ex.for_run(chain_id, indexer.contract, skipped_wid, 0)] == ["skipped"]
    w3.provider.make_request("anvil_reorg", [3, []])  # type: ignore[arg-type]
    assert not w3.eth.get_logs({"address": core.address, "fromBlock": indexer.indexed_block + 1})
    indexer.sync()
    assert ex.for_run(chain_id, indexer.contract, skipped_wid, 0) == []
    assert [(r.status, r.tx_hash) for r in ex.for_run(chain_id, indexer.contract, run_wid, 0)] == [("pending", run_tx)]
    # An executor slow to record (its receipt was from the orphaned block) writes after the
    # indexer went past: the next range's check asks the node about it and forgets it too.
    record(skip_receipt)
    assert [r.status for r in ex.for_run(chain_id, indexer.contract, skipped_wid, 0)] == ["skipped"]
    w3.provider.make_request("anvil_mine", [1])  # type: ignore[arg-type]
    indexer.sync()
    assert ex.for_run(chain_id, indexer.contract, skipped_wid, 0) == []
    set_dev_price(w3, dev_role("admin"), dev_chain.deployment.feeds["ethereum"], Decimal("3100"))
    execute(dev_chain, run_wid, 0)
    indexer.sync()
    rows = ex.for_run(chain_id, indexer.contract, run_wid, 0)
    assert [r.status for r in rows] == ["success"] and rows[0].tx_hash not in (run_tx, skip_tx)
    assert_store_equals_chain(dev_chain, indexer, [owner.address])


def test_the_rollback_itself_leaves_nothing_above_the_common_ancestor(dev_chain, indexer: EventIndexer) -> None:  # type: ignore[no-untyped-def]
    """Right after the sync that detects a reorg has rolled back — before any range of the new
    branch is read — the store holds no execution, escrow movement or workflow change above the
    common ancestor. (Reading the new branch later would also drop some of those rows; this must
    not depend on it.)"""
    w3, core, owner, wid = due_workflow(dev_chain, indexer)
    executed_at = int(transact(w3, dev_role("executor"), core.functions.execute(wid, 0, 0))["blockNumber"])
    transact(w3, dev_role("executor"), core.functions.execute(wid, 0, 0))  # same run again: a recorded skip
    transact(w3, owner, core.functions.withdraw(10**15))
    w3.provider.make_request("anvil_mine", [1])  # type: ignore[arg-type]
    indexer.sync()
    ex = indexer.store.executions
    assert sorted(r.status for r in ex.for_run(indexer.chain_id, indexer.contract, wid, 0)) == ["skipped", "success"]
    ancestor = executed_at - 1
    depth = int(w3.eth.block_number) - ancestor
    seen: dict[str, Any] = {}

    def at_rollback(_undone: list[tuple[int, int]]) -> None:  # called by the rollback, before the next range
        store = indexer.store
        seen["executions"] = [
            (r.status, r.block_number)
            for r in ex.list(workflow_id=wid, limit=100).items
            if r.block_number is not None and r.block_number > ancestor
        ]
        seen["escrow"] = [
            e.block_number
            for e in store.escrow.list(indexer.chain_id, indexer.contract, limit=500).items
            if e.block_number > ancestor
        ]
        seen["run_count"] = store.workflows.get(indexer.chain_id, indexer.contract, wid).run_count  # type: ignore[union-attr]
        seen["checkpoint"] = indexer.indexed_block

    indexer.undone_listeners.append(at_rollback)
    w3.provider.make_request("anvil_reorg", [depth, []])  # type: ignore[arg-type]
    first = indexer.sync_once()
    assert first is not None and first.reorg_depth == depth
    assert seen == {"executions": [], "escrow": [], "run_count": 0, "checkpoint": ancestor}


def test_a_busy_stretch_is_read_in_ranges_of_about_range_logs(dev_chain, store: Store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A backlog of many events in few blocks is read (and applied) a bounded number of logs at a
    time: the first range is short, and a range over RANGE_LOGS shrinks the next ones. One range
    of 10,000 creations was a peak the scheduler kept as heap for good."""
    monkeypatch.setattr(indexer_module, "RANGE_LOGS", 2)
    monkeypatch.setattr(indexer_module, "FIRST_SPAN", 4)
    owner = dev_account(3)
    first = int(dev_chain.w3.eth.block_number) + 1
    ids = [create(dev_chain, owner, seed_spec()) for _ in range(10)]  # a block each (automine)
    indexer = EventIndexer(dev_chain.w3, store, dev_chain.deployment.address, first, batch_blocks=1000)
    results = indexer.sync()
    assert sum(r.events for r in results) == len(ids)
    assert max(r.events for r in results) <= 2 * 2  # a shrunk span may double back once past it
    assert_store_equals_chain(dev_chain, indexer, [owner.address])


@pytest.mark.parametrize(("blocks_cap", "results_cap"), [(500, 10_000), (5_000, 5)])
def test_ranges_a_provider_refuses_are_split(dev_chain, tmp_path, blocks_cap: int, results_cap: int) -> None:  # type: ignore[no-untyped-def]
    """Behind a provider that caps eth_getLogs (blocks per request, results per request, with
    its own error text) the indexer halves refused ranges and still indexes every event."""
    w3, dep = dev_chain.w3, dev_chain.deployment
    owner = dev_account(3)
    ids = []
    for _ in range(4):  # events spread over a long chain: 8 creations over 1,200+ blocks
        ids += [create(dev_chain, owner, seed_spec()) for _ in range(2)]
        w3.provider.make_request("anvil_mine", [hex(300)])  # type: ignore[arg-type]
    store = Store.open(f"sqlite:///{tmp_path / 'indexer.db'}")  # the splitting does not depend on the store
    with store, PublicProviderProxy(dev_chain.url, log_blocks=blocks_cap, log_results=results_cap) as proxy:
        indexer = EventIndexer(connect(proxy.url), store, dep.address, dep.block, batch_blocks=5_000)
        indexer.sync()
        assert proxy.refused.get("eth_getLogs", 0) >= 1
        assert indexer.batch_blocks <= blocks_cap  # a block cap is remembered, a result cap is not
        assert [store.workflows.get(indexer.chain_id, indexer.contract, wid) is not None for wid in ids] == [
            True
        ] * len(ids)
        assert indexer.indexed_block == int(w3.eth.block_number)
        assert_store_equals_chain(dev_chain, indexer, [owner.address])


def test_confirmations_finalized_indexes_only_what_the_chain_calls_final(dev_chain, store: Store) -> None:  # type: ignore[no-untyped-def]
    w3, dep = dev_chain.w3, dev_chain.deployment
    wid = create(dev_chain, dev_account(3), seed_spec())
    indexer = EventIndexer(w3, store, dep.address, dep.block, confirmations="finalized")

    def finalized() -> int:
        return int(w3.eth.get_block("finalized")["number"])

    indexer.sync()
    assert indexer.indexed_block == max(finalized(), dep.block - 1) < int(w3.eth.block_number)
    assert (
        store.workflows.get(indexer.chain_id, indexer.contract, wid) is None
    )  # created after the finalized block: not indexed yet
    w3.provider.make_request("anvil_mine", [hex(200)])  # type: ignore[arg-type]
    indexer.sync()
    assert (
        indexer.indexed_block == finalized()
        and store.workflows.get(indexer.chain_id, indexer.contract, wid) is not None
    )


def test_following_the_head_costs_one_request_per_block_and_still_catches_a_reorg(dev_chain, store: Store) -> None:  # type: ignore[no-untyped-def]
    """Given each new head's header (the scheduler has it), the indexer reads that block's logs by
    hash and nothing else; a reorg of an indexed block shows as a parent-hash mismatch at the next
    head, and the full path rolls it back."""
    w3, dep, owner = dev_chain.w3, dev_chain.deployment, dev_account(3)
    with RpcProxy(dev_chain.url) as proxy:
        indexer = EventIndexer(connect(proxy.url), store, dep.address, dep.block)
        indexer.sync()
        ids = []
        for amount in (1, 2, 3):
            ids.append(create(dev_chain, owner, seed_spec(amount * 10**17)))
            head = w3.eth.get_block("latest")
            before = Counter(proxy.calls)
            (result,) = indexer.sync(head=head)
            used = Counter(proxy.calls)
            used.subtract(before)
            assert +used == Counter({"eth_getLogs": 1}) and result.events >= 1
            assert store.workflows.get(indexer.chain_id, indexer.contract, ids[-1]) is not None
        w3.provider.make_request("anvil_reorg", [1, []])  # type: ignore[arg-type]
        w3.provider.make_request("anvil_mine", [1])  # type: ignore[arg-type]
        results = indexer.sync(head=w3.eth.get_block("latest"))
        assert results and results[0].reorg_depth >= 1
        assert (
            store.workflows.get(indexer.chain_id, indexer.contract, ids[-1]) is None
            and store.workflows.get(indexer.chain_id, indexer.contract, ids[0]) is not None
        )
        assert_store_equals_chain(dev_chain, indexer, [owner.address])
