"""Creating workflows on the dev chain for worker tests."""

from __future__ import annotations

from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.logs import DISCARD

from autometa.chain.accounts import dev_role
from autometa.chain.contracts import autometa
from autometa.chain.deploy import transact
from autometa.domain.workflow import WorkflowSpec

RECIPIENT = dev_role("recipient").address


def spec(trigger_type: int, trigger_data: dict[str, Any], amount: int = 10**15, **extra: Any) -> WorkflowSpec:
    return WorkflowSpec.model_validate(
        {
            "trigger_type": trigger_type,
            "trigger_data": trigger_data,
            "action_type": 0,
            "action_data": {"to": RECIPIENT, "amount_wei": amount},
            **extra,
        }
    )


def seed_spec() -> WorkflowSpec:
    """The seed's example: ethereum below $3200 -> send 1 coin."""
    return spec(2, {"token": "ethereum", "comparator": 0, "price_usd": 3200}, amount=10**18)


def create(w3: Web3, address: str, owner: LocalAccount, s: WorkflowSpec) -> int:
    core = autometa(w3, address)
    receipt = transact(w3, owner, core.functions.createWorkflow(s.to_abi()))
    (event,) = core.events.WorkflowCreated().process_receipt(receipt, errors=DISCARD)
    return int(event.args.workflowId)


def deposit(w3: Web3, address: str, owner: LocalAccount, wei: int) -> None:
    transact(w3, owner, autometa(w3, address).functions.deposit(), value=wei)


def advance(w3: Web3, seconds: int) -> int:
    w3.provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    return int(w3.eth.block_number)


def now(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])
