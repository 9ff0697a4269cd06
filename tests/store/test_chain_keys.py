"""Many chains (and two deployments on one chain) in one database: the same workflow id, run,
account or worker on each is its own row, and every read names which one it means."""

from __future__ import annotations

from eth_utils import to_checksum_address

from autometa.store import Store

from .helpers import CHAIN, CONTRACT, EXECUTOR, OWNER_A, OWNER_B, tx, workflow

OTHER_CHAIN = 8453
OTHER_CONTRACT = "0x" + "d0" * 20


def test_the_same_workflow_id_lives_on_every_chain_and_contract(store: Store) -> None:
    store.workflows.upsert(workflow(1, amount=1))
    store.workflows.upsert(workflow(1, chain_id=OTHER_CHAIN, amount=2, owner=OWNER_B))
    store.workflows.upsert(workflow(1, contract=OTHER_CONTRACT, amount=3))
    got = [
        store.workflows.get(c, k, 1) for c, k in ((CHAIN, CONTRACT), (OTHER_CHAIN, CONTRACT), (CHAIN, OTHER_CONTRACT))
    ]
    assert [w.amount for w in got if w is not None] == [1, 2, 3]
    assert store.workflows.apply_status(OTHER_CHAIN, CONTRACT, 1, 2, block=50, log_index=0)
    mine = store.workflows.get(CHAIN, CONTRACT, 1)
    assert mine is not None and mine.status == 1  # a status change on one chain stays there
    assert store.workflows.delete_from_block(CHAIN, OTHER_CONTRACT, 0) == 1
    assert store.workflows.count() == 2
    # An owner's list spans every chain, each item naming its chain and contract.
    everywhere = store.workflows.list_by_owner(OWNER_A)
    assert [(w.chain_id, w.contract, w.id) for w in everywhere.items] == [(CHAIN, to_checksum_address(CONTRACT), 1)]
    store.workflows.upsert(workflow(2, chain_id=OTHER_CHAIN))
    assert [(w.chain_id, w.id) for w in store.workflows.list_by_owner(OWNER_A).items] == [(OTHER_CHAIN, 2), (CHAIN, 1)]
    assert store.workflows.list_by_owner(OWNER_A, chain_id=OTHER_CHAIN).total == 1


def test_runs_and_balances_follow_their_deployment(store: Store) -> None:
    store.workflows.upsert(workflow(1, owner=OWNER_A))
    store.workflows.upsert(workflow(1, chain_id=OTHER_CHAIN, owner=OWNER_B))
    for n, chain in enumerate((CHAIN, OTHER_CHAIN), start=1):
        store.executions.record_onchain(
            chain_id=chain,
            contract=CONTRACT,
            workflow_id=1,
            run_index=0,
            tx_hash=tx(n),
            log_index=0,
            block_number=10,
            status="success",
        )
        store.escrow.record(
            chain_id=chain,
            contract=CONTRACT,
            block_number=5,
            tx_hash=tx(10 + n),
            log_index=0,
            kind="deposit",
            account=OWNER_A,
            amount=100 * n,
        )
    # workflow 1 of OWNER_A is on CHAIN only: the other chain's run of its workflow 1 is OWNER_B's
    assert [r.chain_id for r in store.executions.list(owner=OWNER_A).items] == [CHAIN]
    assert store.executions.stats(owner=OWNER_B).total == 1
    assert len(store.executions.for_run(OTHER_CHAIN, CONTRACT, 1, 0)) == 1
    assert store.executions.for_run(CHAIN, OTHER_CONTRACT, 1, 0) == []
    assert store.escrow.balance(CHAIN, CONTRACT, OWNER_A) == 100
    assert store.escrow.balance(OTHER_CHAIN, CONTRACT, OWNER_A) == 200
    assert store.escrow.balance(CHAIN, OTHER_CONTRACT, OWNER_A) == 0


def test_checkpoints_and_heartbeats_per_chain(store: Store) -> None:
    store.checkpoints.set(CHAIN, "genesis", 0, tx(1))
    store.checkpoints.set(OTHER_CHAIN, "genesis", 0, tx(2))
    a, b = store.checkpoints.get(CHAIN, "genesis"), store.checkpoints.get(OTHER_CHAIN, "genesis")
    assert a is not None and b is not None and (a.block_hash, b.block_hash) == (tx(1), tx(2))
    store.heartbeats.beat(CHAIN, "exec", "executor", EXECUTOR)
    store.heartbeats.beat(OTHER_CHAIN, "exec", "executor", EXECUTOR)
    assert {h.chain_id for h in store.heartbeats.active(60)} == {CHAIN, OTHER_CHAIN}
    assert [h.chain_id for h in store.heartbeats.active(60, chain_id=OTHER_CHAIN)] == [OTHER_CHAIN]
    assert store.heartbeats.remove(CHAIN, "exec")
    assert [h.chain_id for h in store.heartbeats.all()] == [OTHER_CHAIN]
