"""Single-flight semantics that the caches rely on."""

from __future__ import annotations

import asyncio
import importlib

import pytest

from autometa.prices import metrics
from autometa.prices.singleflight import BatchFlight


async def test_one_flight_serves_all_waiters_and_widens() -> None:
    calls: list[list[str]] = []

    async def fetch(keys: list[str]) -> dict[str, int]:
        calls.append(keys)
        await asyncio.sleep(0.01)
        return {k: len(k) for k in keys}

    flight: BatchFlight[int] = BatchFlight()
    results = await asyncio.gather(
        flight.run(["a"], fetch, widen=["bb", "ccc"]), flight.run(["bb"], fetch), flight.run(["ccc", "a"], fetch)
    )
    assert calls == [["a", "bb", "ccc"]]
    assert results == [{"a": 1}, {"bb": 2}, {"ccc": 3, "a": 1}]
    assert not flight.in_flight("a")


async def test_cancelled_waiter_does_not_cancel_the_flight() -> None:
    async def fetch(keys: list[str]) -> dict[str, int]:
        await asyncio.sleep(0.02)
        return dict.fromkeys(keys, 1)

    flight: BatchFlight[int] = BatchFlight()
    first = asyncio.create_task(flight.run(["x"], fetch))
    await asyncio.sleep(0)
    second = asyncio.create_task(flight.run(["x"], fetch))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == {"x": 1}


async def test_errors_reach_every_waiter_and_clear_the_key() -> None:
    async def fetch(keys: list[str]) -> dict[str, int]:
        await asyncio.sleep(0.01)
        raise RuntimeError("upstream broke")

    flight: BatchFlight[int] = BatchFlight()
    results = await asyncio.gather(flight.run(["k"], fetch), flight.run(["k"], fetch), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert not flight.in_flight("k")


def test_metrics_module_can_be_imported_again() -> None:
    hits = metrics.CACHE_HITS
    reloaded = importlib.reload(metrics)
    assert reloaded.CACHE_HITS is hits


@pytest.mark.parametrize("name", ["autometa_price_cache_hits_total", "autometa_price_cache_misses_total"])
def test_metric_names(name: str) -> None:
    from prometheus_client import REGISTRY

    metrics.hit("local")
    metrics.miss("local")
    assert REGISTRY.get_sample_value(name, {"tier": "local"}) is not None
