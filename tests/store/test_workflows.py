from __future__ import annotations

from dataclasses import dataclass

import pytest
from eth_utils import to_checksum_address

from autometa.store import Store
from autometa.store.types import UINT256_MAX

from .helpers import CHAIN, CONTRACT, OWNER_A, OWNER_B, TARGET, workflow


def test_upsert_normalises_and_round_trips(store: Store) -> None:
    row = workflow(
        1,
        owner=OWNER_A.upper().replace("0X", "0x"),
        trigger_kind=2,
        asset=b"ethereum".ljust(32, b"\0"),
        price_usd=2**64 - 1,
        amount=UINT256_MAX,
        data=b"\x12\x34",
        token="0x" + "dd" * 20,
    )
    got = store.workflows.upsert(row)
    assert got.owner == to_checksum_address(OWNER_A)
    assert got.target == to_checksum_address(TARGET)
    assert got.asset == "ethereum"
    assert got.amount == UINT256_MAX
    assert got.price_usd == 2**64 - 1
    assert got.data == "0x1234"
    assert got.updated_block == 10 and got.run_count == 0 and got.failures == 0
    again = store.workflows.get(CHAIN, CONTRACT, 1)
    assert again is not None and again.amount == UINT256_MAX and again.token == to_checksum_address("0x" + "dd" * 20)
    assert store.workflows.get(CHAIN, CONTRACT, 2) is None


def test_upsert_overwrites_and_accepts_dataclasses(store: Store) -> None:
    @dataclass
    class Row:
        id: int
        chain_id: int
        contract: str
        owner: str
        status: int
        trigger_kind: int
        action_kind: int
        target: str
        gas_limit: int
        max_fee_per_run: int
        created_block: int
        run_count: int = 0

    store.workflows.upsert(workflow(1))
    store.workflows.upsert(Row(1, CHAIN, CONTRACT, OWNER_B, 2, 0, 1, TARGET, 50_000, 5, 10, run_count=3))
    got = store.workflows.get(CHAIN, CONTRACT, 1)
    assert got is not None
    assert (got.owner, got.status, got.run_count) == (to_checksum_address(OWNER_B), 2, 3)
    assert store.workflows.count() == 1


