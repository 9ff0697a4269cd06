"""Heartbeats of the processes that have no other (schedulers, the API): who runs, where (host,
pid), on which chain, and which scheduler holds the lease — what `GET /api/workers` shows."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from autometa import __version__
from autometa.store import Store
from autometa.worker.lease import Lease

log = structlog.get_logger("autometa.worker.presence")

Extra = Callable[[], Awaitable[dict[str, Any]]]


async def keep_heartbeat(
    store: Store,
    worker_id: str,
    role: str,
    stop: asyncio.Event,
    extra: Extra,
    every_s: float = 5.0,
    wake: asyncio.Event | None = None,
    chain_id: int | None = None,
) -> None:
    """Beat every `every_s` until `stop`, then remove the row (a clean stop is no dead worker).

    `wake` beats at once: a scheduler taking or losing the lease is news for `GET /api/workers`
    now, not at the next beat. The row is keyed by `chain_id` (by default the `chain_id` the
    details name, else 0: a process bound to no chain)."""
    host, pid = socket.gethostname(), os.getpid()
    try:
        while not stop.is_set():
            try:
                details = await extra()
                if chain_id is None:
                    chain_id = int(details.get("chain_id") or 0)
                await asyncio.to_thread(
                    store.heartbeats.beat,
                    chain_id,
                    worker_id,
                    role,
                    None,
                    __version__,
                    host=host,
                    pid=pid,
                    extra=details,
                )
            except Exception as exc:  # liveness is reporting, never a reason to stop working
                log.warning("heartbeat_failed", role=role, error=str(exc))
            await _wait_either(stop, wake, every_s)
    finally:
        with contextlib.suppress(Exception):
            if chain_id is not None:
                await asyncio.to_thread(store.heartbeats.remove, chain_id, worker_id)


async def _wait_either(stop: asyncio.Event, wake: asyncio.Event | None, timeout_s: float) -> None:
    waits = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waits.append(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
        if wake is not None:
            wake.clear()


def scheduler_extra(lease: Lease, chain_id: int) -> Extra:
    """A scheduler's details: its chain, whether it is the active one, and who holds the lease."""

    async def details() -> dict[str, Any]:
        holder: str | None = lease.holder
        current = getattr(lease, "current_holder", None)
        if current is not None:
            holder = await current()
        return {"chain_id": chain_id, "active": holder == lease.holder, "lease_holder": holder}

    return details


def fixed_extra(**values: Any) -> Extra:
    async def details() -> dict[str, Any]:
        return dict(values)

    return details
