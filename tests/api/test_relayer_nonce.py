"""The relayer refuses a stale or early nonce itself, before it builds or simulates anything.

The contract refuses a used nonce too, so a test that only looks at the answer cannot tell the
relayer's own check from the contract's. These tests watch the JSON-RPC traffic the API sends
while it handles the request: no call that simulates, estimates or sends the relayed
transaction may appear, and the reason must be the relayer's ("already used …, the owner's next
nonce is N"), not a decoded revert.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_utils import function_abi_to_4byte_selector

from autometa.chain.contracts import autometa
from tests.api.conftest import USER, close_api, deposit, open_api, seed_body
from tests.api.test_relayer import ESCROW, _signed
from tests.conftest import DevChain
from tests.support.coingecko_stub import CoinGeckoStub
from tests.support.rpc_proxy import RpcProxy

# JSON-RPC methods that simulate, price or send a transaction
SIMULATING = {
    "eth_estimateGas",
    "eth_simulateV1",
    "eth_createAccessList",
    "eth_sendRawTransaction",
    "eth_sendTransaction",
    "eth_getTransactionCount",
}
RELAYED = {"createWorkflowFor", "changeStatusBySig"}  # what the relayer sends on an owner's behalf


class RecordingProxy(RpcProxy):
    """The fault proxy, also keeping every JSON-RPC call it forwards (method, params)."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.seen: list[tuple[str, Any]] = []

    async def _handle(self, body: bytes, writer: Any) -> bool:
        try:
            payload = json.loads(body)
            for call in payload if isinstance(payload, list) else [payload]:
                self.seen.append((str(call.get("method")), call.get("params")))
        except (ValueError, AttributeError):
            pass
        return await super()._handle(body, writer)


@pytest.fixture
def proxy(dev_chain: DevChain) -> Iterator[RecordingProxy]:
    with RecordingProxy(dev_chain.url) as p:
        yield p


def _relayed_calls(proxy: RecordingProxy, selectors: set[str]) -> list[str]:
    """Calls that build, simulate or send the relayed transaction (by method, or an eth_call of
    one of the relayed functions' selectors)."""
    found = []
    for method, params in proxy.seen:
        if method in SIMULATING:
            found.append(method)
        elif method == "eth_call" and params and str(params[0].get("data") or params[0].get("input"))[:10] in selectors:
            found.append(f"eth_call {str(params[0].get('data') or params[0].get('input'))[:10]}")
    return found


@pytest.mark.parametrize("case", ["used", "early"])
async def test_a_stale_or_early_nonce_is_refused_by_the_relayer_before_any_simulation(
    case: str, dev_chain: DevChain, coingecko: CoinGeckoStub, proxy: RecordingProxy, tmp_path: Path
) -> None:
    api, prefix = await open_api("embedded", dev_chain, coingecko, tmp_path, None, MOONBASE_RPC=proxy.url)
    try:
        deposit(dev_chain, USER, ESCROW)
        first = _signed(api, USER, seed_body())
        reply = await api.client.post("/api/workflow/create", json=first)
        assert reply.status_code in (200, 202), reply.text
        core = autometa(dev_chain.w3, dev_chain.deployment.address)
        assert core.functions.nonces(USER.address).call() == 1
        selectors = {
            "0x" + function_abi_to_4byte_selector(abi).hex()
            for abi in core.abi
            if abi.get("type") == "function" and abi.get("name") in RELAYED
        }
        proxy.seen.clear()
        request = first if case == "used" else _signed(api, USER, seed_body(), nonce=5)
        refused = await api.client.post("/api/workflow/create", json=request)
        assert _relayed_calls(proxy, selectors) == [], "the relayer simulated or sent before its nonce check"
        assert refused.status_code == 409, refused.text
        answer = refused.json()
        assert answer["field"] == "nonce" and answer["error"] == "bad_nonce"
        why = "already used" if case == "used" else "not yet valid"
        assert why in answer["message"] and "the owner's next nonce is 1" in answer["message"], answer
        assert core.functions.nonces(USER.address).call() == 1
    finally:
        await close_api(api, prefix)
