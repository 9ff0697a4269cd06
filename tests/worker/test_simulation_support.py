"""Batch simulation (`eth_simulateV1`) is switched off only by a node that lacks the method,
never by one failed call: a rate limit or a 5xx costs that batch its simulation, not every
later batch for the life of the process."""

from __future__ import annotations

import pytest

from autometa.chain.accounts import dev_role
from autometa.chain.sender import TransactionSender
from autometa.chain.web3 import RpcRetry, connect_async
from autometa.worker.executor import Executor
from autometa.worker.queue import InMemoryJobQueue
from tests.support.provider_proxy import PublicProviderProxy
from tests.support.rpc_proxy import RpcProxy

RUN = [(1 << 64) | 0]  # some packed run: what the simulation says about it does not matter here


def _executor(url: str, address: str) -> Executor:
    aw3 = connect_async(url, retry=RpcRetry(attempts=1, budget_s=0))  # no retries: the call fails, as past them
    return Executor(aw3, address, TransactionSender(aw3, dev_role("executor")), InMemoryJobQueue())


@pytest.mark.parametrize("status", [429, 503])
async def test_a_failed_simulation_call_keeps_simulation_on(dev_chain, status: int) -> None:  # type: ignore[no-untyped-def]
    with RpcProxy(dev_chain.url) as proxy:
        executor = _executor(proxy.url, dev_chain.deployment.address)
        proxy.fault("eth_simulateV1", "error", times=1, status=status)
        skipped, _, gas = await executor._simulate(RUN)
        assert (skipped, gas) == ({}, None) and proxy.injected_for("eth_simulateV1") == 1
        assert executor._simulate_v1, "one failed call switched batch simulation off"
        await executor._simulate(RUN)  # the next batch asks the node again, and gets an answer
        assert proxy.calls["eth_simulateV1"] == 2 and executor._simulate_v1


async def test_a_node_without_the_method_switches_simulation_off_once(dev_chain) -> None:  # type: ignore[no-untyped-def]
    with PublicProviderProxy(dev_chain.url) as proxy:
        executor = _executor(proxy.url, dev_chain.deployment.address)
        await executor._simulate(RUN)
        assert not executor._simulate_v1 and proxy.refused == {"eth_simulateV1": 1}
        await executor._simulate(RUN)
        assert proxy.refused == {"eth_simulateV1": 1}, "asked again after the node said it lacks the method"
