"""Shared fixtures: one anvil per test session (per xdist worker) with the dev stack deployed,
and a clean chain for every test by snapshot/revert."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from web3 import Web3

from autometa.chain.anvil import Anvil
from autometa.chain.deploy import Deployment
from autometa.chain.devnet import setup_dev_stack
from autometa.chain.web3 import connect


@dataclass
class DevChain:
    anvil: Anvil
    w3: Web3
    deployment: Deployment

    @property
    def url(self) -> str:
        return self.anvil.url


@pytest.fixture(scope="session")
def dev_chain_session() -> Iterator[DevChain]:
    with Anvil() as anvil:
        w3 = connect(anvil.url)
        yield DevChain(anvil, w3, setup_dev_stack(w3))


@pytest.fixture
def dev_chain(dev_chain_session: DevChain) -> Iterator[DevChain]:
    """The session's dev chain, reverted to its freshly deployed state after the test."""
    w3 = dev_chain_session.w3
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    try:
        yield dev_chain_session
    finally:
        w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
        w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
