"""Migration 0003 (many chains in one database) on a database as the previous release left it:
every row survives with its values, gains its chain / contract key, and the way back restores
the previous schema with the same rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from eth_utils import to_checksum_address
from sqlalchemy import Engine, MetaData, inspect, select

from autometa.store import Store, create_db_engine, migrate
from autometa.store.db import alembic_config

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
CORE = to_checksum_address("0x" + "5f" * 20)
OTHER_CHAIN_CORE = to_checksum_address("0x" + "6e" * 20)
OWNER = to_checksum_address("0x" + "aa" * 20)
EXECUTOR = to_checksum_address("0x" + "ee" * 20)


def tx(n: int) -> str:
    return "0x" + f"{n:064x}"


def _workflow(wid: int, chain_id: int) -> dict[str, Any]:
    return {
        "id": wid,
        "chain_id": chain_id,
        "owner": OWNER,
        "status": 1,
        "trigger_kind": 1,
        "action_kind": 0,
        "comparator": 0,
        "start_time": 0,
        "end_time": 0,
        "interval": 60 * wid,
        "price_usd": "0",
        "asset": "",
        "target": EXECUTOR,
        "token": None,
        "amount": str(10**18 + wid),
        "data": "0x",
        "max_runs": 0,
        "gas_limit": 100_000,
        "max_fee_per_run": str(10**16),
        "run_count": wid,
        "last_run": 0,
        "failures": 0,
        "created_block": 10 + wid,
        "created_tx": tx(wid),
        "updated_block": 10 + wid,
        "updated_log_index": -1,
    }


def _release_rows() -> dict[str, list[dict[str, Any]]]:
    """Rows as revision 0002 stores them, on two chains each with its indexer checkpoint."""
    return {
        "workflows": [_workflow(1, 31337), _workflow(2, 31337), _workflow(3, 1287)],
        "executions": [
            {
                "id": i,
                "chain_id": chain,
                "workflow_id": wid,
                "run_index": 0,
                "status": "success",
                "tx_hash": tx(100 + i),
                "log_index": 0,
                "block_number": 20 + i,
                "fee": str(55_000 * 10**9),
                "occurred_at": T0,
                "created_at": T0,
            }
            for i, (chain, wid) in enumerate([(31337, 1), (31337, 2), (1287, 3)], start=1)
        ],
        "escrow_events": [
            {
                "id": i,
                "chain_id": chain,
                "block_number": 5,
                "tx_hash": tx(200 + i),
                "log_index": 0,
                "kind": "deposit",
                "account": OWNER,
                "counterparty": OWNER,
                "amount": str(10**18 * i),
                "workflow_id": None,
                "created_at": T0,
            }
            for i, chain in enumerate([31337, 1287], start=1)
        ],
        "checkpoints": [
            {"name": f"indexer:31337:{CORE}", "block_number": 40, "block_hash": tx(40), "updated_at": T0},
            {"name": f"indexer:1287:{OTHER_CHAIN_CORE}", "block_number": 41, "block_hash": tx(41), "updated_at": T0},
            {"name": "genesis:31337", "block_number": 0, "block_hash": tx(1), "updated_at": T0},
            {"name": "notify-cursor", "block_number": 3, "block_hash": None, "updated_at": T0},
        ],
        "heartbeats": [
            {"worker_id": "exec-1", "role": "executor", "address": EXECUTOR, "started_at": T0, "last_seen": T0},
        ],
        "block_hashes": [{"chain_id": 31337, "block_number": 40, "block_hash": tx(40)}],
        "sent_transactions": [
            {
                "id": 1,
                "chain_id": 31337,
                "sender": EXECUTOR,
                "nonce": 7,
                "tx_hash": tx(101),
                "raw_tx": "0x02",
                "tx_type": "legacy",
                "gas_price": str(10**9),
                "gas_limit": 21_000,
                "status": "mined",
                "purpose": "execute",
                "created_at": T0,
                "updated_at": T0,
            }
        ],
    }


def _insert(engine: Engine, rows: dict[str, list[dict[str, Any]]]) -> None:
    meta = MetaData()
    meta.reflect(engine)
    with engine.begin() as conn:
        for table, items in rows.items():
            conn.execute(meta.tables[table].insert(), items)


def _dump(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    meta = MetaData()
    meta.reflect(engine)
    out: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for name in ("workflows", "executions", "escrow_events", "checkpoints", "heartbeats", "block_hashes"):
            table = meta.tables[name]
            key = list(table.primary_key.columns)
            out[name] = [dict(r._mapping) for r in conn.execute(select(table).order_by(*key))]
        out["sent_transactions"] = [
            dict(r._mapping) for r in conn.execute(select(meta.tables["sent_transactions"]).order_by("id"))
        ]
    return out


def _without(rows: list[dict[str, Any]], *columns: str) -> list[dict[str, Any]]:
    return sorted(
        ({k: v for k, v in r.items() if k not in columns} for r in rows), key=lambda r: sorted(map(str, r.items()))
    )


def _at_release(url: str) -> Engine:
    engine = create_db_engine(url)
    migrate(engine, "0002")
    _insert(engine, _release_rows())
    return engine


def test_upgrade_keeps_every_row_and_keys_it_by_chain_and_contract(empty_url: str) -> None:
    engine = _at_release(empty_url)
    try:
        before = _dump(engine)
        assert {t: len(r) for t, r in before.items()} == {t: len(r) for t, r in _release_rows().items()}
        migrate(engine)
        after = _dump(engine)
        for table in before:
            assert len(after[table]) == len(before[table]), table
            added = {"contract"} if table in ("workflows", "executions", "escrow_events") else set()
            added |= {"chain_id"} if table in ("checkpoints", "heartbeats") else set()
            added |= {"trigger_data"} if table == "workflows" else set()  # 0004: empty for the release's kinds
            assert _without(after[table], *added) == _without(before[table]), table
        assert {r["trigger_data"] for r in after["workflows"]} == {"0x"}
        contract_of = {31337: CORE, 1287: OTHER_CHAIN_CORE}
        for table in ("workflows", "executions", "escrow_events"):
            assert [(r["chain_id"], r["contract"]) for r in after[table]] == [
                (r["chain_id"], contract_of[r["chain_id"]]) for r in after[table]
            ]
        chains = {r["name"]: r["chain_id"] for r in after["checkpoints"]}
        assert chains == {
            f"indexer:31337:{CORE}": 31337,
            f"indexer:1287:{OTHER_CHAIN_CORE}": 1287,
            "genesis:31337": 31337,
            "notify-cursor": 0,
        }
        assert [r["chain_id"] for r in after["heartbeats"]] == [0]  # two chains: no one to pick
        keys = {t: inspect(engine).get_pk_constraint(t)["constrained_columns"] for t in ("workflows", "checkpoints")}
        assert keys == {"workflows": ["chain_id", "contract", "id"], "checkpoints": ["chain_id", "name"]}
        with Store(engine) as store:  # the repositories read the moved rows by their new keys
            got = store.workflows.get(1287, OTHER_CHAIN_CORE, 3)
            assert got is not None and got.amount == 10**18 + 3
            assert store.workflows.get(31337, OTHER_CHAIN_CORE, 3) is None
            assert store.escrow.balance(31337, CORE, OWNER) == 10**18
            assert store.executions.list(owner=OWNER, chain_id=1287).total == 1
            # the same id on another deployment of the same chain is now a row of its own
            store.workflows.upsert({**_workflow(1, 31337), "contract": OTHER_CHAIN_CORE, "owner": EXECUTOR})
            assert store.workflows.count(chain_id=31337) == 3

        # That extra row shares id 1 on chain 31337: one database per chain cannot hold both.
        with pytest.raises(RuntimeError, match="cannot downgrade below 0003"), engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0002")
    finally:
        engine.dispose()


def test_downgrade_restores_the_release_schema_with_the_same_rows(empty_url: str) -> None:
    engine = _at_release(empty_url)
    try:
        before = _dump(engine)
        migrate(engine)
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "0002")
        assert _dump(engine) == before
        assert inspect(engine).get_pk_constraint("workflows")["constrained_columns"] == ["id"]
    finally:
        engine.dispose()


def test_rows_without_a_known_contract_stop_the_upgrade_until_told(
    empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_db_engine(empty_url)
    try:
        migrate(engine, "0002")
        rows = _release_rows()
        _insert(engine, {"workflows": rows["workflows"][:1]})  # no indexer checkpoint names a contract
        monkeypatch.delenv("AUTOMETA_MIGRATE_CONTRACT", raising=False)
        with pytest.raises(RuntimeError, match="AUTOMETA_MIGRATE_CONTRACT"):
            migrate(engine)
        assert len(_dump(engine)["workflows"]) == 1  # the failed upgrade rolled back, nothing lost
        monkeypatch.setenv("AUTOMETA_MIGRATE_CONTRACT", "0x1234")
        with pytest.raises(RuntimeError, match="20-byte address"):
            migrate(engine)
        monkeypatch.setenv("AUTOMETA_MIGRATE_CONTRACT", CORE)
        migrate(engine)
        assert [(r["id"], r["contract"]) for r in _dump(engine)["workflows"]] == [(1, CORE)]
    finally:
        engine.dispose()
