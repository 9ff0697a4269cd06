"""The tiered adapter: the seed's checks 5-7 (adapter, cache performance, fallback) plus
single-flight, batching, configuration and metrics."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from autometa.config import load_settings
from autometa.prices import BackendClient, CoinGeckoClient, ManualClock, PriceSource, TieredPriceAdapter
from tests.support.coingecko_stub import BackendStub, CoinGeckoStub

from .conftest import ASSETS, PRICES, usd


def counter(kind: str, tier: str) -> float:
    return REGISTRY.get_sample_value(f"autometa_price_cache_{kind}_total", {"tier": tier}) or 0.0


async def test_enhanced_adapter_serves_from_backend(adapter: TieredPriceAdapter, backend: BackendStub) -> None:
    with capture_logs() as logs:
        price = await adapter.get("ethereum")
    assert price is not None and price.usd == usd(PRICES["ethereum"])
    assert price.source in (PriceSource.BACKEND_API, PriceSource.BACKEND_REDIS)
    assert str(price) == f"ethereum $3198.15 (from {price.source.value})"
    event = next(e for e in logs if e["event"] == "price" and e["asset"] == "ethereum")
    assert event["usd"] == "3198.15" and event["source"] == price.source.value
    assert backend.requests["/api/price/ethereum"] == 1


async def test_second_lookup_is_a_local_hit(
    adapter: TieredPriceAdapter, coingecko: CoinGeckoStub, backend: BackendStub, clock: ManualClock
) -> None:
    await adapter.get("ethereum")
    upstream, backend_calls = coingecko.requests, sum(backend.requests.values())
    hits = counter("hits", "local")
    clock.advance(5)
    started = time.perf_counter()
    price = await adapter.get("ethereum")
    elapsed = time.perf_counter() - started
    assert price is not None and price.source is PriceSource.LOCAL_CACHE
    assert price.age == 5
    assert elapsed < 0.005  # in-process; the seed promised < 1 ms
    assert (coingecko.requests, sum(backend.requests.values())) == (upstream, backend_calls)
    assert counter("hits", "local") == hits + 1


async def test_local_entry_expires_after_15s(adapter: TieredPriceAdapter, clock: ManualClock) -> None:
    await adapter.get("ethereum")
    clock.advance(14.9)
    assert (await adapter.get("ethereum")).source is PriceSource.LOCAL_CACHE  # type: ignore[union-attr]
    clock.advance(0.2)
    after = await adapter.get("ethereum")
    assert after is not None and after.source is PriceSource.BACKEND_REDIS  # backend's 30 s entry


async def test_falls_back_to_coingecko_when_backend_is_down(
    adapter: TieredPriceAdapter, backend: BackendStub, coingecko: CoinGeckoStub, clock: ManualClock
) -> None:
    backend.stop()
    with capture_logs() as logs:
        price = await adapter.get("ethereum")
    assert price is not None and price.source is PriceSource.COINGECKO_DIRECT
    assert price.usd == usd(PRICES["ethereum"])
    assert any(e["event"] == "backend_down_fallback" for e in logs)
    assert coingecko.requests == 1
    # While the backend is marked down, misses go straight to CoinGecko (no 10 s timeouts each).
    coingecko.prices["kusama"] = 20
    clock.advance(adapter.backend_retry_after - 1)
    with capture_logs() as logs:
        assert (await adapter.get("kusama")).source is PriceSource.COINGECKO_DIRECT  # type: ignore[union-attr]
    assert not any(e["event"] == "backend_unavailable" for e in logs)


async def test_backend_503_also_falls_back(adapter: TieredPriceAdapter, backend: BackendStub) -> None:
    backend.down = True
    price = await adapter.get("polkadot")
    assert price is not None and price.source is PriceSource.COINGECKO_DIRECT


async def test_single_flight_100_concurrent_gets(coingecko: CoinGeckoStub, clock: ManualClock) -> None:
    coingecko.delay = 0.05  # keep the flight open while the other 99 arrive
    adapter = TieredPriceAdapter(CoinGeckoClient(coingecko.url, clock=clock), tracked=ASSETS, clock=clock)
    prices = await asyncio.gather(*(adapter.get("ethereum") for _ in range(100)))
    await adapter.aclose()
    assert coingecko.requests == 1
    assert all(p is not None and p.usd == usd(PRICES["ethereum"]) for p in prices)


async def test_single_flight_through_the_backend(
    adapter: TieredPriceAdapter, coingecko: CoinGeckoStub, backend: BackendStub
) -> None:
    coingecko.delay = 0.05
    await asyncio.gather(*(adapter.get(a) for _ in range(20) for a in ASSETS))
    assert all(backend.requests[f"/api/price/{a}"] == 1 for a in ASSETS)
    assert coingecko.requests == 1


async def test_20_assets_in_one_upstream_call(coingecko: CoinGeckoStub, clock: ManualClock) -> None:
    assets = [f"token-{i}" for i in range(20)]
    coingecko.prices.update({a: 10 + i for i, a in enumerate(assets)})
    adapter = TieredPriceAdapter(CoinGeckoClient(coingecko.url, clock=clock), clock=clock)
    prices = await adapter.get_many(assets)
    assert len(prices) == 20 and coingecko.requests == 1
    # A later miss refreshes every tracked asset in the same single request.
    clock.advance(15)
    await adapter.get("token-0")
    await adapter.aclose()
    assert coingecko.requests == 2 and sorted(coingecko.request_ids[1]) == sorted(assets)


async def test_use_backend_integration_false_skips_backend(coingecko: CoinGeckoStub, backend: BackendStub) -> None:
    settings = load_settings(
        PRICE_FEED_URL=coingecko.url,
        BACKEND_API_URL=backend.url,
        USE_BACKEND_INTEGRATION=False,
        SUPPORTED_ASSETS=ASSETS,
    )
    adapter = TieredPriceAdapter.from_settings(settings)
    price = await adapter.get("ethereum")
    await adapter.aclose()
    assert price is not None and price.source is PriceSource.COINGECKO_DIRECT
    assert sum(backend.requests.values()) == 0
    assert sorted(coingecko.request_ids[0]) == sorted(ASSETS)  # the whole tracked set at once


async def test_unavailable_price_is_none_and_not_retried_at_once(coingecko: CoinGeckoStub, clock: ManualClock) -> None:
    adapter = TieredPriceAdapter(CoinGeckoClient(coingecko.url, clock=clock), clock=clock)
    assert await adapter.get("no-such-coin") is None
    assert await adapter.get("no-such-coin") is None  # remembered for negative_ttl
    assert coingecko.requests == 1
    clock.advance(adapter.negative_ttl)
    assert await adapter.get("no-such-coin") is None
    await adapter.aclose()
    assert coingecko.requests == 2


async def test_rate_limited_upstream_gives_none_not_an_exception(coingecko: CoinGeckoStub, clock: ManualClock) -> None:
    coingecko.fail_next(429, retry_after="3600")
    adapter = TieredPriceAdapter(CoinGeckoClient(coingecko.url, clock=clock, sleep=clock.sleep), clock=clock)
    with capture_logs() as logs:
        assert await adapter.get("ethereum") is None
    await adapter.aclose()
    assert any(e["event"] == "price_source_failed" for e in logs)


async def test_background_refresh_keeps_lookups_local(coingecko: CoinGeckoStub) -> None:
    adapter = TieredPriceAdapter(CoinGeckoClient(coingecko.url), tracked=ASSETS, local_ttl=0.5)
    adapter.start(interval=0.05)
    await asyncio.sleep(0.2)
    price = await adapter.get("bitcoin")
    await adapter.aclose()
    assert price is not None and price.source is PriceSource.LOCAL_CACHE
    assert coingecko.requests >= 2
    assert all(sorted(ids) == sorted(ASSETS) for ids in coingecko.request_ids)


async def test_miss_counters_per_tier(adapter: TieredPriceAdapter) -> None:
    before = {t: counter("misses", t) for t in ("local", "backend")}
    assert await adapter.get("no-such-coin") is None
    assert counter("misses", "local") == before["local"] + 1
    assert counter("misses", "backend") >= before["backend"] + 1


async def test_backend_only_adapter(backend: BackendStub, clock: ManualClock) -> None:
    client = BackendClient(backend.url, clock=clock)
    adapter = TieredPriceAdapter(None, client, clock=clock)
    assert (await adapter.get("tether")) is not None
    await adapter.aclose()
