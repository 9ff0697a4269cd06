"""The backend's shared cache: Redis for real (unique prefix per test), and the in-process
store that the embedded mode uses."""

from __future__ import annotations

import asyncio
import json

import pytest
from redis.asyncio import Redis
from structlog.testing import capture_logs

from autometa.config import load_settings
from autometa.prices import CoinGeckoClient, ManualClock, MemoryStore, PriceSource, RedisStore, SharedPriceCache
from tests.support.coingecko_stub import CoinGeckoStub

from .conftest import ASSETS, PRICES, REDIS_URL, usd

pytestmark = pytest.mark.redis


async def test_redis_hit_after_one_upstream_batch(
    coingecko: CoinGeckoStub, redis: Redis, redis_prefix: str, clock: ManualClock
) -> None:
    cache = SharedPriceCache(
        CoinGeckoClient(coingecko.url, clock=clock),
        RedisStore.from_url(REDIS_URL),
        prefix=redis_prefix,
        tracked=ASSETS,
        clock=clock,
    )
    first = await cache.get("ethereum")
    assert first is not None and first.source is PriceSource.BACKEND_API
    clock.advance(3)
    second = await cache.get("polkadot")
    assert second is not None and second.source is PriceSource.BACKEND_REDIS
    assert second.usd == usd(PRICES["polkadot"]) and second.age == 3
    assert coingecko.requests == 1
    stored = json.loads(await redis.get(redis_prefix + "ethereum"))
    assert stored["usd"] == "3198.15"
    assert 29_000 < await redis.pttl(redis_prefix + "ethereum") <= 30_000
    await cache.aclose()


async def test_redis_single_flight(coingecko: CoinGeckoStub, redis_prefix: str, clock: ManualClock) -> None:
    coingecko.delay = 0.05
    cache = SharedPriceCache(
        CoinGeckoClient(coingecko.url, clock=clock),
        RedisStore.from_url(REDIS_URL),
        prefix=redis_prefix,
        tracked=ASSETS,
        clock=clock,
    )
    prices = await asyncio.gather(*(cache.get(ASSETS[i % len(ASSETS)]) for i in range(100)))
    await cache.aclose()
    assert all(p is not None for p in prices)
    assert coingecko.requests == 1


async def test_a_burst_larger_than_the_redis_pool_waits_for_connections(
    coingecko: CoinGeckoStub, redis_prefix: str, clock: ManualClock
) -> None:
    coingecko.delay = 0.02
    cache = SharedPriceCache(
        CoinGeckoClient(coingecko.url, clock=clock),
        RedisStore.from_url(REDIS_URL, max_connections=4),
        prefix=redis_prefix,
        tracked=ASSETS,
        clock=clock,
    )
    with capture_logs() as logs:
        prices = await asyncio.gather(*(cache.get(ASSETS[i % len(ASSETS)]) for i in range(300)))
    await cache.aclose()
    assert all(p is not None for p in prices)
    assert not [e for e in logs if e["event"] == "price_cache_unavailable"]
    assert coingecko.requests == 1


async def test_entries_expire_after_30s_by_the_clock(
    coingecko: CoinGeckoStub, redis_prefix: str, clock: ManualClock
) -> None:
    cache = SharedPriceCache(
        CoinGeckoClient(coingecko.url, clock=clock),
        RedisStore.from_url(REDIS_URL),
        prefix=redis_prefix,
        tracked=ASSETS,
        clock=clock,
    )
    await cache.get("ethereum")
    clock.advance(29.9)
    assert (await cache.get("ethereum")).source is PriceSource.BACKEND_REDIS  # type: ignore[union-attr]
    clock.advance(0.2)
    assert (await cache.get("ethereum")).source is PriceSource.BACKEND_API  # type: ignore[union-attr]
    await cache.aclose()
    assert coingecko.requests == 2


async def test_redis_outage_costs_calls_not_answers(coingecko: CoinGeckoStub, clock: ManualClock) -> None:
    cache = SharedPriceCache(
        CoinGeckoClient(coingecko.url, clock=clock),
        RedisStore(Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.5)),
        clock=clock,
    )
    price = await cache.get("ethereum")
    await cache.aclose()
    assert price is not None and price.source is PriceSource.BACKEND_API


async def test_memory_store_when_no_redis_url(coingecko: CoinGeckoStub, clock: ManualClock) -> None:
    settings = load_settings(PRICE_FEED_URL=coingecko.url, REDIS_URL=None, SUPPORTED_ASSETS=ASSETS)
    cache = SharedPriceCache.from_settings(settings)
    assert isinstance(cache._store, MemoryStore)
    assert (await cache.get("tether")).source is PriceSource.BACKEND_API  # type: ignore[union-attr]
    assert (await cache.get("usd-coin")).source is PriceSource.BACKEND_REDIS  # type: ignore[union-attr]
    await cache.aclose()
    assert coingecko.requests == 1


async def test_garbage_in_the_cache_is_a_miss(
    coingecko: CoinGeckoStub, redis: Redis, redis_prefix: str, clock: ManualClock
) -> None:
    await redis.set(redis_prefix + "ethereum", "not json", ex=30)
    cache = SharedPriceCache(
        CoinGeckoClient(coingecko.url, clock=clock),
        RedisStore.from_url(REDIS_URL),
        prefix=redis_prefix,
        clock=clock,
    )
    price = await cache.get("ethereum")
    await cache.aclose()
    assert price is not None and price.source is PriceSource.BACKEND_API
