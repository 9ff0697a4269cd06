"""Fixtures: real stand-in servers on loopback, a hand-moved clock, a Redis key prefix per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import pytest
from redis.asyncio import Redis

from autometa.prices import BackendClient, CoinGeckoClient, ManualClock, TieredPriceAdapter
from tests.support.coingecko_stub import BackendStub, CoinGeckoStub

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ASSETS = ["ethereum", "bitcoin", "moonbeam", "polkadot", "usd-coin", "tether"]
PRICES = {"ethereum": 3198.15, "bitcoin": 64000.5, "moonbeam": 0.25, "polkadot": 7.1, "usd-coin": 1.0, "tether": 1.0}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1_800_000_000.0)


@pytest.fixture(scope="session")
def coingecko_server() -> Iterator[CoinGeckoStub]:
    with CoinGeckoStub() as stub:
        yield stub


@pytest.fixture
def coingecko(coingecko_server: CoinGeckoStub) -> CoinGeckoStub:
    """The shared stand-in, reset to the standard prices and zero counts."""
    coingecko_server.reset(PRICES)
    return coingecko_server


@pytest.fixture
def backend(coingecko: CoinGeckoStub, clock: ManualClock) -> Iterator[BackendStub]:
    with BackendStub(coingecko.url, assets=ASSETS, clock=clock) as stub:
        yield stub


@pytest.fixture
async def cg_client(coingecko: CoinGeckoStub, clock: ManualClock) -> AsyncIterator[CoinGeckoClient]:
    client = CoinGeckoClient(coingecko.url, clock=clock, sleep=clock.sleep, timeout=2)
    yield client
    await client.aclose()


@pytest.fixture
async def backend_client(backend: BackendStub, clock: ManualClock) -> AsyncIterator[BackendClient]:
    client = BackendClient(backend.url, clock=clock, timeout=2)
    yield client
    await client.aclose()


@pytest.fixture
async def adapter(
    coingecko: CoinGeckoStub, backend: BackendStub, clock: ManualClock
) -> AsyncIterator[TieredPriceAdapter]:
    """Backend-first adapter, as a worker runs it with USE_BACKEND_INTEGRATION=true."""
    tiered = TieredPriceAdapter(
        CoinGeckoClient(coingecko.url, clock=clock, sleep=clock.sleep, timeout=2),
        BackendClient(backend.url, clock=clock, timeout=2),
        tracked=ASSETS,
        clock=clock,
    )
    yield tiered
    await tiered.aclose()


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception:
        pytest.skip(f"no Redis at {REDIS_URL}")
    yield client
    await client.aclose()


@pytest.fixture
async def redis_prefix(redis: Redis) -> AsyncIterator[str]:
    """A key prefix no other test uses; its keys are deleted afterwards."""
    prefix = f"test:autometa:price:{uuid.uuid4().hex}:"
    yield prefix
    keys = [k async for k in redis.scan_iter(match=prefix + "*")]
    if keys:
        await redis.delete(*keys)


def usd(value: float) -> Decimal:
    return Decimal(str(value))
