"""EIP-712 typed data for creating, pausing, resuming and cancelling a workflow.

The contract verifies exactly these types (WorkflowRegistry.sol); a signature binds the chain
id, the contract address, the owner's nonce, a deadline and the most the owner pays a relayer.
`WorkflowSpec` gained `bytes triggerData` (issue 15: the STATE / CRON / LOG kinds' data), so
the type string and SPEC_TYPEHASH differ from the first contract's: a contract with the new
kinds is a new deployment, and a signature made for one never verifies on the other.
"""

from __future__ import annotations

from typing import Any

from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from autometa.domain.kinds import StatusOp
from autometa.domain.workflow import WorkflowSpec

DOMAIN_NAME = "Autometa"
DOMAIN_VERSION = "1"

SPEC_FIELDS = [
    {"name": "triggerKind", "type": "uint8"},
    {"name": "comparator", "type": "uint8"},
    {"name": "startTime", "type": "uint40"},
    {"name": "endTime", "type": "uint40"},
    {"name": "interval", "type": "uint32"},
    {"name": "priceUsd", "type": "uint64"},
    {"name": "asset", "type": "bytes32"},
    {"name": "actionKind", "type": "uint8"},
    {"name": "target", "type": "address"},
    {"name": "token", "type": "address"},
    {"name": "amount", "type": "uint256"},
    {"name": "data", "type": "bytes"},
    {"name": "maxRuns", "type": "uint32"},
    {"name": "gasLimit", "type": "uint24"},
    {"name": "maxFeePerRun", "type": "uint80"},
    {"name": "triggerData", "type": "bytes"},
]
_DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
_AUTH_TAIL = [
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
    {"name": "maxRelayerFee", "type": "uint256"},
]
STATUS_TYPES = {
    StatusOp.PAUSE: "PauseWorkflow",
    StatusOp.RESUME: "ResumeWorkflow",
    StatusOp.CANCEL: "CancelWorkflow",
}


def domain(chain_id: int, contract: str) -> dict[str, Any]:
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": to_checksum_address(contract),
    }


def spec_message(spec: WorkflowSpec) -> dict[str, Any]:
    message = spec.to_abi()._asdict()
    assert list(message) == [f["name"] for f in SPEC_FIELDS]  # one order: the contract's struct
    for name in ("asset", "data", "triggerData"):
        message[name] = "0x" + bytes(message[name]).hex()
    return message


def create_typed_data(
    spec: WorkflowSpec,
    owner: str,
    nonce: int,
    deadline: int,
    max_relayer_fee: int,
    chain_id: int,
    contract: str,
) -> dict[str, Any]:
    """The `CreateWorkflow` message a user signs (eth_signTypedData_v4 shape)."""
    return {
        "types": {
            "EIP712Domain": _DOMAIN_FIELDS,
            "CreateWorkflow": [
                {"name": "owner", "type": "address"},
                {"name": "spec", "type": "WorkflowSpec"},
                *_AUTH_TAIL,
            ],
            "WorkflowSpec": SPEC_FIELDS,
        },
        "primaryType": "CreateWorkflow",
        "domain": domain(chain_id, contract),
        "message": {
            "owner": to_checksum_address(owner),
            "spec": spec_message(spec),
            "nonce": nonce,
            "deadline": deadline,
            "maxRelayerFee": max_relayer_fee,
        },
    }


def status_typed_data(
    op: StatusOp,
    workflow_id: int,
    owner: str,
    nonce: int,
    deadline: int,
    max_relayer_fee: int,
    chain_id: int,
    contract: str,
) -> dict[str, Any]:
    """The `PauseWorkflow` / `ResumeWorkflow` / `CancelWorkflow` message a user signs."""
    primary = STATUS_TYPES[StatusOp(op)]
    return {
        "types": {
            "EIP712Domain": _DOMAIN_FIELDS,
            primary: [
                {"name": "owner", "type": "address"},
                {"name": "workflowId", "type": "uint256"},
                *_AUTH_TAIL,
            ],
        },
        "primaryType": primary,
        "domain": domain(chain_id, contract),
        "message": {
            "owner": to_checksum_address(owner),
            "workflowId": workflow_id,
            "nonce": nonce,
            "deadline": deadline,
            "maxRelayerFee": max_relayer_fee,
        },
    }


def sign_typed_data(account: LocalAccount, typed_data: dict[str, Any]) -> str:
    """Sign like a wallet's eth_signTypedData_v4; returns the 65-byte signature as 0x-hex."""
    signed = account.sign_message(encode_typed_data(full_message=typed_data))
    return "0x" + bytes(signed.signature).hex()


def recover_signer(typed_data: dict[str, Any], signature: str) -> str:
    from eth_account import Account

    return str(Account.recover_message(encode_typed_data(full_message=typed_data), signature=signature))
