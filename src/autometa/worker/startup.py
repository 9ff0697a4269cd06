"""What a worker says when it starts: whether the backend is there, and which contracts it
reports (the seed's start-up lines), before falling back to direct prices if it is not."""

from __future__ import annotations

import structlog

from autometa.config import Settings
from autometa.prices.backend import BackendClient

log = structlog.get_logger("autometa.worker")


async def check_backend(settings: Settings, client: BackendClient | None = None) -> bool:
    """Log the backend's health and contract addresses; never fails the start-up."""
    if not settings.USE_BACKEND_INTEGRATION:
        log.info("backend integration disabled: prices from on-chain feeds and CoinGecko direct")
        return False
    backend = client or BackendClient(settings.BACKEND_API_URL)
    try:
        if not await backend.health_check():  # one line either way: healthy, or the fallback
            log.warning(
                "backend is not available: the worker falls back to direct CoinGecko prices",
                url=settings.BACKEND_API_URL,
            )
            return False
        log.info("backend is healthy", url=settings.BACKEND_API_URL)
        addresses = await backend.get_contract_addresses()
        if addresses:
            log.info(
                "backend contract addresses",
                WorkflowRegistry=addresses.get("WorkflowRegistry"),
                ActionExecutor=addresses.get("ActionExecutor"),
                FeeEscrow=addresses.get("FeeEscrow"),
            )
        return True
    finally:
        if client is None:
            await backend.aclose()
