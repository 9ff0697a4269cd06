from __future__ import annotations

from typing import Any

import pytest
from eth_utils import to_checksum_address

from autometa.store import Store

from .helpers import CHAIN, CONTRACT, EXECUTOR, OWNER_A, OWNER_B, TARGET, tx

RELAYER = "0x" + "12" * 20


def rec(store: Store, n: int, kind: str, account: str, amount: int, block: int = 1, **kw: Any) -> None:
    store.escrow.record(
        chain_id=kw.pop("chain_id", CHAIN),
        contract=kw.pop("contract", CONTRACT),
        block_number=block,
        tx_hash=tx(n),
        log_index=kw.pop("log_index", 0),
        kind=kind,
        account=account,
        amount=amount,
        **kw,
    )


def test_balances_follow_every_kind_of_movement(store: Store) -> None:
    big = 2**100
    rec(store, 1, "deposit", OWNER_A, big + 1000, counterparty=OWNER_A)
    rec(store, 2, "deposit", OWNER_B, 500, counterparty=OWNER_A)  # depositFor
    rec(store, 3, "fee", OWNER_A, 30, counterparty=EXECUTOR, block=2, workflow_id=1, log_index=4)
    rec(store, 3, "payout", OWNER_A, 100, counterparty=TARGET, block=2, workflow_id=1, log_index=4)
    rec(store, 4, "reimburse", OWNER_B, 20, counterparty=RELAYER, block=3)
    rec(store, 5, "withdraw", OWNER_A, 70, counterparty=OWNER_A, block=4)
    rec(store, 6, "withdraw", EXECUTOR, 10, counterparty=EXECUTOR, block=4)
    rec(store, 7, "deposit", OWNER_A, 999, chain_id=1287)

    balances = store.escrow.balances(CHAIN, CONTRACT)
    cs = to_checksum_address
    assert balances == {cs(OWNER_A): big + 800, cs(OWNER_B): 480, cs(EXECUTOR): 20, cs(RELAYER): 20}
    assert store.escrow.balance(CHAIN, CONTRACT, OWNER_A.upper().replace("0X", "0x")) == big + 800
    assert store.escrow.balance(CHAIN, CONTRACT, RELAYER) == 20
    assert store.escrow.balance(CHAIN, CONTRACT, TARGET) == 0  # a payout leaves escrow
    assert store.escrow.balances(CHAIN, CONTRACT, EXECUTOR) == {cs(EXECUTOR): 20}
    assert store.escrow.balance(1287, CONTRACT, OWNER_A) == 999


def test_replayed_logs_do_not_double_count(store: Store) -> None:
    rec(store, 1, "deposit", OWNER_A, 100)
    rec(store, 1, "deposit", OWNER_A, 100)
    rec(store, 1, "deposit", OWNER_A, 100, block=9)  # same log re-mined elsewhere
    page = store.escrow.list(CHAIN, CONTRACT)
    assert page.total == 1 and page.items[0].block_number == 9
    assert store.escrow.balance(CHAIN, CONTRACT, OWNER_A) == 100


def test_list_by_account_and_reorg(store: Store) -> None:
    rec(store, 1, "deposit", OWNER_A, 100, block=1)
    rec(store, 2, "fee", OWNER_A, 5, block=2, counterparty=EXECUTOR)
    rec(store, 3, "deposit", OWNER_B, 7, block=3)
    assert [e.kind for e in store.escrow.list(CHAIN, CONTRACT, account=EXECUTOR).items] == ["fee"]
    page = store.escrow.list(CHAIN, CONTRACT, account=OWNER_A, limit=1)
    assert page.total == 2 and [e.block_number for e in page.items] == [2]
    assert store.escrow.delete_from_block(CHAIN, CONTRACT, 2) == 2
    assert store.escrow.balances(CHAIN, CONTRACT) == {to_checksum_address(OWNER_A): 100}


def test_bad_movements_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown escrow kind"):
        rec(store, 1, "gift", OWNER_A, 1)
    with pytest.raises(ValueError, match="counterparty"):
        rec(store, 1, "fee", OWNER_A, 1)
    with pytest.raises(ValueError, match="uint256"):
        rec(store, 1, "deposit", OWNER_A, -1)
    assert store.escrow.list(CHAIN, CONTRACT).total == 0
