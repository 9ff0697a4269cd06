"""Aggregates: success rate, gas, fees and trigger-to-inclusion latency, for everything, one
owner or one workflow."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from autometa.api.deps import ServicesDep, StoreDep
from autometa.api.routes.executions import (
    ChainFilter,
    Since,
    Until,
    UserFilter,
    WorkflowFilter,
    chain_scope,
    time_range,
)
from autometa.api.schemas import ErrorOut, StatsOut
from autometa.store import Store

router = APIRouter(prefix="/api", tags=["history"])
STATUS_ACTIVE = 1


def _compute(
    store: Store,
    scope: tuple[int, str] | None,
    user: str | None,
    workflow_id: int | None,
    since: object,
    until: object,
) -> StatsOut:
    chain_id, contract = scope if scope is not None else (None, None)
    stats = store.executions.stats(
        chain_id=chain_id,
        contract=contract,
        workflow_id=workflow_id,
        owner=user,
        since=since,  # type: ignore[arg-type]
        until=until,  # type: ignore[arg-type]
    )
    if workflow_id is not None:
        assert scope is not None  # chain_scope names a chain whenever a workflow is named
        row = store.workflows.get(scope[0], scope[1], workflow_id)
        mine = row is not None and (user is None or row.owner == user)
        workflows, active = int(mine), int(mine and row is not None and row.status == STATUS_ACTIVE)
    else:
        workflows = store.workflows.count(chain_id=chain_id, contract=contract, owner=user)
        active = store.workflows.count(chain_id=chain_id, contract=contract, owner=user, status=STATUS_ACTIVE)
    attempts = stats.counts.get("success", 0) + stats.counts.get("failed", 0)
    level = "workflow" if workflow_id is not None else "user" if user is not None else "global"
    return StatsOut(
        scope=level,  # type: ignore[arg-type]
        user=user,
        workflow_id=workflow_id,
        total=stats.total,
        counts=stats.counts,  # type: ignore[arg-type]
        success_rate=stats.success_rate,
        total_gas_used=stats.total_gas,
        avg_gas_per_run=stats.total_gas / attempts if attempts else None,
        total_fees_wei=stats.total_fees,
        avg_latency_s=stats.avg_latency_s,
        p50_latency_s=stats.p50_latency_s,
        p95_latency_s=stats.p95_latency_s,
        workflows=workflows,
        active_workflows=active,
    )


@router.get("/stats", response_model=StatsOut, responses={c: {"model": ErrorOut} for c in (404, 422)})
async def stats(
    store: StoreDep,
    services: ServicesDep,
    chain: ChainFilter = None,
    user: UserFilter = None,
    workflow_id: WorkflowFilter = None,
    since: Since = None,
    until: Until = None,
) -> StatsOut:
    """Global (every served chain) by default; `chain` narrows to one chain, `user` to one owner,
    `workflow_id` to one workflow (of `chain`, default the first served)."""
    start, end = time_range(since, until)
    scope = await chain_scope(services, chain, workflow_id)
    return await run_in_threadpool(_compute, store, scope, user, workflow_id, start, end)
