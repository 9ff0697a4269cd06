"""EIP-712 typed data an owner signs to subscribe, unsubscribe or ask for a re-send.

Off-chain only (the contract never sees it), but bound the same way as workflow changes: to the
chain id and the Autometa contract in the domain, to the owner, to a nonce the API accepts once
and to a deadline. ``configHash`` commits to the whole subscription — target and secret
included — without putting them in the wallet's prompt.
"""

from __future__ import annotations

import json
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address

DOMAIN_NAME = "Autometa Notifications"
DOMAIN_VERSION = "1"
ACTIONS = ("subscribe", "unsubscribe", "resend")

_TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "NotificationIntent": [
        {"name": "owner", "type": "address"},
        {"name": "action", "type": "string"},
        {"name": "channel", "type": "string"},
        {"name": "events", "type": "string"},
        {"name": "workflowIds", "type": "uint256[]"},
        {"name": "subscriptionId", "type": "uint256"},
        {"name": "deliveryId", "type": "uint256"},
        {"name": "configHash", "type": "bytes32"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
}


def config_hash(config: dict[str, Any] | None) -> str:
    """keccak256 of the subscription's canonical JSON (sorted keys, no spaces); zero for none."""
    if not config:
        return "0x" + "00" * 32
    return "0x" + keccak(json.dumps(config, sort_keys=True, separators=(",", ":")).encode()).hex()


def intent_typed_data(
    *,
    owner: str,
    action: str,
    chain_id: int,
    contract: str,
    nonce: int,
    deadline: int,
    channel: str = "",
    events: list[str] | None = None,
    workflow_ids: list[int] | None = None,
    subscription_id: int = 0,
    delivery_id: int = 0,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}")
    return {
        "types": _TYPES,
        "primaryType": "NotificationIntent",
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": to_checksum_address(contract),
        },
        "message": {
            "owner": to_checksum_address(owner),
            "action": action,
            "channel": channel,
            "events": ",".join(sorted(events or [])),
            "workflowIds": sorted(workflow_ids or []),
            "subscriptionId": subscription_id,
            "deliveryId": delivery_id,
            "configHash": config_hash(config),
            "nonce": nonce,
            "deadline": deadline,
        },
    }


def recover(typed_data: dict[str, Any], signature: str) -> str:
    return str(Account.recover_message(encode_typed_data(full_message=typed_data), signature=signature))
