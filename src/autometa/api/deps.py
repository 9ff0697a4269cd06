"""Dependency-injection aliases for the routes, and the relayer guard (API key + rate limit)."""

from __future__ import annotations

import hmac
import math
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import APIKeyHeader

from autometa.api.chain import ChainGateway
from autometa.api.chains import ServedChain
from autometa.api.errors import ApiError, Unavailable
from autometa.api.relayer import Relayer
from autometa.api.services import Services
from autometa.config import Settings
from autometa.prices import SharedPriceCache
from autometa.store import Store


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_settings(services: ServicesDep) -> Settings:
    return services.settings


async def get_store(services: ServicesDep) -> Store:
    return services.store


async def get_prices(services: ServicesDep) -> SharedPriceCache:
    return services.prices


CHAIN_PARAM = (
    "the chain: a name from the API's chains (GET /api/chains) or a chain id; default: the first configured chain"
)
ChainParam = Annotated[str | None, Query(alias="chain", max_length=64, description=CHAIN_PARAM)]


async def get_served(services: ServicesDep, chain: ChainParam = None) -> ServedChain:
    """The chain the request names (`?chain=`), or the default one; 404 for a chain not served."""
    return services.chain_for(chain)


ServedDep = Annotated[ServedChain, Depends(get_served)]


async def get_chain(served: ServedDep) -> ChainGateway:
    return served.gateway


async def get_relayer(served: ServedDep) -> Relayer:
    if served.relayer is None:
        raise Unavailable(
            "relayer",
            f"the relayer is not configured on chain {served.label}: set RELAYER_SIGNER or RELAYER_PRIVATE_KEY "
            "(or relayer_signer in its CHAINS entry)",
        )
    return served.relayer


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
PricesDep = Annotated[SharedPriceCache, Depends(get_prices)]
ChainDep = Annotated[ChainGateway, Depends(get_chain)]
RelayerDep = Annotated[Relayer, Depends(get_relayer)]

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="needed when API_KEY is set")


async def relayer_guard(
    request: Request, services: ServicesDep, api_key: Annotated[str | None, Depends(api_key_header)]
) -> None:
    """API key (when configured), then one token from the client's bucket."""
    expected = services.settings.API_KEY
    if expected is not None:
        if api_key is None or not hmac.compare_digest(api_key.encode(), expected.get_secret_value().encode()):
            raise ApiError(401, "bad_api_key", "X-API-Key: missing or wrong", field="X-API-Key")
    client = request.client.host if request.client else "unknown"
    wait = await services.limiter.take(client)
    if wait > 0:
        raise ApiError(
            429,
            "rate_limited",
            f"too many relayer requests; retry in {wait:.1f} s",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


RelayerGuard = Depends(relayer_guard)
