"""The worker's backend client (the seed's checks 1-4) against a real stand-in backend."""

from __future__ import annotations

from structlog.testing import capture_logs

from autometa.prices import BackendClient, ManualClock, PriceSource
from tests.support.coingecko_stub import CONTRACTS, BackendStub, CoinGeckoStub

from .conftest import ASSETS, PRICES, usd


async def test_health_check(backend: BackendStub, backend_client: BackendClient) -> None:
    assert await backend_client.health_check() is True
    backend.down = True
    assert await backend_client.health_check() is False


async def test_health_check_when_nothing_listens(clock: ManualClock) -> None:
    client = BackendClient("http://127.0.0.1:9", timeout=1, clock=clock)
    with capture_logs() as logs:
        assert await client.health_check() is False
    await client.aclose()
    # the health check is quiet: its caller (the worker's start-up) says it, in one line
    assert not any(e["event"] == "backend_unavailable" for e in logs)
    assert client.available is False


async def test_contract_addresses(backend_client: BackendClient) -> None:
    assert await backend_client.get_contract_addresses() == CONTRACTS


async def test_supported_assets(backend_client: BackendClient) -> None:
    assert await backend_client.get_supported_assets() == ASSETS


async def test_user_workflows(backend: BackendStub, backend_client: BackendClient) -> None:
    owner = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    backend.workflows[owner] = [{"id": 1, "trigger_type": 2}]
    assert await backend_client.get_user_workflows(owner) == [{"id": 1, "trigger_type": 2}]
    assert await backend_client.get_user_workflows("0x0000000000000000000000000000000000000001") == []


async def test_price_says_whether_it_came_from_the_cache(
    coingecko: CoinGeckoStub, backend_client: BackendClient, clock: ManualClock
) -> None:
    first = await backend_client.get_price("ethereum")
    assert first is not None and first.usd == usd(PRICES["ethereum"])
    assert first.source is PriceSource.BACKEND_API
    clock.advance(4)
    again = await backend_client.get_price("bitcoin")  # fetched in the same batch as ethereum
    assert again is not None and again.source is PriceSource.BACKEND_REDIS
    assert again.age == 4
    assert coingecko.requests == 1


async def test_price_failures_are_none(backend: BackendStub, backend_client: BackendClient) -> None:
    assert await backend_client.get_price("no-such-coin") is None  # 404
    assert backend_client.available is True  # the backend is fine; it just has no such price
    backend.down = True
    assert await backend_client.get_price("ethereum") is None
    assert backend_client.available is False
