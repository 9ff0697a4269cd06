"""Well-known dev-chain accounts (anvil's default mnemonic) and their roles in the dev stack."""

from __future__ import annotations

from functools import cache

from eth_account import Account
from eth_account.signers.local import LocalAccount

from autometa.chain.anvil import DEV_MNEMONIC

Account.enable_unaudited_hdwallet_features()

ROLE_INDEX = {"admin": 0, "relayer": 1, "executor": 2, "user": 3, "recipient": 4}


@cache
def dev_account(index: int) -> LocalAccount:
    """Account `index` of the dev mnemonic. Dev-chain money only: never use on a real network."""
    account: LocalAccount = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    return account


def dev_role(role: str) -> LocalAccount:
    return dev_account(ROLE_INDEX[role])
