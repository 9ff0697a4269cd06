"""Who is the active scheduler: a lease in Redis (`SET NX PX`, renewed while alive).

Only the holder schedules; standbys retry every `ttl/3` and take over within about `ttl` after
the holder dies. Each holder also writes its name to `<key>:holder` (no expiry) as it takes the
lease, so the next one learns whom it took over from (`took_over_from`: a failover to report).
A clean release clears that name too, so a graceful hand-over (a deploy) is no failover.
Renewal and release are compare-and-set scripts, so a holder that stalled past its lease can
never extend or delete a lease (or a name) someone else now holds.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Protocol

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = structlog.get_logger("autometa.worker.lease")

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[2]) == ARGV[1] then redis.call('del', KEYS[2]) end
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class Lease(Protocol):
    holder: str
    took_over_from: str | None  # set by the acquire() that took the lease from another holder
    changed: asyncio.Event  # set when this holder takes or loses the lease

    async def acquire(self) -> bool:
        """Take the lease if free, or renew it if ours; True while we hold it."""
        ...

    async def release(self) -> None: ...


class LocalLease:
    """Embedded mode: one process, always the holder."""

    def __init__(self, holder: str | None = None) -> None:
        self.holder = holder or f"scheduler-{uuid.uuid4().hex[:8]}"
        self.took_over_from: str | None = None
        self.changed = asyncio.Event()  # never set: it holds the lease from the start

    async def acquire(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class RedisLease:
    def __init__(self, redis: Redis, key: str, ttl_s: float = 5.0, holder: str | None = None) -> None:
        self.redis, self.key = redis, key
        self.ttl_ms = int(ttl_s * 1000)
        self.holder = holder or f"scheduler-{uuid.uuid4().hex[:8]}"
        self.held = False
        self.took_over_from: str | None = None
        # Set when we take or lose the lease, so the heartbeat reports the change now, not at
        # its next beat (GET /api/workers would otherwise show no active scheduler for a while).
        self.changed = asyncio.Event()

    @property
    def retry_s(self) -> float:
        return self.ttl_ms / 3000

    async def acquire(self) -> bool:
        try:
            return await self._acquire()
        except RedisError as exc:
            # Redis unreachable: we cannot know who holds the lease, so we do not act as if we
            # did (it may lapse meanwhile); the caller stands by and tries again.
            if self.held:
                log.warning("lease.lost", holder=self.holder, key=self.key, error=str(exc))
            else:
                log.warning("lease.unavailable", holder=self.holder, key=self.key, error=str(exc))
            self._set_held(False)
            return False

    def _set_held(self, held: bool) -> None:
        if held != self.held:
            self.changed.set()
        self.held = held

    async def _acquire(self) -> bool:
        if self.held and await self.redis.eval(_RENEW, 1, self.key, self.holder, self.ttl_ms):  # type: ignore[misc]
            return True
        got = bool(await self.redis.set(self.key, self.holder, nx=True, px=self.ttl_ms))
        if got != self.held:
            log.info("lease.acquired" if got else "lease.lost", holder=self.holder, key=self.key)
        if got and not self.held:
            raw: object = await self.redis.set(f"{self.key}:holder", self.holder, get=True)
            previous = raw.decode() if isinstance(raw, bytes) else raw if isinstance(raw, str) else None
            self.took_over_from = previous if previous and previous != self.holder else None
        self._set_held(got)
        return got

    async def release(self) -> None:
        if self.held:
            self._set_held(False)
            try:
                await self.redis.eval(_RELEASE, 2, self.key, f"{self.key}:holder", self.holder)  # type: ignore[misc]
            except RedisError as exc:  # it lapses by itself
                log.warning("lease.release_failed", holder=self.holder, error=str(exc))
                return
            log.info("lease.released", holder=self.holder)

    async def current_holder(self) -> str | None:
        value = await self.redis.get(self.key)
        return value.decode() if isinstance(value, bytes) else value
