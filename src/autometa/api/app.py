"""The app factory: `create_app(settings)` for `autometa api`, `autometa up` and the tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from autometa import __version__
from autometa.api.dashboard import STATIC_DIR
from autometa.api.errors import install_handlers
from autometa.api.middleware import MAX_BODY_BYTES, BodyLimitMiddleware, MetricsMiddleware, PriceFastPath
from autometa.api.routes import (
    chains,
    dashboard,
    escrow,
    executions,
    metrics,
    notifications,
    price,
    stats,
    stream,
    utils,
    workers,
    workflow,
)
from autometa.api.services import Services
from autometa.config import Settings

log = structlog.get_logger("autometa.api")

DESCRIPTION = """Autometa's backend: a relayer for signed (EIP-712) workflow intents, a shared
price cache for workers, and history and statistics from the indexed store.

Creating a workflow: `POST /api/workflow/prepare` with the create body → sign `typed_data`
(eth_signTypedData_v4) with the owner's key → `POST /api/workflow/create` with the same body plus
`signature`, `nonce`, `deadline` and `max_relayer_fee_wei`. The relayer pays the gas and is
reimbursed from the owner's escrow, never more than the signed `max_relayer_fee_wei`."""


def create_app(settings: Settings, *, services: Services | None = None) -> FastAPI:
    """Build the API. Without `services` they are built from `settings` at start-up (inside the
    server's event loop) and closed at shutdown; given ones belong to the caller."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = services is None
        built = services if services is not None else await Services.from_settings(settings)
        app.state.services = built
        if built.relayer is not None:
            with contextlib.suppress(Exception):  # chain down at start: in-flight txs are followed later
                await built.relayer.sender.recover()
        log.info("api_started", relayer=built.relayer.address if built.relayer else None)
        delivering = _host_notifications(settings, built)
        try:
            yield
        finally:
            await delivering()
            if owned:
                await built.aclose()

    app = FastAPI(
        title="Autometa API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "utils", "description": "health and contract addresses"},
            {"name": "price", "description": "cached USD prices"},
            {"name": "workflow", "description": "signed creation and status changes; reads"},
            {"name": "history", "description": "executions and statistics"},
            {"name": "notifications", "description": "signed subscriptions, delivery log, re-send"},
        ],
    )
    if services is not None:
        app.state.services = services  # usable without the lifespan too (e.g. httpx.ASGITransport)
    install_handlers(app)
    app.state.stopping = asyncio.Event()  # set when the server starts shutting down (ends live streams)
    for router in (
        utils.router,
        chains.router,
        price.router,
        workflow.router,
        stream.router,
        executions.router,
        stats.router,
        workers.router,
        metrics.router,
        escrow.router,
        dashboard.router,
        notifications.router,
    ):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(BodyLimitMiddleware, limit=MAX_BODY_BYTES)
    app.add_middleware(PriceFastPath, state=app.state)  # inside CORS and metrics
    if settings.CORS_ORIGINS:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.CORS_ORIGINS,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-API-Key"],
            max_age=600,
        )
    app.add_middleware(MetricsMiddleware)
    if settings.API_KEY is None:
        _drop_api_key_from_schema(app)
    return app


def _drop_api_key_from_schema(app: FastAPI) -> None:
    """Without API_KEY no endpoint asks for `X-API-Key`: the schema must not say it does."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.get("components", {}).pop("securitySchemes", None)
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    if isinstance(operation, dict):
                        operation.pop("security", None)
        return app.openapi_schema or build()

    app.openapi = openapi  # type: ignore[method-assign]


def _host_notifications(settings: Settings, services: Services) -> Callable[[], Awaitable[None]]:
    """Run a notification delivery worker beside the API (NOTIFY_ENABLED); returns its stopper."""
    if not settings.NOTIFY_ENABLED:
        return _nothing
    from autometa.notify.service import serve

    stop = asyncio.Event()

    async def chain_id() -> int:
        return (await services.chain.info()).chain_id

    task = asyncio.create_task(serve(settings, services.store, stop, chain_id))

    async def halt() -> None:
        stop.set()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(task, 15)

    return halt


async def _nothing() -> None:
    return None
