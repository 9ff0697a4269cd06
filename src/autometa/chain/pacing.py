"""How one connection paces its requests to an endpoint that has rate-limited it (HTTP 429)."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque


class Pacer:
    """One connection's pace after a 429. Until the first 429 it only counts what it sends; then
    every request waits its turn (an asyncio.Lock wakes waiters in order) for the end of
    `Retry-After` and `interval` after the previous one, the interval set from what the provider
    let through in the last second. It shortens slowly while requests succeed, and pacing stops
    after `calm_s` without a 429. A `Retry-After` longer than `max_pause_s` is cut to it: the
    caller's time budget, not the provider, decides when to give up."""

    def __init__(self, calm_s: float = 10.0, max_interval_s: float = 1.0, max_pause_s: float = 5.0) -> None:
        self.calm_s, self.max_interval_s, self.max_pause_s = calm_s, max_interval_s, max_pause_s
        self.interval = 0.0  # seconds between two requests; 0: not pacing
        self._not_before = 0.0  # the end of the last Retry-After
        self._next = 0.0
        self._limited_at = -math.inf
        self._adjusted_at = -math.inf
        self._sent: deque[float] = deque()  # send times within the last second
        self._lock: asyncio.Lock | None = None
        self._thread_lock = threading.Lock()

    def _count(self, now: float) -> int:
        while self._sent and now - self._sent[0] >= 1.0:
            self._sent.popleft()
        return len(self._sent)

    async def turn(self) -> None:
        now = time.monotonic()
        if self.interval and now - self._limited_at > self.calm_s:
            self.interval = 0.0
        if self.interval or now < self._not_before:
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                delay = max(self._not_before, self._next) - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                self._next = time.monotonic() + self.interval
        now = time.monotonic()
        self._count(now)
        self._sent.append(now)

    @property
    def not_before(self) -> float:
        """The monotonic time the last `Retry-After` ends (past: the provider is not holding us)."""
        return self._not_before

    def turn_blocking(self) -> None:
        """`turn` for a synchronous connection (the indexer's, in a worker thread)."""
        with self._thread_lock:
            now = time.monotonic()
            if self.interval and now - self._limited_at > self.calm_s:
                self.interval = 0.0
            if self.interval or now < self._not_before:
                delay = max(self._not_before, self._next) - now
                if delay > 0:
                    time.sleep(delay)
                self._next = time.monotonic() + self.interval
            now = time.monotonic()
            self._count(now)
            self._sent.append(now)

    def limited(self, retry_after_s: float | None) -> None:
        now = time.monotonic()
        pause = min(retry_after_s if retry_after_s is not None else 1.0, self.max_pause_s)
        self._not_before = max(self._not_before, now + pause)
        if now - self._adjusted_at >= 1.0:  # once per window: a burst of 429s is one signal
            got_through = max(1.0, 0.8 * self._count(now))
            self.interval = min(max(self.interval * 1.25, 1.0 / got_through), self.max_interval_s)
            self._adjusted_at = now
        self._limited_at = now

    def succeeded(self) -> None:
        if self.interval:
            self.interval *= 0.98
