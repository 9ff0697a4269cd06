"""API test fixtures: the session's dev chain (snapshot per test), the CoinGecko stand-in, and
the API's services on either backend — embedded (SQLite + in-process cache) or distributed
(a PostgreSQL database for this session, truncated per test, + Redis under a unique prefix)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from autometa.api import Services, create_app
from autometa.chain.accounts import dev_role
from autometa.chain.contracts import autometa
from autometa.chain.deploy import transact
from autometa.client import AsyncAutometaClient
from autometa.config import Settings
from autometa.store import Base, Store
from tests.conftest import DevChain, fresh_pg_database
from tests.support.coingecko_stub import CoinGeckoStub

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
PRICES = {"ethereum": 3198.15, "bitcoin": 64000.5, "moonbeam": 0.25, "polkadot": 7.1, "usd-coin": 1.0, "tether": 1.0}
USER = dev_role("user")
RELAYER = dev_role("relayer")
RECIPIENT = dev_role("recipient").address


@pytest.fixture(scope="session")
def coingecko_server() -> Iterator[CoinGeckoStub]:
    with CoinGeckoStub() as stub:
        yield stub


@pytest.fixture
def coingecko(coingecko_server: CoinGeckoStub) -> CoinGeckoStub:
    coingecko_server.reset(PRICES)
    return coingecko_server


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with fresh_pg_database("autometa_api_test") as url:
        Store.open(url).close()  # migrate once
        yield url


def settings_for(chain: DevChain, cg: CoinGeckoStub, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "MOONBASE_RPC": chain.url,
        "REGISTRY_ADDRESS": chain.deployment.address,
        "CHAIN_ID": 31337,
        "RELAYER_PRIVATE_KEY": "0x" + bytes(RELAYER.key).hex(),
        "PRICE_FEED_URL": cg.url,
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": f"sqlite:///{data_dir / 'api.db'}",
        "REDIS_URL": None,
        "RATE_LIMIT_PER_MINUTE": 1000,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class Api:
    settings: Settings
    services: Services
    client: httpx.AsyncClient  # raw HTTP, for bad inputs
    typed: AsyncAutometaClient
    chain: DevChain

    @property
    def store(self) -> Store:
        return self.services.store


@pytest.fixture(params=["embedded", pytest.param("distributed", marks=[pytest.mark.postgres, pytest.mark.redis])])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def embedded() -> str:
    return "embedded"


async def open_api(
    backend: str, chain: DevChain, cg: CoinGeckoStub, tmp_path: Path, pg_url: str | None, **overrides: Any
) -> tuple[Api, str]:
    prefix = f"test:autometa:api:{uuid.uuid4().hex[:12]}:"
    if backend == "distributed":
        assert pg_url is not None
        overrides = {"DATABASE_URL": pg_url, "REDIS_URL": REDIS_URL, **overrides}
    settings = settings_for(chain, cg, tmp_path, **overrides)
    services = await Services.from_settings(settings, redis_prefix=prefix)
    app = create_app(settings, services=services)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5555))
    client = httpx.AsyncClient(transport=transport, base_url="http://api.test", timeout=60)
    typed = AsyncAutometaClient("http://api.test", transport=transport, timeout=60)
    return Api(settings, services, client, typed, chain), prefix


async def close_api(api: Api, prefix: str) -> None:
    await api.client.aclose()
    await api.typed.aclose()
    if api.settings.REDIS_URL:
        redis = Redis.from_url(REDIS_URL)
        keys = [k async for k in redis.scan_iter(match=prefix + "*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
    if not api.store.is_sqlite:
        with api.store.engine.begin() as conn:
            names = ", ".join(t.name for t in Base.metadata.sorted_tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))
    await api.services.aclose()


@pytest.fixture
async def api(
    request: pytest.FixtureRequest, backend: str, dev_chain: DevChain, coingecko: CoinGeckoStub, tmp_path: Path
) -> AsyncIterator[Api]:
    pg = request.getfixturevalue("pg_url") if backend == "distributed" else None
    made, prefix = await open_api(backend, dev_chain, coingecko, tmp_path, pg)
    try:
        yield made
    finally:
        await close_api(made, prefix)


@pytest.fixture
async def api_embedded(dev_chain: DevChain, coingecko: CoinGeckoStub, tmp_path: Path) -> AsyncIterator[Api]:
    """Embedded backend only, for tests whose subject does not depend on the backend."""
    made, prefix = await open_api("embedded", dev_chain, coingecko, tmp_path, None)
    try:
        yield made
    finally:
        await close_api(made, prefix)


def deposit(chain: DevChain, account: Any, wei: int) -> None:
    transact(chain.w3, account, autometa(chain.w3, chain.deployment.address).functions.deposit(), value=wei)


def escrow_of(chain: DevChain, address: str) -> int:
    return int(autometa(chain.w3, chain.deployment.address).functions.balanceOf(address).call())


def chain_now(chain: DevChain) -> int:
    return int(chain.w3.eth.get_block("latest")["timestamp"])


def seed_body(owner: str | None = None, **extra: Any) -> dict[str, Any]:
    """The seed's example: ethereum below $3200 → send 1 coin to the recipient."""
    return {
        "user_address": owner or USER.address,
        "trigger_type": 2,
        "trigger_data": {"token": "ethereum", "comparator": 0, "price_usd": 3200},
        "action_type": 0,
        "action_data": {"to": RECIPIENT, "amount_wei": "1000000000000000000"},
        **extra,
    }
