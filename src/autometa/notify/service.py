"""Hosting delivery in a process: build the worker from settings, bring the operator's
subscriptions from the configuration into the store, run until stopped. `autometa api`, `autometa
up` and `autometa notify deliver` each host one; the outbox's claims keep them from sending the
same row twice at once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from autometa.config import Settings
from autometa.notify.operator import parse_operator_subscriptions
from autometa.notify.targets import AddressGuard, parse_networks
from autometa.notify.worker import DeliveryConfig, DeliveryWorker
from autometa.store import Store

log = structlog.get_logger("autometa.notify")


def delivery_config(settings: Settings) -> DeliveryConfig:
    return DeliveryConfig(
        concurrency=settings.NOTIFY_CONCURRENCY,
        poll_s=settings.NOTIFY_POLL_S,
        lease_s=settings.NOTIFY_LEASE_S,
        max_attempts=settings.NOTIFY_MAX_ATTEMPTS,
        backoff_base_s=settings.NOTIFY_BACKOFF_BASE_S,
        backoff_max_s=settings.NOTIFY_BACKOFF_MAX_S,
        timeout_s=settings.NOTIFY_TIMEOUT_S,
        max_response_bytes=settings.NOTIFY_MAX_RESPONSE_BYTES,
    )


def build_worker(settings: Settings, store: Store, name: str | None = None) -> DeliveryWorker:
    smtp = settings.NOTIFY_SMTP_URL.get_secret_value() if settings.NOTIFY_SMTP_URL else None
    guard = AddressGuard(parse_networks(settings.NOTIFY_ALLOW_PRIVATE_TARGETS))
    return DeliveryWorker(store, delivery_config(settings), guard=guard, smtp_url=smtp, name=name)


def sync_operator_subscriptions(settings: Settings, store: Store, chain_id: int) -> int:
    raw = settings.NOTIFY_OPERATOR_SUBSCRIPTIONS
    wanted = (
        parse_operator_subscriptions(
            raw.get_secret_value(), runway_runs=settings.NOTIFY_RUNWAY_RUNS, runway_days=settings.NOTIFY_RUNWAY_DAYS
        )
        if raw is not None
        else []
    )
    kept = store.notifications.sync_operator(chain_id, wanted)
    if wanted:
        log.info("notify.operator_subscriptions", chain_id=chain_id, names=[s.name for s in kept])
    return len(kept)


async def serve(
    settings: Settings,
    store: Store,
    stop: asyncio.Event,
    chain_id: Callable[[], Awaitable[int]] | int | None = None,
    *,
    worker: DeliveryWorker | None = None,
) -> None:
    """Deliver until ``stop``; ``chain_id`` (a number or a coroutine asking the node) is the chain
    the operator's subscriptions are for, synced once it is known."""
    worker = worker or build_worker(settings, store)

    async def sync() -> None:
        delay = 1.0
        while not stop.is_set():
            try:
                cid = chain_id if isinstance(chain_id, int) else await chain_id()  # type: ignore[misc]
                await asyncio.to_thread(sync_operator_subscriptions, settings, store, cid)
                return
            except Exception as exc:
                log.warning("notify.operator_sync_failed", error=str(exc), retry_in_s=delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(delay * 2, 60.0)

    syncing = asyncio.create_task(sync()) if chain_id is not None else None
    try:
        await worker.run(stop)
    finally:
        if syncing is not None:
            syncing.cancel()
            with contextlib.suppress(BaseException):
                await syncing
