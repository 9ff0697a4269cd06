"""Prices from the shared cache (Redis with a 30 s TTL, or in-process), one upstream fetch per
window however many workers ask."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from autometa.api.deps import ServicesDep
from autometa.api.errors import ApiError, Unavailable
from autometa.api.schemas import AssetsOut, ErrorOut, PriceOut

router = APIRouter(prefix="/api/price", tags=["price"])


@router.get("/assets", response_model=AssetsOut)
async def assets(services: ServicesDep) -> AssetsOut:
    """The CoinGecko ids this backend prices (SUPPORTED_ASSETS)."""
    return AssetsOut(assets=list(services.settings.SUPPORTED_ASSETS))


@router.get("/{symbol}", response_model=PriceOut, responses={404: {"model": ErrorOut}, 503: {"model": ErrorOut}})
async def price(symbol: str, services: ServicesDep) -> JSONResponse:
    """USD price of `symbol`, with where it came from (`backend-redis` = cached, `backend-api` =
    fetched now) and its age in seconds."""
    supported = services.settings.SUPPORTED_ASSETS
    if symbol not in supported:
        raise ApiError(
            404,
            "unknown_asset",
            f"symbol: {symbol[:64]!r} is not supported; supported: {', '.join(supported)}",
            field="symbol",
            details={"supported": list(supported)},
        )
    found = await services.prices.get(symbol)
    if found is None:
        raise Unavailable("price", f"no price for {symbol} right now (upstream unavailable); retry shortly")
    return JSONResponse(found.to_payload())  # already the PriceOut shape; skip re-validation on the hot path