def test_upsert_rejects_bad_rows(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown workflow field"):
        store.workflows.upsert(workflow(1, colour="red"))
    with pytest.raises(ValueError, match="missing workflow field.*owner"):
        store.workflows.upsert(workflow(1, owner=None))
    with pytest.raises(ValueError, match="not an address"):
        store.workflows.upsert(workflow(1, owner="0x1234"))
    with pytest.raises(ValueError, match="uint256"):
        store.workflows.upsert(workflow(1, amount=2**256))
    assert store.workflows.count() == 0


def test_list_by_owner_paginates_newest_first(store: Store) -> None:
    for i in range(1, 6):
        store.workflows.upsert(workflow(i))
    for i in range(6, 8):
        store.workflows.upsert(workflow(i, owner=OWNER_B))
    page = store.workflows.list_by_owner(OWNER_A.upper().replace("0X", "0x"), offset=1, limit=2)
    assert page.total == 5
    assert [w.id for w in page.items] == [4, 3]
    last = store.workflows.list_by_owner(OWNER_A, offset=4, limit=2)
    assert [w.id for w in last.items] == [1]
    assert store.workflows.list_by_owner(OWNER_B).total == 2
    with pytest.raises(ValueError):
        store.workflows.list_by_owner(OWNER_A, limit=0)


def test_list_active_and_count(store: Store) -> None:
    store.workflows.upsert(workflow(1))
    store.workflows.upsert(workflow(2, status=2))
    store.workflows.upsert(workflow(3, chain_id=1287))
    store.workflows.upsert(workflow(4, owner=OWNER_B))
    assert [w.id for w in store.workflows.list_active(CHAIN, CONTRACT)] == [1, 4]
    assert [w.id for w in store.workflows.list_active(1287, CONTRACT)] == [3]
    assert store.workflows.count() == 4
    assert store.workflows.count(chain_id=CHAIN, status=1) == 2
    assert store.workflows.count(owner=OWNER_B) == 1
    assert store.workflows.max_id(CHAIN, CONTRACT) == 4


def test_active_pages_are_list_active_a_page_at_a_time(store: Store) -> None:
    for wid in range(1, 8):
        store.workflows.upsert(workflow(wid, status=2 if wid == 4 else 1, chain_id=1287 if wid == 6 else CHAIN))
    store.workflows.upsert(workflow(8, contract="0x" + "c1" * 20))  # another deployment on the chain
    pages = [[w.id for w in page] for page in store.workflows.active_pages(CHAIN, CONTRACT, page=2)]
    assert pages == [[1, 2], [3, 5], [7]]
    assert [w for page in pages for w in page] == [w.id for w in store.workflows.list_active(CHAIN, CONTRACT)]
    assert [[w.id for w in p] for p in store.workflows.active_pages(1287, CONTRACT, page=10)] == [[6]]


def test_apply_status_once_per_event(store: Store) -> None:
    store.workflows.upsert(workflow(1))
    assert store.workflows.apply_status(CHAIN, CONTRACT, 1, 2, block=20, log_index=3)
    assert not store.workflows.apply_status(CHAIN, CONTRACT, 1, 2, block=20, log_index=3)  # replay
    assert not store.workflows.apply_status(CHAIN, CONTRACT, 1, 1, block=19, log_index=9)  # older
    assert store.workflows.apply_status(CHAIN, CONTRACT, 1, 3, block=20, log_index=4)
    got = store.workflows.get(CHAIN, CONTRACT, 1)
    assert got is not None and (got.status, got.updated_block, got.updated_log_index) == (3, 20, 4)
    assert not store.workflows.apply_status(CHAIN, CONTRACT, 99, 2, block=30, log_index=0)


def test_apply_run_follows_the_contract(store: Store) -> None:
    store.workflows.upsert(workflow(1))
    assert store.workflows.apply_run(CHAIN, CONTRACT, 1, 0, False, 1, block=11, timestamp=1000, log_index=0)
    assert store.workflows.apply_run(CHAIN, CONTRACT, 1, 0, False, 1, block=12, timestamp=1060, log_index=0)
    assert not store.workflows.apply_run(
        CHAIN, CONTRACT, 1, 0, False, 1, block=12, timestamp=1060, log_index=0
    )  # replay
    got = store.workflows.get(CHAIN, CONTRACT, 1)
    assert got is not None and (got.failures, got.run_count, got.last_run) == (2, 0, 0)
    assert store.workflows.apply_run(CHAIN, CONTRACT, 1, 0, True, 1, block=13, timestamp=1120, log_index=2)
    assert store.workflows.apply_run(CHAIN, CONTRACT, 1, 1, True, 4, block=14, timestamp=1180, log_index=0)
    got = store.workflows.get(CHAIN, CONTRACT, 1)
    assert got is not None
    assert (got.failures, got.run_count, got.last_run, got.status) == (0, 2, 1180, 4)


def test_reorg_deletes_created_and_reports_changed(store: Store) -> None:
    store.workflows.upsert(workflow(1, created_block=10))
    store.workflows.upsert(workflow(2, created_block=15))
    store.workflows.upsert(workflow(3, created_block=20))
    store.workflows.upsert(workflow(4, created_block=20, chain_id=1287))
    store.workflows.apply_status(CHAIN, CONTRACT, 1, 2, block=18, log_index=0)
    assert store.workflows.changed_since(CHAIN, CONTRACT, 16) == [1, 3]
    assert store.workflows.delete_from_block(CHAIN, CONTRACT, 16) == 1
    assert store.workflows.get(CHAIN, CONTRACT, 3) is None
    assert store.workflows.get(1287, CONTRACT, 4) is not None  # other chain untouched
    assert store.workflows.changed_since(CHAIN, CONTRACT, 16) == [1]
    # The indexer re-reads workflow 1 at the new head and overwrites it.
    store.workflows.upsert(workflow(1, status=1, updated_block=17, updated_log_index=-1))
    assert store.workflows.changed_since(CHAIN, CONTRACT, 18) == []
