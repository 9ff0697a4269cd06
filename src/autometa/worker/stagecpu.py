"""CPU time per stage of the executor (read, gather, simulate, send, receipt, record), for the
throughput bench's `stages_cpu_ms_per_run` and the `executor.cpu` log line.

Batches run concurrently on one event loop, so wall time per stage says little about where the
CPU goes. `StageClock.timed(stage, coroutine)` drives the coroutine itself and adds the thread
CPU time of each of its steps (the code between two awaits) to the stage; a stage timed inside
another is subtracted from the outer one, so nothing counts twice. Work a stage hands to a thread
is timed there (`StageClock.threaded`). What no stage covers (the event loop's own callbacks,
transports' parsing, logging, garbage collection) is the process's CPU minus the stages' sum:
`other`.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Coroutine, Generator
from concurrent.futures import Executor
from typing import Any, TypeVar

T = TypeVar("T")

# The nested timed steps running right now on the event loop's thread: each holds the CPU its
# inner stages took, to subtract. Steps nest strictly (one task step runs at a time).
_open: list[list[float]] = []


class StageClock:
    def __init__(self) -> None:
        self.cpu: defaultdict[str, float] = defaultdict(float)  # stage -> CPU seconds
        self._process_start = time.process_time()

    def add(self, stage: str, seconds: float) -> None:
        self.cpu[stage] += seconds

    async def timed(self, stage: str, coro: Coroutine[Any, Any, T]) -> T:
        result: T = await _Timed(self, stage, coro)
        return result

    async def threaded(
        self, stage: str, fn: Callable[..., T], *args: Any, pool: Executor | None = None, **kwargs: Any
    ) -> T:
        """`fn(*args, **kwargs)` in a thread of `pool` (default: asyncio's), its thread CPU
        time added to `stage`."""

        def run() -> T:
            start = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(stage, time.thread_time() - start)

        return await asyncio.get_running_loop().run_in_executor(pool, run)

    def snapshot_ms(self) -> dict[str, float]:
        """CPU milliseconds per stage since the clock started, and `other` (the process's CPU
        that no stage covered) and `total`."""
        out = {stage: round(1000 * s, 1) for stage, s in sorted(self.cpu.items())}
        total = time.process_time() - self._process_start
        out["other"] = round(1000 * (total - sum(self.cpu.values())), 1)
        out["total"] = round(1000 * total, 1)
        return out


class _Timed:
    """An awaitable that steps `coro` and times each step (see the module docstring)."""

    def __init__(self, clock: StageClock, stage: str, coro: Coroutine[Any, Any, Any]) -> None:
        self.clock, self.stage, self.coro = clock, stage, coro

    def __await__(self) -> Generator[Any, Any, Any]:
        gen = self.coro.__await__()
        value: Any = None
        error: BaseException | None = None
        while True:
            inner = [0.0]
            _open.append(inner)
            start = time.thread_time()
            try:
                yielded = gen.send(value) if error is None else gen.throw(error)
            except StopIteration as done:
                self._account(start, inner)
                return done.value
            except BaseException:
                self._account(start, inner)
                raise
            self._account(start, inner)
            try:
                value, error = (yield yielded), None
            except BaseException as exc:  # noqa: BLE001 (a cancellation is passed on into the coroutine)
                value, error = None, exc

    def _account(self, start: float, inner: list[float]) -> None:
        spent = time.thread_time() - start
        _open.pop()
        self.clock.add(self.stage, spent - inner[0])
        if _open:
            _open[-1][0] += spent
