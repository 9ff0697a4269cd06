"""`GET /api/executions/stream`: the live feed of executions as server-sent events.

The API and the workers may be separate processes, so the feed polls the store (by id cursor)
rather than listening in-process. A row changes after it first appears (the executor reports,
then the indexer adds gas and fee, in either order), so rows seen recently are re-read and sent
again when they change. The stream ends when the client goes away (Starlette cancels it) and when
the server shuts down (`app.state.stopping`, set by `autometa.api.server`), so Ctrl-C never waits
on an open dashboard; it also ends after MAX_STREAM_S and the browser reconnects with
Last-Event-ID, losing nothing."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import ColumnElement, exists, func, or_, select
from starlette.concurrency import run_in_threadpool

from autometa.api.dashboard.schemas import ExecutionEventOut
from autometa.api.deps import ServicesDep, StoreDep
from autometa.api.errors import invalid
from autometa.api.routes.executions import ChainFilter, UserFilter, WorkflowFilter, chain_scope
from autometa.api.schemas import ErrorOut
from autometa.api.views import execution_view
from autometa.domain.types import price_from_int
from autometa.store import Execution, Store
from autometa.store import Workflow as WorkflowRow

router = APIRouter(prefix="/api", tags=["history"])

POLL_S = 0.5
KEEPALIVE_S = 15.0
MAX_STREAM_S = 600.0
WATCH_S = 180.0  # how long a row is re-read for changes after it first appeared
MAX_WATCHED = 500
BATCH = 200
RETRY_MS = 2000


@dataclass
class Feed:
    """The cursor and the recently seen rows of one stream."""

    store: Store
    where: list[ColumnElement[bool]]
    cursor: int = 0
    seen: dict[int, tuple[tuple[Any, ...], float]] = field(default_factory=dict)  # id → (fingerprint, first seen)

    def tail(self, backlog: int) -> list[Execution]:
        """Start at the newest row; return the last `backlog` rows, oldest first."""
        with self.store.session() as session:
            self.cursor = int(session.scalar(select(func.coalesce(func.max(Execution.id), 0))) or 0)
            if backlog <= 0:
                return []
            rows = session.scalars(
                select(Execution).where(*self.where).order_by(Execution.id.desc()).limit(backlog)
            ).all()
        return list(reversed(rows))

    def poll(self) -> list[Execution]:
        """Rows past the cursor and watched rows, oldest first."""
        now = time.monotonic()
        for key in [k for k, (_, first) in self.seen.items() if now - first > WATCH_S]:
            del self.seen[key]
        watched = list(self.seen)
        recent = Execution.id > self.cursor
        with self.store.session() as session:
            rows = session.scalars(
                select(Execution)
                .where(or_(recent, Execution.id.in_(watched)) if watched else recent, *self.where)
                .order_by(Execution.id)
                .limit(BATCH + len(watched))
            ).all()
        return list(rows)

    def changed(self, rows: Sequence[Execution]) -> list[Execution]:
        """The rows that are new or differ from what this stream last sent; moves the cursor."""
        out: list[Execution] = []
        now = time.monotonic()
        for row in rows:
            mark = _fingerprint(row)
            previous = self.seen.get(row.id)
            if previous is None or previous[0] != mark:
                out.append(row)
                self.seen[row.id] = (mark, previous[1] if previous else now)
            self.cursor = max(self.cursor, row.id)
        while len(self.seen) > MAX_WATCHED:
            del self.seen[min(self.seen)]
        return out


def _fingerprint(row: Execution) -> tuple[Any, ...]:
    return (
        row.status,
        row.tx_hash,
        row.block_number,
        row.gas_used,
        row.fee,
        row.price,
        row.price_source,
        row.latency_s,
        row.revert_reason,
    )


def event_view(row: Execution) -> ExecutionEventOut:
    base = execution_view(row).model_dump()
    return ExecutionEventOut(**base, price_usd=str(price_from_int(row.price)) if row.price else None)


def sse(row: Execution, cursor: int) -> str:
    return f"id: {cursor}\nevent: execution\ndata: {event_view(row).model_dump_json()}\n\n"


def _filters(scope: tuple[int, str] | None, workflow_id: int | None, user: str | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if scope is not None:
        where += [Execution.chain_id == scope[0], Execution.contract == scope[1]]
    if workflow_id is not None:
        where.append(Execution.workflow_id == workflow_id)
    if user is not None:
        where.append(
            exists().where(
                WorkflowRow.chain_id == Execution.chain_id,
                WorkflowRow.contract == Execution.contract,
                WorkflowRow.id == Execution.workflow_id,
                WorkflowRow.owner == user,
            )
        )
    return where


async def _events(feed: Feed, backlog: int, resume: bool, stopping: asyncio.Event | None) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MS}\n\n"
    if not resume:
        for row in await run_in_threadpool(feed.tail, backlog):
            for changed in feed.changed([row]):
                yield sse(changed, feed.cursor)
    started = last_sent = time.monotonic()
    while time.monotonic() - started < MAX_STREAM_S:
        for row in feed.changed(await run_in_threadpool(feed.poll)):
            yield sse(row, feed.cursor)
            last_sent = time.monotonic()
        if time.monotonic() - last_sent > KEEPALIVE_S:
            yield ": keepalive\n\n"
            last_sent = time.monotonic()
        if stopping is None:
            await asyncio.sleep(POLL_S)
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), POLL_S)
        if stopping.is_set():
            return


@router.get(
    "/executions/stream",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "`execution` events (ExecutionEventOut)"},
        404: {"model": ErrorOut},
        422: {"model": ErrorOut},
    },
)
async def stream(
    request: Request,
    store: StoreDep,
    services: ServicesDep,
    chain: ChainFilter = None,
    workflow_id: WorkflowFilter = None,
    user: UserFilter = None,
    backlog: Annotated[int, Query(ge=0, le=BATCH, description="send the last N executions first")] = 0,
    after_id: Annotated[int | None, Query(ge=0, le=2**63 - 1, description="resume after this event id")] = None,
    last_event_id: Annotated[str | None, Header(max_length=32)] = None,
) -> StreamingResponse:
    """Executions as they happen (event `execution`, data = ExecutionEventOut): new rows, and rows
    that changed (pending → success, gas and fee filled in). The event id is a cursor: reconnecting
    with Last-Event-ID (browsers do) or `after_id` resumes after it."""
    if last_event_id is not None:
        if not (last_event_id.isascii() and last_event_id.isdigit()):
            raise invalid("Last-Event-ID", "must be an event id this stream sent")
        after_id = int(last_event_id)
    feed = Feed(store, _filters(await chain_scope(services, chain, workflow_id), workflow_id, user))
    if after_id is not None:
        feed.cursor = after_id
    stopping = getattr(request.app.state, "stopping", None)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(
        _events(feed, backlog, after_id is not None, stopping), media_type="text/event-stream", headers=headers
    )
