"""Bindings to the deployed Autometa contract and the dev contracts, from packaged artifacts."""

from __future__ import annotations

from typing import Any

from eth_utils import to_checksum_address
from web3 import AsyncWeb3, Web3
from web3.contract import AsyncContract, Contract

from autometa.contracts import load_artifact


def autometa(w3: Web3, address: str) -> Contract:
    return w3.eth.contract(address=to_checksum_address(address), abi=load_artifact("Autometa").abi)


def autometa_async(w3: AsyncWeb3[Any], address: str) -> AsyncContract:
    return w3.eth.contract(address=to_checksum_address(address), abi=load_artifact("Autometa").abi)


def bind(w3: Web3, name: str, address: str) -> Contract:
    """Any packaged contract (`MockV3Aggregator`, `DevToken`, `OwnerProxy`) at `address`."""
    return w3.eth.contract(address=to_checksum_address(address), abi=load_artifact(name).abi)


def factory(w3: Web3, name: str) -> Any:
    art = load_artifact(name)
    return w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
