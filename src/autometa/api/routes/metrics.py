"""`GET /metrics` in the Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from autometa.api.deps import ServicesDep
from autometa.api.metrics import render

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(services: ServicesDep) -> Response:
    """Price cache hits/misses per tier, executions by status, request and relayer latency,
    relayer transactions by outcome."""
    body = await run_in_threadpool(render, services.registry)  # the execution collector queries the store
    return Response(body, media_type=CONTENT_TYPE_LATEST)
