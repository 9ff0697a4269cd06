"""The API inside `autometa up`: same store as the workers, prices from the dev chain's feeds
(the machine may have no internet, and the feeds are what the contract checks anyway)."""

from __future__ import annotations

import asyncio

from autometa.api.app import create_app
from autometa.api.server import _EmbeddedServer, uvicorn_config
from autometa.api.services import Services
from autometa.chain.web3 import connect_async
from autometa.config import Settings
from autometa.prices import OracleSource, SharedPriceCache
from autometa.store import Store


def make_api_runner(feeds: dict[str, str]):  # type: ignore[no-untyped-def]
    async def run(settings: Settings, store: Store, stop: asyncio.Event) -> None:
        prices = SharedPriceCache(OracleSource(connect_async(settings.rpc_url), feeds), tracked=tuple(feeds))
        services = await Services.from_settings(settings, store=store, prices=prices)
        server = _EmbeddedServer(uvicorn_config(settings, create_app(settings, services=services)))
        task = asyncio.create_task(server.serve())
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([task, stopper], return_when=asyncio.FIRST_COMPLETED)
        finally:
            server.should_exit = True
            stopper.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await services.aclose()
            await prices.aclose()
        if not stop.is_set():
            raise RuntimeError(f"the API stopped: is {settings.API_HOST}:{settings.API_PORT} free?")

    return run
