"""Many chains in one database: key workflows by (chain, contract, id) and name the contract on
executions and escrow movements; checkpoints and heartbeats gain their chain.

Which tables carry the contract: those whose rows name a workflow or an escrow balance, because
two deployments on one chain both number workflows from 1 and hold separate escrow
(``workflows``, ``executions``, ``escrow_events``). Block hashes, checkpoints and heartbeats are
per chain (an indexer's checkpoint name already names its contract). ``sent_transactions`` stays
keyed by hash: a signed transaction's hash commits to its chain id (EIP-155 / EIP-2718).

Existing rows get their contract from the database's one indexer checkpoint on their chain
(``indexer:<chain>:<address>``), else from ``AUTOMETA_MIGRATE_CONTRACT`` (an address); with
neither, the upgrade stops and says so rather than guess. Checkpoints get the chain their name
carries (``genesis:<chain>``, ``indexer:<chain>:…``); heartbeats the database's only chain, or 0.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONTRACT_ENV = "AUTOMETA_MIGRATE_CONTRACT"
CONTRACT_TABLES = ("workflows", "executions", "escrow_events")


def _chain_of(name: str) -> int | None:
    parts = name.split(":")
    if len(parts) >= 2 and parts[0] in ("genesis", "indexer") and (parts[1].isascii() and parts[1].isdigit()):
        return int(parts[1])
    return None


def _contracts(conn: sa.Connection) -> dict[int, str]:
    """chain id -> the one contract its indexer checkpoint names (chains with two are left out)."""
    found: dict[int, set[str]] = {}
    for (name,) in conn.execute(sa.text("SELECT name FROM checkpoints WHERE name LIKE 'indexer:%'")):
        parts = str(name).split(":")
        if len(parts) == 3 and (parts[1].isascii() and parts[1].isdigit()):
            found.setdefault(int(parts[1]), set()).add(parts[2])
    return {chain: next(iter(addrs)) for chain, addrs in found.items() if len(addrs) == 1}


def _fill_contracts(conn: sa.Connection) -> None:
    contracts = _contracts(conn)
    for table in CONTRACT_TABLES:
        for chain, address in contracts.items():
            conn.execute(
                sa.text(f"UPDATE {table} SET contract = :a WHERE chain_id = :c AND contract = ''"),
                {"a": address, "c": chain},
            )
    fallback = os.environ.get(CONTRACT_ENV, "").strip()
    for table in CONTRACT_TABLES:
        left = conn.execute(sa.text(f"SELECT DISTINCT chain_id FROM {table} WHERE contract = ''")).scalars().all()
        if not left:
            continue
        if not fallback:
            raise RuntimeError(
                f"migration 0003: rows of {table} on chain(s) {sorted(left)} have no indexer checkpoint "
                f"naming their contract; set {CONTRACT_ENV}=<the Autometa contract address> and start again"
            )
        if len(fallback) != 42 or not fallback.startswith("0x"):
            raise RuntimeError(f"{CONTRACT_ENV} must be a 0x-prefixed 20-byte address, not {fallback!r}")
        conn.execute(sa.text(f"UPDATE {table} SET contract = :a WHERE contract = ''"), {"a": fallback})


def _fill_chains(conn: sa.Connection) -> None:
    for (name,) in conn.execute(sa.text("SELECT name FROM checkpoints")).all():
        chain = _chain_of(str(name))
        if chain is not None:
            conn.execute(sa.text("UPDATE checkpoints SET chain_id = :c WHERE name = :n"), {"c": chain, "n": name})
    chains = {
        int(c)
        for (c,) in conn.execute(
            sa.text("SELECT chain_id FROM workflows UNION SELECT chain_id FROM block_hashes")
        ).all()
    }
    if len(chains) == 1:
        conn.execute(sa.text("UPDATE heartbeats SET chain_id = :c"), {"c": chains.pop()})


def upgrade() -> None:
    conn = op.get_bind()
    for table in CONTRACT_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("contract", sa.String(length=42), nullable=False, server_default=""))
    for table in ("checkpoints", "heartbeats"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("chain_id", sa.BigInteger(), nullable=False, server_default="0"))
    _fill_contracts(conn)
    _fill_chains(conn)

    with op.batch_alter_table("workflows") as batch:
        batch.alter_column("contract", server_default=None)
        batch.drop_constraint("pk_workflows", type_="primary")
        batch.create_primary_key("pk_workflows", ["chain_id", "contract", "id"])
    with op.batch_alter_table("executions") as batch:
        batch.alter_column("contract", server_default=None)
        batch.drop_index("uq_executions_offchain")
        batch.drop_index("ix_executions_chain_id_workflow_id_run_index")
        batch.create_index(
            "ix_executions_chain_id_contract_workflow_id_run_index",
            ["chain_id", "contract", "workflow_id", "run_index"],
        )
        batch.create_index(
            "uq_executions_offchain",
            ["chain_id", "contract", "workflow_id", "run_index", "tx_hash"],
            unique=True,
            sqlite_where=sa.text("log_index IS NULL"),
            postgresql_where=sa.text("log_index IS NULL"),
        )
    with op.batch_alter_table("escrow_events") as batch:
        batch.alter_column("contract", server_default=None)
        batch.drop_index("ix_escrow_events_chain_id_account")
        batch.create_index("ix_escrow_events_chain_id_contract_account", ["chain_id", "contract", "account"])
    for table, key in (("checkpoints", "name"), ("heartbeats", "worker_id")):
        with op.batch_alter_table(table) as batch:
            batch.alter_column("chain_id", server_default=None)
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", ["chain_id", key])


def downgrade() -> None:
    """Back to one chain per database: refused while two rows would share a key of 0002."""
    conn = op.get_bind()
    for table, key in (("workflows", "id"), ("checkpoints", "name"), ("heartbeats", "worker_id")):
        clash = conn.execute(sa.text(f"SELECT {key} FROM {table} GROUP BY {key} HAVING COUNT(*) > 1")).first()
        if clash is not None:
            raise RuntimeError(
                f"cannot downgrade below 0003: {table} holds {key} {clash[0]!r} on several chains or contracts"
            )
    for table, key in (("checkpoints", "name"), ("heartbeats", "worker_id")):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", [key])
            batch.drop_column("chain_id")
    with op.batch_alter_table("escrow_events") as batch:
        batch.drop_index("ix_escrow_events_chain_id_contract_account")
        batch.create_index("ix_escrow_events_chain_id_account", ["chain_id", "account"])
        batch.drop_column("contract")
    with op.batch_alter_table("executions") as batch:
        batch.drop_index("uq_executions_offchain")
        batch.drop_index("ix_executions_chain_id_contract_workflow_id_run_index")
        batch.create_index("ix_executions_chain_id_workflow_id_run_index", ["chain_id", "workflow_id", "run_index"])
        batch.create_index(
            "uq_executions_offchain",
            ["chain_id", "workflow_id", "run_index", "tx_hash"],
            unique=True,
            sqlite_where=sa.text("log_index IS NULL"),
            postgresql_where=sa.text("log_index IS NULL"),
        )
        batch.drop_column("contract")
    with op.batch_alter_table("workflows") as batch:
        batch.drop_constraint("pk_workflows", type_="primary")
        batch.create_primary_key("pk_workflows", ["id"])
        batch.drop_column("contract")
