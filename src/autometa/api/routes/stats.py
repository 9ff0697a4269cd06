"""Aggregates: success rate, gas, fees and trigger-to-inclusion latency, for everything, one
owner or one workflow."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from autometa.api.deps import StoreDep
from autometa.api.routes.executions import Since, Until, UserFilter, WorkflowFilter, time_range
from autometa.api.schemas import ErrorOut, StatsOut
from autometa.store import Store

router = APIRouter(prefix="/api", tags=["history"])
STATUS_ACTIVE = 1


def _compute(store: Store, user: str | None, workflow_id: int | None, since: object, until: object) -> StatsOut:
    stats = store.executions.stats(workflow_id=workflow_id, owner=user, since=since, until=until)  # type: ignore[arg-type]
    if workflow_id is not None:
        row = store.workflows.get(workflow_id)
        mine = row is not None and (user is None or row.owner == user)
        workflows, active = int(mine), int(mine and row is not None and row.status == STATUS_ACTIVE)
    else:
        workflows = store.workflows.count(owner=user)
        active = store.workflows.count(owner=user, status=STATUS_ACTIVE)
    attempts = stats.counts.get("success", 0) + stats.counts.get("failed", 0)
    scope = "workflow" if workflow_id is not None else "user" if user is not None else "global"
    return StatsOut(
        scope=scope,  # type: ignore[arg-type]
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


@router.get("/stats", response_model=StatsOut, responses={422: {"model": ErrorOut}})
async def stats(
    store: StoreDep,
    user: UserFilter = None,
    workflow_id: WorkflowFilter = None,
    since: Since = None,
    until: Until = None,
) -> StatsOut:
    """Global by default; `user` narrows to one owner, `workflow_id` to one workflow."""
    start, end = time_range(since, until)
    return await run_in_threadpool(_compute, store, user, workflow_id, start, end)
