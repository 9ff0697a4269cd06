"""On-chain feeds, read from the dev chain (anvil) with the dev stack's MockV3Aggregators."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from web3 import AsyncWeb3

from autometa.chain.accounts import dev_role
from autometa.chain.deploy import set_dev_price
from autometa.chain.web3 import connect_async
from autometa.prices import CoinGeckoClient, ManualClock, OracleSource, PriceSource, TieredPriceAdapter
from tests.conftest import DevChain


@pytest.fixture
async def w3(dev_chain: DevChain) -> AsyncIterator[AsyncWeb3[Any]]:
    w3 = connect_async(dev_chain.url)
    yield w3
    await w3.provider.disconnect()


async def test_reads_latest_round(dev_chain: DevChain, w3: AsyncWeb3[Any]) -> None:
    oracle = OracleSource(w3, dev_chain.deployment.feeds)
    price = await oracle.get_price("ethereum")
    assert price is not None and price.source is PriceSource.ORACLE
    assert price.usd == Decimal("3250")
    set_dev_price(dev_chain.w3, dev_role("admin"), dev_chain.deployment.feeds["ethereum"], Decimal("3198.15"))
    assert (await oracle.get_price("ethereum")).usd == Decimal("3198.15")  # type: ignore[union-attr]
    assert await oracle.get_price("no-feed") is None


async def test_stale_answer_is_refused(dev_chain: DevChain, w3: AsyncWeb3[Any]) -> None:
    clock = ManualClock()
    clock.advance(3600)
    oracle = OracleSource(w3, dev_chain.deployment.feeds, max_age=600, clock=clock)
    assert await oracle.get_price("bitcoin") is None


async def test_oracle_is_the_last_resort(dev_chain: DevChain, w3: AsyncWeb3[Any]) -> None:
    oracle = OracleSource(w3, dev_chain.deployment.feeds)
    unreachable = CoinGeckoClient("http://127.0.0.1:9/api/v3/simple/price", max_attempts=1, timeout=1)
    adapter = TieredPriceAdapter(unreachable, oracle=oracle)
    price = await adapter.get("polkadot")
    await adapter.aclose()
    assert price is not None and price.source is PriceSource.ORACLE and price.usd == Decimal("7.1")
