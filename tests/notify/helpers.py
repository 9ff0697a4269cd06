from __future__ import annotations

from typing import Any

from autometa.store import Store

OWNER = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
CHAIN = 31337
CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"  # rows name their deployment


def add_workflow(store: Store, wid: int = 1, owner: str = OWNER, **extra: Any) -> None:
    values: dict[str, Any] = {
        "id": wid,
        "chain_id": CHAIN,
        "contract": CONTRACT,
        "owner": owner,
        "status": 1,
        "trigger_kind": 1,
        "action_kind": 0,
        "target": "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
        "gas_limit": 100_000,
        "max_fee_per_run": 10**16,
        "created_block": 1,
        "amount": 10**15,
        "interval": 3600,
    }
    values.update(extra)
    store.workflows.upsert(values)


def record_run(store: Store, wid: int, run: int, status: str = "success", block: int = 10, **extra: Any) -> None:
    tx = "0x" + f"{wid:032x}{run:032x}"
    store.executions.record_onchain(
        chain_id=CHAIN,
        contract=CONTRACT,
        workflow_id=wid,
        run_index=run,
        tx_hash=tx,
        log_index=0,
        block_number=block,
        status=status,
        included_at=1_700_000_000 + run,
        **extra,
    )
