"""Which executors and schedulers are alive, from their heartbeats."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from autometa.api.deps import StoreDep
from autometa.api.schemas import WorkersOut
from autometa.api.views import worker_view

router = APIRouter(prefix="/api", tags=["workers"])


@router.get("/workers", response_model=WorkersOut)
async def workers(
    store: StoreDep, within_s: Annotated[float, Query(gt=0, le=86_400, description="alive = seen this recently")] = 60
) -> WorkersOut:
    """Workers seen in the last `within_s` seconds, most recent first."""
    rows = await run_in_threadpool(store.heartbeats.active, within_s)
    views = [worker_view(r) for r in rows]
    schedulers = [w for w in views if w.role == "scheduler"]
    holder = next((w.worker_id for w in schedulers if w.active), None)
    return WorkersOut(
        within_s=within_s,
        executors=sum(1 for w in views if w.role == "executor"),
        schedulers=len(schedulers),
        scheduler_active=holder is not None,
        lease_holder=holder,
        workers=views,
    )
