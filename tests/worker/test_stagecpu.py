"""The stage clock adds each stage's own CPU (an inner stage is not counted in the outer one),
follows a coroutine across its awaits, and times thread work."""

from __future__ import annotations

import asyncio
import time

import pytest

from autometa.worker.stagecpu import StageClock


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


async def test_nested_stages_count_once_and_across_awaits() -> None:
    clock = StageClock()

    async def inner() -> str:
        _burn(0.05)
        await asyncio.sleep(0.05)  # waiting costs no CPU
        _burn(0.05)
        return "inner"

    async def outer() -> str:
        _burn(0.05)
        result = await clock.timed("inner", inner())
        await asyncio.sleep(0)
        _burn(0.05)
        return result

    assert await clock.timed("outer", outer()) == "inner"
    assert clock.cpu["inner"] == pytest.approx(0.10, abs=0.03)
    assert clock.cpu["outer"] == pytest.approx(0.10, abs=0.03)
    await clock.threaded("thread", _burn, 0.05)
    assert clock.cpu["thread"] == pytest.approx(0.05, abs=0.02)
    snap = clock.snapshot_ms()
    assert snap["total"] >= snap["inner"] + snap["outer"] + snap["thread"] - 5


async def test_an_error_inside_a_stage_is_raised_and_still_timed() -> None:
    clock = StageClock()

    async def failing() -> None:
        _burn(0.03)
        await asyncio.sleep(0)
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        await clock.timed("failing", failing())
    assert clock.cpu["failing"] == pytest.approx(0.03, abs=0.02)

    async def cancelled() -> None:
        await asyncio.sleep(10)

    task = asyncio.create_task(clock.timed("cancelled", cancelled()))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
