"""Health and contract addresses: what a worker asks first."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from autometa import __version__
from autometa.api.chain import ChainGateway
from autometa.api.deps import ServedDep, ServicesDep
from autometa.api.errors import Unavailable
from autometa.api.schemas import AdminPendingOut, ContractsOut, ErrorOut, HealthComponent, HealthOut, PendingChangeOut
from autometa.api.services import Services
from autometa.chain.admin import pending_changes_async

router = APIRouter(prefix="/api/utils", tags=["utils"])
PROBE_TIMEOUT_S = 3.0


async def _chain(gateway: ChainGateway, out: dict[str, object]) -> HealthComponent:
    try:
        info = await asyncio.wait_for(gateway.info(), PROBE_TIMEOUT_S)
        number, _ = await asyncio.wait_for(gateway.head(max_age=0), PROBE_TIMEOUT_S)
    except Exception as exc:
        return HealthComponent(ok=False, detail=getattr(exc, "message", None) or type(exc).__name__)
    out.update(chain_id=info.chain_id, latest_block=number, contract=info.contract)
    return HealthComponent(ok=True)


async def _database(services: Services) -> HealthComponent:
    def ping() -> None:
        with services.store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(run_in_threadpool(ping), PROBE_TIMEOUT_S)
    except Exception as exc:
        return HealthComponent(ok=False, detail=type(exc).__name__)
    return HealthComponent(ok=True, detail=services.store.engine.dialect.name)


async def _redis(services: Services) -> HealthComponent:
    if services.redis is None:
        return HealthComponent(ok=True, detail="not configured: in-process cache and rate limits")
    try:
        await asyncio.wait_for(services.redis.ping(), PROBE_TIMEOUT_S)
    except Exception as exc:
        return HealthComponent(ok=False, detail=type(exc).__name__)
    return HealthComponent(ok=True, detail="connected")


@router.get(
    "/healthz",
    response_model=HealthOut,
    responses={
        404: {"model": ErrorOut, "description": "`chain` names no chain this API serves"},
        503: {"model": HealthOut, "description": "a dependency is down (body says which)"},
    },
)
async def healthz(services: ServicesDep, served: ServedDep) -> JSONResponse:
    """Chain (`chain`, default the first served), database and Redis, probed now. 503 when any is
    down, so load balancers notice."""
    extra: dict[str, object] = {}
    chain, database, redis = await asyncio.gather(_chain(served.gateway, extra), _database(services), _redis(services))
    ok = chain.ok and database.ok and redis.ok
    body = HealthOut(
        status="ok" if ok else "degraded",
        version=__version__,
        chain=chain,
        database=database,
        redis=redis,
        **extra,  # type: ignore[arg-type]
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if ok else 503)


@router.get("/contracts", response_model=ContractsOut, responses={c: {"model": ErrorOut} for c in (404, 503)})
async def contracts(served: ServedDep) -> ContractsOut:
    """The seed's WorkflowRegistry / ActionExecutor / FeeEscrow: all three are the one Autometa contract
    (of `chain`, default the first served)."""
    info = await served.gateway.info()
    return ContractsOut(
        WorkflowRegistry=info.contract, ActionExecutor=info.contract, FeeEscrow=info.contract, chain_id=info.chain_id
    )


@router.get("/admin/pending", response_model=AdminPendingOut, responses={c: {"model": ErrorOut} for c in (404, 503)})
async def admin_pending(served: ServedDep) -> AdminPendingOut:
    """Admin changes waiting in the contract's timelock (allowing an executor, a feed, a higher
    premium or tip cap), each with the time from which it may apply: owners can leave first."""
    core = await served.gateway.core()
    try:
        changes = await pending_changes_async(core)
        delay = int(await core.functions.timelockDelay().call())
        _, premium_bps, _ = await core.functions.config().call()
        max_tip = int(await core.functions.maxTipPerGas().call())
        _, now = await served.gateway.head(max_age=0)
    except Exception as exc:
        raise Unavailable("chain", f"cannot read the pending admin changes: {type(exc).__name__}") from None
    return AdminPendingOut(
        timelock_seconds=delay,
        premium_bps=int(premium_bps),
        max_tip_wei=max_tip,
        changes=[PendingChangeOut(**c.as_dict(now)) for c in changes],
    )
