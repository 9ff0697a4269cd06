"""One API, one store, two chains (issue 16): every workflow route takes `chain` (a name or a
chain id; none: the first chain), an owner's list spans both chains with each item naming its
chain, an unknown chain is a 404 with the reason, and the typed client follows along."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.concurrency import run_in_threadpool

from autometa.api import Services, create_app
from autometa.chain.anvil import Anvil
from autometa.chain.devnet import setup_dev_stack
from autometa.chain.indexer import EventIndexer
from autometa.chain.web3 import connect
from autometa.client import ApiClientError, AsyncAutometaClient
from tests.api.conftest import RELAYER, USER, deposit, seed_body, settings_for
from tests.conftest import DevChain
from tests.support.coingecko_stub import CoinGeckoStub

SECOND_CHAIN_ID = 31338


@pytest.fixture(scope="module")
def second_chain() -> Iterator[DevChain]:
    """Another dev chain with its own chain id and its own deployment of the contract."""
    with Anvil(chain_id=SECOND_CHAIN_ID) as anvil:
        w3 = connect(anvil.url)
        yield DevChain(anvil, w3, setup_dev_stack(w3))


@pytest.fixture
async def two(
    dev_chain: DevChain, second_chain: DevChain, coingecko: CoinGeckoStub, tmp_path: Path
) -> AsyncIterator[tuple[Services, httpx.AsyncClient, AsyncAutometaClient]]:
    chains = [
        {"chain_id": 31337, "name": "dev", "rpc": dev_chain.url, "contract": dev_chain.deployment.address},
        {
            "chain_id": SECOND_CHAIN_ID,
            "name": "dev2",
            "rpc": second_chain.url,
            "contract": second_chain.deployment.address,
        },
    ]
    settings = settings_for(
        dev_chain,
        coingecko,
        tmp_path,
        CHAINS=json.dumps(chains),
        MOONBASE_RPC=None,
        REGISTRY_ADDRESS=None,
        CHAIN_ID=None,
    )
    services = await Services.from_settings(settings)
    transport = httpx.ASGITransport(app=create_app(settings, services=services))
    raw = httpx.AsyncClient(transport=transport, base_url="http://api.test", timeout=60)
    typed = AsyncAutometaClient("http://api.test", transport=transport, timeout=60)
    try:
        yield services, raw, typed
    finally:
        await raw.aclose()
        await typed.aclose()
        await services.aclose()


async def _index(services: Services, *chains: DevChain) -> None:
    for chain in chains:
        indexer = EventIndexer(chain.w3, services.store, chain.deployment.address, chain.deployment.block)
        await run_in_threadpool(indexer.sync)


async def test_two_chains_one_api(
    two: tuple[Services, httpx.AsyncClient, AsyncAutometaClient], dev_chain: DevChain, second_chain: DevChain
) -> None:
    services, raw, typed = two
    listed = await typed.chains()
    assert [(c.name, c.chain_id, c.default, c.relayer) for c in listed] == [
        ("dev", 31337, True, True),
        ("dev2", SECOND_CHAIN_ID, False, True),
    ]
    deposit(dev_chain, USER, 3 * 10**18)
    deposit(second_chain, USER, 3 * 10**18)
    # A different amount on each chain, so the rows cannot be mixed up unnoticed.
    first = await typed.create_signed(USER, seed_body(action_data={"to": RELAYER.address, "amount_wei": "1"}))
    other = await typed.on("dev2").create_signed(
        USER, seed_body(action_data={"to": RELAYER.address, "amount_wei": "2"})
    )
    assert first.workflow_id == other.workflow_id  # both chains number from 1: the same id, two workflows
    await _index(services, dev_chain, second_chain)

    on_first, on_second = await typed.workflow(first.workflow_id), await typed.on("dev2").workflow(other.workflow_id)
    assert (on_first.chain, on_first.chain_id, on_first.spec["action_data"]["amount_wei"]) == ("dev", 31337, "1")
    assert (on_second.chain, on_second.chain_id, on_second.spec["action_data"]["amount_wei"]) == (
        "dev2",
        SECOND_CHAIN_ID,
        "2",
    )
    assert on_first.contract == dev_chain.deployment.address and on_second.contract == second_chain.deployment.address
    assert on_first.indexed and on_second.indexed
    by_id = (await raw.get(f"/api/workflow/{other.workflow_id}", params={"chain": str(SECOND_CHAIN_ID)})).json()
    assert by_id["chain"] == "dev2" and by_id["spec"]["action_data"]["amount_wei"] == "2"

    everywhere = await typed.user_workflows(USER.address)
    assert sorted((w.chain, w.id) for w in everywhere.workflows) == [("dev", 1), ("dev2", 1)]
    assert everywhere.total == 2 and all(w.escrow is not None for w in everywhere.workflows)
    only = await typed.on("dev2").user_workflows(USER.address)
    assert [(w.chain, w.id) for w in only.workflows] == [("dev2", 1)]
    assert (await typed.on("dev2").user_workflows(USER.address, every_chain=True)).total == 2

    assert (await typed.stats(user=USER.address)).workflows == 2
    assert (await typed.on("dev2").stats(user=USER.address)).workflows == 1
    escrow = (await raw.get(f"/api/escrow/{USER.address}", params={"chain": "dev2"})).json()
    assert escrow["deposit"]["chain_id"] == SECOND_CHAIN_ID and escrow["active_workflows"] == 1


@pytest.mark.parametrize(
    "path",
    ["/api/workflow/1", "/api/workflow/user/" + USER.address, "/api/executions", "/api/stats", "/api/utils/healthz"],
)
async def test_an_unknown_chain_is_a_404_naming_the_served_ones(
    two: tuple[Services, httpx.AsyncClient, AsyncAutometaClient], path: str
) -> None:
    _, raw, _ = two
    got = await raw.get(path, params={"chain": "base"})
    body = got.json()
    assert got.status_code == 404 and body["error"] == "unknown_chain" and body["field"] == "chain", got.text
    assert "dev (31337), dev2 (31338)" in body["message"]


@pytest.mark.parametrize("chain", ["\u00b3", "\uff13\uff11\uff13\uff13\uff17", "-1", "31337.0"])
async def test_a_chain_that_only_looks_numeric_is_a_404(
    two: tuple[Services, httpx.AsyncClient, AsyncAutometaClient], chain: str
) -> None:
    """'³' and full-width digits pass str.isdigit() but not int(): found as a 500 by test_live."""
    _, raw, _ = two
    got = await raw.get("/api/executions", params={"chain": chain})
    assert got.status_code == 404 and got.json()["error"] == "unknown_chain", got.text


async def test_the_typed_client_raises_on_an_unknown_chain(
    two: tuple[Services, httpx.AsyncClient, AsyncAutometaClient],
) -> None:
    _, _, typed = two
    with pytest.raises(ApiClientError) as info:
        await typed.on(999).workflow(1)
    assert info.value.status == 404 and info.value.field == "chain"
