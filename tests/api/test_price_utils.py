"""Prices from the shared cache, health and contract addresses."""

from __future__ import annotations

from pathlib import Path

import httpx

from autometa.api import Services, create_app
from autometa.api.chain import ChainGateway
from autometa.prices import BackendClient
from tests.api.conftest import Api, close_api, open_api, settings_for
from tests.conftest import DevChain
from tests.support.coingecko_stub import CoinGeckoStub


async def test_price_is_fetched_once_then_served_from_the_cache(api: Api, coingecko: CoinGeckoStub) -> None:
    first = await api.typed.price("ethereum")
    assert first.usd == 3198.15 and first.source == "backend-api" and first.symbol == "ethereum"
    second = await api.typed.price("ethereum")
    assert second.source == "backend-redis" and second.age_s >= 0
    other = await api.typed.price("bitcoin")  # fetched with the first batch
    assert other.source == "backend-redis" and other.usd == 64000.5
    assert coingecko.requests == 1
    assert await api.typed.assets() == api.settings.SUPPORTED_ASSETS


async def test_replicas_share_the_redis_cache(
    api: Api, dev_chain: DevChain, coingecko: CoinGeckoStub, tmp_path: Path
) -> None:
    if not api.settings.REDIS_URL:
        return  # the in-process cache is per process by design
    await api.typed.price("ethereum")
    replica = Services(**{**api.services.__dict__, "prices": api.services.prices.__class__.from_settings(api.settings)})
    replica.prices.prefix = api.services.prices.prefix
    replica._closers = [replica.prices.aclose]
    app = create_app(api.settings, services=replica)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://replica") as client:
        body = (await client.get("/api/price/ethereum")).json()
    await replica.aclose()
    assert body["source"] == "backend-redis" and coingecko.requests == 1


async def test_unknown_symbol_lists_the_supported_ones(api_embedded: Api) -> None:
    for symbol in ("dogecoin", "ETHEREUM", "éther", "a" * 300):
        reply = await api_embedded.client.get(f"/api/price/{symbol}")
        assert reply.status_code == 404, symbol
        assert reply.json()["details"]["supported"] == api_embedded.settings.SUPPORTED_ASSETS


async def test_upstream_down_is_503_not_500(api_embedded: Api, coingecko: CoinGeckoStub) -> None:
    coingecko.fail_next(500, times=10)
    reply = await api_embedded.client.get("/api/price/polkadot")
    assert reply.status_code == 503 and reply.json()["error"] == "price_unavailable"


async def test_the_worker_backend_client_reads_the_real_api(api_embedded: Api) -> None:
    """The worker's BackendClient (the seed's) against this API: the contract between them."""
    transport = httpx.ASGITransport(app=create_app(api_embedded.settings, services=api_embedded.services))
    async with httpx.AsyncClient(transport=transport) as http:
        client = BackendClient("http://api.test", client=http)
        assert await client.health_check()
        price = await client.get_price("ethereum")
        assert price is not None and float(price.usd) == 3198.15
        assert await client.get_supported_assets() == api_embedded.settings.SUPPORTED_ASSETS
        contracts = await client.get_contract_addresses()
        assert contracts is not None and contracts["WorkflowRegistry"] == api_embedded.chain.deployment.address
        assert await client.get_user_workflows(api_embedded.chain.deployment.admin) == []


async def test_health_and_contracts(api: Api) -> None:
    health = await api.typed.healthz()
    assert health.status == "ok" and health.chain_id == 31337 and health.latest_block is not None
    assert health.database.ok and health.redis.ok
    assert health.database.detail == ("sqlite" if api.settings.REDIS_URL is None else "postgresql")
    contracts = await api.typed.contracts()
    address = api.chain.deployment.address
    assert (contracts.WorkflowRegistry, contracts.ActionExecutor, contracts.FeeEscrow) == (address,) * 3
    assert contracts.chain_id == 31337


async def test_chain_down_is_a_503_with_the_reason(
    dev_chain: DevChain, coingecko: CoinGeckoStub, tmp_path: Path
) -> None:
    settings = settings_for(dev_chain, coingecko, tmp_path, MOONBASE_RPC="http://127.0.0.1:9")
    api, prefix = await open_api("embedded", dev_chain, coingecko, tmp_path, None, MOONBASE_RPC="http://127.0.0.1:9")
    try:
        assert isinstance(api.services.chain, ChainGateway)
        health = await api.client.get("/api/utils/healthz")
        assert health.status_code == 503 and health.json()["status"] == "degraded"
        assert not health.json()["chain"]["ok"] and health.json()["database"]["ok"]
        for path in ("/api/utils/contracts", "/api/workflow/1"):
            reply = await api.client.get(path)
            assert reply.status_code == 503 and reply.json()["error"] == "chain_unavailable", path
        assert (await api.client.get("/api/price/ethereum")).status_code == 200  # prices do not need the chain
        assert settings.MOONBASE_RPC == "http://127.0.0.1:9"
    finally:
        await close_api(api, prefix)
