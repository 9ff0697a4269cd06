from __future__ import annotations

from autometa.store import Store

from .helpers import CHAIN


def h(n: int, fork: int = 0) -> str:
    return "0x" + f"{fork:02x}{n:062x}"


def test_checkpoint_set_get_and_move_back(store: Store) -> None:
    name = "indexer:31337:0xContract"
    assert store.checkpoints.get(CHAIN, name) is None
    store.checkpoints.set(CHAIN, name, 100, h(100))
    cp = store.checkpoints.set(CHAIN, name, 120, bytes.fromhex(h(120)[2:]))
    assert (cp.block_number, cp.block_hash) == (120, h(120))
    store.checkpoints.set(CHAIN, name, 90)  # rewound after a reorg
    got = store.checkpoints.get(CHAIN, name)
    assert got is not None and (got.block_number, got.block_hash) == (90, None)
    assert got.updated_at.tzinfo is not None
    assert store.checkpoints.delete(CHAIN, name) and store.checkpoints.get(CHAIN, name) is None


def test_block_hashes_remember_replace_prune(store: Store) -> None:
    for n in range(1, 11):
        store.checkpoints.remember_block(CHAIN, n, h(n))
    store.checkpoints.remember_blocks(1287, [(5, h(5))])
    assert store.checkpoints.block_hash(CHAIN, 7) == h(7)
    assert store.checkpoints.block_hash(CHAIN, 11) is None
    store.checkpoints.remember_blocks(CHAIN, [(9, h(9, fork=1)), (10, h(10, fork=1))])
    assert store.checkpoints.recent_blocks(CHAIN, limit=3) == [(10, h(10, 1)), (9, h(9, 1)), (8, h(8))]
    assert store.checkpoints.prune(CHAIN, below=6) == 5
    assert store.checkpoints.block_hash(CHAIN, 5) is None
    assert store.checkpoints.block_hash(1287, 5) == h(5)
    assert store.checkpoints.forget_from(CHAIN, 9) == 2
    assert [n for n, _ in store.checkpoints.recent_blocks(CHAIN)] == [8, 7, 6]
