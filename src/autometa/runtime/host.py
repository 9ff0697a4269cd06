"""Host a set of roles — scheduler, executor, API — on one chain in one process until `stop`.

Each `autometa scheduler` / `autometa executor` process is this with one role; `autometa worker
--role scheduler --role executor --role api` and `autometa up` run all three in one process
(one interpreter, one store connection pool: about a third of the memory of three processes). A
role that crashes stops the others, and its error is raised once everything is closed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from autometa.chain.identity import ChainChanged
from autometa.runtime.chain import ChainLink, ChainTarget

if TYPE_CHECKING:
    from autometa.chain.signers import Signer
    from autometa.config import Settings
    from autometa.runtime.executor import ExecutorRuntime
    from autometa.runtime.scheduler import SchedulerRuntime
    from autometa.store import Store

log = structlog.get_logger("autometa.runtime")

ROLES = ("scheduler", "executor", "api")


class ServiceFailed(Exception):
    """A hosted role failed; the others were stopped. The role's own error is the cause."""


ApiRunner = Callable[["Settings", "Store", asyncio.Event], Coroutine[Any, Any, None]]


@dataclass
class Hosted:
    """What a `run_worker` call runs, for `on_ready` (the `up` banner) and tests to look inside."""

    link: ChainLink
    scheduler: SchedulerRuntime | None = None
    executor: ExecutorRuntime | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)


async def serve_api(settings: Settings, store: Store, stop: asyncio.Event) -> None:
    """The API on API_HOST:API_PORT with the worker's store (prices from the settings)."""
    from autometa.api.server import run_api

    await run_api(settings, store, stop)


async def run_worker(
    settings: Settings,
    target: ChainTarget,
    roles: Sequence[str],
    stop: asyncio.Event,
    *,
    store: Store | None = None,
    in_memory_queue: bool = False,
    signer: Signer | None = None,
    worker_id: str | None = None,
    api: ApiRunner | None = None,
    on_ready: Callable[[Hosted], None] | None = None,
) -> None:
    """Run `roles` on `target` until `stop` (or until one fails: then the others stop, and the
    failure — a `ChainChanged` first — is raised after everything is closed)."""
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise ValueError(f"roles must be some of {', '.join(ROLES)} (got {', '.join(roles) or 'none'})")
    async with ChainLink(settings, target, store=store, in_memory_queue=in_memory_queue) as link:
        async with contextlib.AsyncExitStack() as runtimes:
            hosted = Hosted(link)
            services: dict[str, Coroutine[Any, Any, None]] = {}
            if "executor" in roles:  # first: a key that may not execute stops start-up early
                from autometa.runtime.executor import ExecutorRuntime

                hosted.executor = await runtimes.enter_async_context(
                    ExecutorRuntime(link, signer=signer, worker_id=worker_id)
                )
                services["executor"] = hosted.executor.run(stop)
            if "scheduler" in roles:
                from autometa.runtime.scheduler import SchedulerRuntime

                hosted.scheduler = await runtimes.enter_async_context(SchedulerRuntime(link))
                services["scheduler"] = hosted.scheduler.run(stop)
            if "api" in roles:
                services["api"] = (api or serve_api)(settings, link.store, stop)
            services["chain-watch"] = link.watch(stop)
            await _serve(hosted, services, stop, on_ready)


async def _serve(
    hosted: Hosted,
    services: dict[str, Coroutine[Any, Any, None]],
    stop: asyncio.Event,
    on_ready: Callable[[Hosted], None] | None,
) -> None:
    hosted.tasks = [asyncio.create_task(coro, name=name) for name, coro in services.items()]
    stopper = asyncio.create_task(stop.wait())
    try:
        if on_ready is not None:
            on_ready(hosted)
        await asyncio.wait([*hosted.tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.set()
        await asyncio.gather(*hosted.tasks, return_exceptions=True)
        stopper.cancel()
    failed = [(t.get_name(), t.exception()) for t in hosted.tasks if not t.cancelled() and t.exception() is not None]
    for name, exc in failed:
        log.error("service crashed; stopping", service=name, error=repr(exc))
    for _, exc in failed:
        if isinstance(exc, ChainChanged):
            raise exc
    if failed:
        name, exc = failed[0]
        raise ServiceFailed(f"the {name} stopped: {type(exc).__name__}: {exc}"[:500]) from exc
