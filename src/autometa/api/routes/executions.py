"""Execution history from the store, filtered and paginated."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BeforeValidator, WithJsonSchema
from starlette.concurrency import run_in_threadpool

from autometa.api.deps import ServicesDep, StoreDep
from autometa.api.schemas import MAX_WORKFLOW_ID, ErrorOut, ExecutionPageOut
from autometa.api.services import Services
from autometa.api.views import execution_view
from autometa.domain.types import Address

router = APIRouter(prefix="/api", tags=["history"])

StatusFilter = Literal["success", "failed", "skipped", "pending"]
WorkflowFilter = Annotated[int | None, Query(ge=1, le=MAX_WORKFLOW_ID, description="one workflow")]
UserFilter = Annotated[Address | None, Query(description="workflows of this owner")]
ChainFilter = Annotated[
    str | None,
    Query(
        max_length=64,
        description="only this chain (name or id); default: every served chain, or the first one "
        "with `workflow_id` (an id means a workflow of one chain)",
    ),
]
LAST_MOMENT = 4_102_444_800  # 2100-01-01: beyond it a number is more likely milliseconds than seconds


def _moment(value: Any) -> Any:
    """Unix seconds (0 … 2100) as a datetime; anything else goes to pydantic's ISO 8601 parsing."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return value
    if not 0 <= seconds <= LAST_MOMENT:
        raise ValueError(f"unix seconds must be between 0 and {LAST_MOMENT}")
    return datetime.fromtimestamp(seconds, UTC)


# The schema says both forms the API takes (issue 13 item 19).
Moment = Annotated[
    datetime,
    BeforeValidator(_moment),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "number", "minimum": 0, "maximum": LAST_MOMENT}]}
    ),
]
Since = Annotated[Moment | None, Query(description="from (inclusive): ISO 8601 or unix seconds")]
Until = Annotated[Moment | None, Query(description="until (exclusive): ISO 8601 or unix seconds")]


async def chain_scope(services: Services, chain: str | None, workflow_id: int | None) -> tuple[int, str] | None:
    """The (chain id, contract) a history query is about: the chain it names, the default chain
    for one workflow, else None (every chain). A chain not served is a 404."""
    if chain is None and workflow_id is None:
        return None
    return await services.chain_for(chain).key()


def time_range(since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None]:
    """Naive times are UTC; an empty range is a client error, not an empty answer."""
    since = since.replace(tzinfo=UTC) if since is not None and since.tzinfo is None else since
    until = until.replace(tzinfo=UTC) if until is not None and until.tzinfo is None else until
    # An empty or reversed window is no error, just empty: the schema cannot say "until > since",
    # so the API does not ask it (issue 13 item 19).
    return since, until


@router.get("/executions", response_model=ExecutionPageOut, responses={c: {"model": ErrorOut} for c in (404, 422)})
async def executions(
    store: StoreDep,
    services: ServicesDep,
    chain: ChainFilter = None,
    workflow_id: WorkflowFilter = None,
    user: UserFilter = None,
    status: Annotated[StatusFilter | None, Query()] = None,
    since: Since = None,
    until: Until = None,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> ExecutionPageOut:
    """Run attempts, newest first: on-chain facts (gas, fee, block) merged with the executor's
    (price source, trigger time, latency)."""
    since, until = time_range(since, until)
    scope = await chain_scope(services, chain, workflow_id)
    page = await run_in_threadpool(
        lambda: store.executions.list(
            chain_id=scope[0] if scope else None,
            contract=scope[1] if scope else None,
            workflow_id=workflow_id,
            owner=user,
            status=status,
            since=since,
            until=until,
            offset=offset,
            limit=limit,
        )
    )
    return ExecutionPageOut(
        items=[execution_view(r) for r in page.items], total=page.total, offset=page.offset, limit=page.limit
    )
