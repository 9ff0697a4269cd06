"""Small builders shared by the store tests."""

from __future__ import annotations

from typing import Any

OWNER_A = "0x" + "aa" * 20
OWNER_B = "0x" + "bb" * 20
EXECUTOR = "0x" + "ee" * 20
TARGET = "0x" + "cc" * 20
CHAIN = 31337
CONTRACT = "0x" + "c0" * 20  # the Autometa deployment rows are keyed by, with CHAIN


def tx(n: int) -> str:
    return "0x" + f"{n:064x}"


def workflow(workflow_id: int, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": workflow_id,
        "chain_id": CHAIN,
        "contract": CONTRACT,
        "owner": OWNER_A,
        "status": 1,
        "trigger_kind": 1,
        "action_kind": 0,
        "interval": 60,
        "target": TARGET,
        "amount": 10**18,
        "gas_limit": 100_000,
        "max_fee_per_run": 10**16,
        "created_block": 10,
        "created_tx": tx(workflow_id),
    }
    row.update(overrides)
    return row
