"""The API inside `autometa up`: same store as the workers, prices from the dev chain's feeds
(the machine may have no internet, and the feeds are what the contract checks anyway)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from autometa.api.server import run_api
from autometa.chain.web3 import close_async, connect_async
from autometa.config import Settings
from autometa.prices import OracleSource, SharedPriceCache
from autometa.prices.models import Price, PriceSource
from autometa.runtime import ApiRunner
from autometa.store import Store


class OraclePriceCache(SharedPriceCache):
    """The dev chain's prices say where they come from: `oracle`, aged by the feed's own update
    time (workers read any source but `backend-redis` as a backend answer, as before)."""

    async def get_many(self, assets: Iterable[str]) -> dict[str, Price]:
        found = await super().get_many(assets)
        now = time.time()
        return {asset: price.served(PriceSource.ORACLE, now) for asset, price in found.items()}


def make_api_runner(feeds: dict[str, str], rpc_url: str | None = None) -> ApiRunner:
    """`rpc_url`: the chain whose feeds price the API (default: the settings' chain; `up
    --chains N` names its first chain, since CHAINS settings have no single endpoint)."""

    async def run(settings: Settings, store: Store, stop: asyncio.Event) -> None:
        w3 = connect_async(rpc_url or settings.rpc_url)
        prices = OraclePriceCache(OracleSource(w3, feeds), tracked=tuple(feeds))
        try:
            await run_api(settings, store, stop, prices=prices)
        finally:
            await prices.aclose()
            await close_async(w3)

    return run
