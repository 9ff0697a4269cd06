"""Host the worker's roles on every configured chain in one process: one `run_worker` (one
`ChainLink`: its own queue, scheduler lease and executor key) per chain, all on one store.

A one-chain list is `run_worker` itself, so a single-chain deployment runs exactly as before.
With several, the API (if asked for) runs once, beside the first chain, serving every chain from
the shared store; a chain that fails (or a key refused at start-up) stops every chain, and its
error is raised once all are closed — a `ChainChanged` first."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from autometa.chain.identity import ChainChanged
from autometa.runtime.chain import ChainTarget
from autometa.runtime.host import ROLES, ApiRunner, Hosted, run_worker, serve_api

if TYPE_CHECKING:
    from autometa.chain.signers import Signer
    from autometa.config import Settings
    from autometa.store import Store


@dataclass(frozen=True)
class ChainRun:
    """One chain of a worker: its single-chain settings view (`Settings.for_chain`, which holds
    the chain's own executor key), where it is, and optionally a signer that overrides the key."""

    settings: Settings
    target: ChainTarget
    signer: Signer | None = None


async def run_chains(
    settings: Settings,
    chains: Sequence[ChainRun],
    roles: Sequence[str],
    stop: asyncio.Event,
    *,
    store: Store | None = None,
    in_memory_queue: bool = False,
    worker_id: str | None = None,
    api: ApiRunner | None = None,
    on_ready: Callable[[list[Hosted]], None] | None = None,
) -> None:
    """Run `roles` on every chain of `chains` until `stop` (or until one fails). `settings`: the
    deployment's settings (all chains) — the API's; `store`: shared by every chain (default: one
    opened from DATABASE_URL here and closed at the end)."""
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise ValueError(f"roles must be some of {', '.join(ROLES)} (got {', '.join(roles) or 'none'})")
    if not chains:
        raise ValueError("no chain to serve")
    ids = [(c.target.chain_id, c.target.contract) for c in chains]
    if len(set(ids)) != len(ids):
        raise ValueError("a chain and contract is listed twice")
    serve = api or serve_api

    async def api_all_chains(_chain_settings: Settings, shared: Store, stop_: asyncio.Event) -> None:
        await serve(settings, shared, stop_)  # every chain's routes, not only the first's

    if len(chains) == 1:
        (one,) = chains
        await run_worker(
            one.settings,
            one.target,
            roles,
            stop,
            store=store,
            in_memory_queue=in_memory_queue,
            signer=one.signer,
            worker_id=worker_id,
            api=api_all_chains,
            on_ready=(lambda hosted: on_ready([hosted])) if on_ready is not None else None,
        )
        return
    if store is None:
        from autometa.store import Store

        opened = await asyncio.to_thread(Store.open, settings.database_url)
        try:
            await _run_all(settings, chains, roles, stop, opened, in_memory_queue, worker_id, api_all_chains, on_ready)
        finally:
            opened.close()
    else:
        await _run_all(settings, chains, roles, stop, store, in_memory_queue, worker_id, api_all_chains, on_ready)


async def _run_all(
    settings: Settings,
    chains: Sequence[ChainRun],
    roles: Sequence[str],
    stop: asyncio.Event,
    store: Store,
    in_memory_queue: bool,
    worker_id: str | None,
    api: ApiRunner,
    on_ready: Callable[[list[Hosted]], None] | None,
) -> None:
    # The API once, beside the first chain; a chain left with no role opens no link.
    plan = [(c, [r for r in roles if r != "api" or i == 0]) for i, c in enumerate(chains)]
    plan = [(c, rs) for c, rs in plan if rs]
    ready: dict[int, Hosted] = {}

    def one_ready(index: int) -> Callable[[Hosted], None]:
        def mark(hosted: Hosted) -> None:
            ready[index] = hosted
            if len(ready) == len(plan) and on_ready is not None:
                on_ready([ready[i] for i in range(len(plan))])

        return mark

    async def one(index: int, chain: ChainRun, chain_roles: list[str]) -> None:
        try:
            await run_worker(
                chain.settings,
                chain.target,
                chain_roles,
                stop,
                store=store,
                in_memory_queue=in_memory_queue,
                signer=chain.signer,
                worker_id=worker_id,
                api=api,
                on_ready=one_ready(index),
            )
        except BaseException:
            stop.set()  # a refused start-up or a crash on one chain stops them all
            raise

    results: list[Any] = await asyncio.gather(
        *(one(i, c, rs) for i, (c, rs) in enumerate(plan)), return_exceptions=True
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    for exc in errors:
        if isinstance(exc, ChainChanged):
            raise exc
    if errors:
        raise errors[0]
