"""A clock you move by hand, so TTL behaviour is tested and benchmarked without sleeping."""

from __future__ import annotations

import time


class ManualClock:
    """Callable like `time.time`; `advance` moves it; `sleep` is an awaitable that advances it
    (hand it to clients that back off, and their waits take no real time)."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(0.0, seconds)
