"""Bindings to the deployed Autometa contract and the dev contracts, from packaged artifacts."""

from __future__ import annotations

from typing import Any

from eth_utils import to_checksum_address
from web3 import AsyncWeb3, Web3
from web3.contract import AsyncContract, Contract

from autometa.contracts import load_artifact
from autometa.networks import ChainModule

# The contract behind each kind of chain module (contracts/src/ChainModules.sol).
MODULE_CONTRACTS: dict[ChainModule, str] = {
    ChainModule.NONE: "NoL1FeeModule",
    ChainModule.OPTIMISM: "OptimismModule",
    ChainModule.ARBITRUM: "ArbitrumModule",
}


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


def deployed_module(w3: Web3, address: str) -> ChainModule | None:
    """Which of our chain modules runs at `address` (modules have no immutables, so their code is
    the artifact's deployed bytecode exactly); None: another contract."""
    code = bytes(w3.eth.get_code(to_checksum_address(address))).hex()
    for kind, name in MODULE_CONTRACTS.items():
        if code and code == load_artifact(name).deployed_bytecode.removeprefix("0x"):
            return kind
    return None
