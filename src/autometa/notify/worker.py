"""The delivery worker: claims due outbox rows with a lease, sends them concurrently, records
each attempt, and reschedules failures with exponential backoff and jitter until they are
dead-lettered. Any number of workers (API, embedded, `autometa notify deliver`) share the outbox:
claims are disjoint, and a killed worker's rows come back when its lease runs out.

Delivery is at least once: a worker killed after the receiver answered but before it recorded
the answer sends again later, with the same idempotency key, which receivers use to drop the copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import structlog

from autometa.notify.channels import AppriseSender, Result, WebhookSender, body_of
from autometa.notify.targets import SCRUBBER, AddressGuard, TargetError, parse_networks
from autometa.store import Store
from autometa.store.notifications import Claimed, Outcome
from autometa.store.types import utcnow

log = structlog.get_logger("autometa.notify")


@dataclass(frozen=True)
class DeliveryConfig:
    concurrency: int = 32
    poll_s: float = 0.25
    lease_s: float = 60.0
    max_attempts: int = 12
    backoff_base_s: float = 2.0
    backoff_max_s: float = 900.0
    timeout_s: float = 10.0
    max_response_bytes: int = 64 * 1024


def backoff_s(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Delay before attempt ``attempt + 1``: base·2^(attempt-1), capped, with jitter in [½, 1]
    of it so a receiver coming back is not hit by every retry at once."""
    delay = min(cap, base * 2 ** max(attempt - 1, 0))
    return float(delay * (0.5 + 0.5 * (rng or random).random()))


class DeliveryWorker:
    def __init__(
        self,
        store: Store,
        config: DeliveryConfig,
        *,
        guard: AddressGuard | None = None,
        smtp_url: str | None = None,
        name: str | None = None,
    ) -> None:
        self.store, self.config = store, config
        self.token = str(uuid.uuid4())
        self.name = name or f"notify:{socket.gethostname()}:{os.getpid()}"
        self.webhooks = WebhookSender(
            guard or AddressGuard(), timeout_s=config.timeout_s, max_response_bytes=config.max_response_bytes
        )
        # The operator's own targets may sit on private networks (their ops tooling).
        self.operator_webhooks = WebhookSender(
            AddressGuard(parse_networks(["0.0.0.0/0", "::/0"])),
            timeout_s=config.timeout_s,
            max_response_bytes=config.max_response_bytes,
        )
        self.apprise = AppriseSender(timeout_s=config.timeout_s, smtp_url=smtp_url)
        self.wake = asyncio.Event()  # set by same-process writers to skip the poll wait
        self.delivered = 0
        self.failed = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; rows still held then are handed back unsent."""
        log.info("notify.worker_started", worker=self.name, concurrency=self.config.concurrency)
        inflight: dict[asyncio.Task[Outcome], Claimed] = {}
        done: list[Outcome] = []
        batch = max(1, self.config.concurrency // 4)  # claim and record in groups: one transaction each
        drained_at: float | None = None  # when the outbox last had fewer due rows than we asked for
        last_record = time.monotonic()
        try:
            while not stop.is_set():
                now = time.monotonic()
                free = self.config.concurrency - len(inflight)
                may_claim = free > 0 and (
                    drained_at is None or now - drained_at >= self.config.poll_s or self.wake.is_set()
                )
                want = free if may_claim and (free >= batch or not inflight) else 0
                record = bool(done) and (want > 0 or len(done) >= batch or now - last_record >= 0.05)
                if want or record:
                    self.wake.clear()
                    try:
                        claimed = await asyncio.to_thread(
                            self.store.notifications.cycle,
                            self.token,
                            done if record else [],
                            want,
                            self.config.lease_s,
                        )
                    except Exception as exc:  # database down: keep what we hold and know, try again
                        log.warning("notify.store_unavailable", error=str(exc), unrecorded=len(done))
                        claimed, drained_at = [], time.monotonic()
                    else:
                        if record:
                            done, last_record = [], time.monotonic()
                        if want:
                            drained_at = time.monotonic() if len(claimed) < want else None
                    for item in claimed:
                        inflight[asyncio.create_task(self._attempt(item))] = item
                # Sleep until a send finishes, a local writer wakes us, we are stopped, or it is
                # time to look again (rows written by other processes, retries coming due).
                signals = [asyncio.ensure_future(self.wake.wait()), asyncio.ensure_future(stop.wait())]
                try:
                    await asyncio.wait(
                        [*inflight, *signals],
                        timeout=0.05 if done else self.config.poll_s,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    for fut in signals:
                        fut.cancel()
                for task in [t for t in inflight if t.done()]:
                    inflight.pop(task)
                    done.append(task.result())
        finally:
            for task in inflight:
                task.cancel()
            for task in inflight:
                with contextlib.suppress(BaseException):
                    outcome = await task
                    done.append(outcome)
            unfinished = [c.delivery_id for t, c in inflight.items() if t.cancelled()]
            with contextlib.suppress(Exception):
                await self._record(done)
                await asyncio.to_thread(self.store.notifications.release, self.token, unfinished)
            await self.webhooks.aclose()
            await self.operator_webhooks.aclose()
            log.info("notify.worker_stopped", worker=self.name, delivered=self.delivered, failed=self.failed)

    async def _record(self, outcomes: list[Outcome]) -> None:
        for attempt in range(5):
            try:
                await asyncio.to_thread(self.store.notifications.finish, self.token, outcomes)
                return
            except Exception as exc:
                log.warning("notify.record_failed", error=str(exc), outcomes=len(outcomes), retry=attempt + 1)
                await asyncio.sleep(0.5 * 2**attempt)
        # Not recorded: the leases run out and the rows are sent again (at least once).

    async def _attempt(self, item: Claimed) -> Outcome:
        started, clock = utcnow(), time.monotonic()
        try:
            result = await self.send(item)
        except Exception as exc:  # a bug in a channel must not stop the worker
            log.exception("notify.send_crashed", delivery_id=item.delivery_id)
            result = Result(False, None, f"internal error: {type(exc).__name__}")
        duration_ms = (time.monotonic() - clock) * 1000
        retry_at = None
        if not result.ok:
            self.failed += 1
            if item.attempt < self.config.max_attempts:
                delay = backoff_s(item.attempt, self.config.backoff_base_s, self.config.backoff_max_s)
                retry_at = utcnow() + timedelta(seconds=delay)
            log.info(
                "notify.attempt_failed",
                delivery_id=item.delivery_id,
                subscription_id=item.subscription_id,
                attempt=item.attempt,
                status_code=result.status_code,
                reason=result.error,
                dead=retry_at is None,
            )
        else:
            self.delivered += 1
        return Outcome(
            item.delivery_id,
            item.subscription_id,
            item.attempt,
            result.ok,
            started,
            duration_ms,
            result.status_code,
            result.error,
            retry_at,
        )

    async def send(self, item: Claimed) -> Result:
        SCRUBBER.remember(item.target, item.secret)
        kind = str(item.payload.get("type", ""))
        if item.channel == "webhook":
            sender = self.operator_webhooks if item.operator else self.webhooks
            return await sender.send(item.target, item.secret or "", item.event_key, kind, body_of(item.payload))
        try:
            url = self.apprise.email_url(item.target) if item.channel == "email" else item.target
        except TargetError as exc:
            return Result(False, None, str(exc))
        return await self.apprise.send(url, item.payload, [item.secret])
