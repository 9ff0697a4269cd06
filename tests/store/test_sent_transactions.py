from __future__ import annotations

from typing import Any

import pytest
from eth_utils import to_checksum_address

from autometa.store import Store

from .helpers import CHAIN, EXECUTOR, OWNER_A, tx


def add(store: Store, nonce: int, n: int, sender: str = EXECUTOR, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "chain_id": CHAIN,
        "sender": sender,
        "nonce": nonce,
        "tx_hash": tx(n),
        "raw_tx": "0x02f8" + f"{n:04x}",
        "tx_type": "eip1559",
        "max_fee_per_gas": 2 * 10**9 + n,
        "max_priority_fee_per_gas": 10**9,
        "gas_limit": 500_000,
        "purpose": "execute-batch",
    }
    args.update(kw)
    return store.sent_transactions.add(**args)


def test_add_is_idempotent_and_validated(store: Store) -> None:
    row = add(store, 0, 1)
    assert row.sender == to_checksum_address(EXECUTOR) and row.status == "pending"
    assert row.created_at.tzinfo is not None
    assert add(store, 0, 1).id == row.id
    legacy = add(store, 1, 2, tx_type="legacy", gas_price=10**9, max_fee_per_gas=None, max_priority_fee_per_gas=None)
    assert legacy.gas_price == 10**9
    with pytest.raises(ValueError):
        add(store, 2, 3, tx_type="legacy")
    with pytest.raises(ValueError):
        add(store, 2, 3, max_fee_per_gas=None)
    with pytest.raises(ValueError):
        add(store, 2, 3, tx_type="blob")
    got = store.sent_transactions.get(tx(1))
    assert got is not None and got.raw_tx == "0x02f80001"


def test_pending_in_nonce_order_with_replacements(store: Store) -> None:
    add(store, 5, 1)
    add(store, 3, 2)
    add(store, 4, 3)
    add(store, 3, 4, max_fee_per_gas=3 * 10**9)  # fee-bumped replacement of nonce 3
    add(store, 9, 5, sender=OWNER_A)
    assert [(t.nonce, t.tx_hash) for t in store.sent_transactions.pending(CHAIN, EXECUTOR)] == [
        (3, tx(2)),
        (3, tx(4)),
        (4, tx(3)),
        (5, tx(1)),
    ]
    assert store.sent_transactions.mark_replaced(tx(2), tx(4))
    assert not store.sent_transactions.mark_replaced(tx(2), tx(4))  # already replaced
    old = store.sent_transactions.get(tx(2))
    assert old is not None and (old.status, old.replaced_by) == ("replaced", tx(4))
    assert [t.tx_hash for t in store.sent_transactions.pending(CHAIN, EXECUTOR)] == [tx(4), tx(3), tx(1)]
    with pytest.raises(ValueError):
        store.sent_transactions.mark_replaced(tx(3), tx(1))  # different nonces
    with pytest.raises(LookupError):
        store.sent_transactions.mark_replaced(tx(3), tx(99))

    assert store.sent_transactions.set_status(tx(3), "mined", block_number=77)
    assert store.sent_transactions.set_status(tx(3), "confirmed")
    confirmed = store.sent_transactions.get(tx(3))
    assert confirmed is not None and (confirmed.status, confirmed.block_number) == ("confirmed", 77)
    assert not store.sent_transactions.set_status(tx(99), "mined")
    with pytest.raises(ValueError):
        store.sent_transactions.set_status(tx(3), "lost")
    waiting = store.sent_transactions.pending(CHAIN, EXECUTOR, statuses=("pending", "mined"))
    assert [t.nonce for t in waiting] == [3, 5]

    assert store.sent_transactions.highest_nonce(CHAIN, EXECUTOR) == 5
    assert store.sent_transactions.highest_nonce(CHAIN, OWNER_A) == 9
    assert store.sent_transactions.highest_nonce(1287, EXECUTOR) is None


def test_resolve_nonce_when_the_original_wins(store: Store) -> None:
    add(store, 3, 1)
    add(store, 3, 2)
    store.sent_transactions.mark_replaced(tx(1), tx(2))
    store.sent_transactions.resolve_nonce(CHAIN, EXECUTOR, 3, tx(1), block_number=50)
    rows = store.sent_transactions.by_nonce(CHAIN, EXECUTOR, 3)
    assert [(t.tx_hash, t.status, t.block_number) for t in rows] == [(tx(1), "mined", 50), (tx(2), "dropped", None)]
    assert store.sent_transactions.pending(CHAIN, EXECUTOR) == []
