"""Single-flight for batched fetches: at most one upstream request in flight per key.

When a cached value expires, every concurrent caller would otherwise go upstream at once (a
thundering herd that earns a 429). Here the first caller starts one task for all keys not yet
in flight, and everyone else awaits that same task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import Generic, TypeVar

V = TypeVar("V")
BatchFetch = Callable[[list[str]], Awaitable[dict[str, V]]]


class BatchFlight(Generic[V]):
    """Deduplicates concurrent batch fetches by key; one flight may cover many keys."""

    def __init__(self) -> None:
        self._inflight: dict[str, asyncio.Task[dict[str, V]]] = {}

    def in_flight(self, key: str) -> bool:
        return key in self._inflight

    async def run(self, keys: Collection[str], fetch: BatchFetch[V], widen: Iterable[str] = ()) -> dict[str, V]:
        """Results for `keys` (absent where the fetch found nothing).

        Keys already in flight join their flight. If any requested key is not, one new flight
        fetches it together with the `widen` keys not in flight (e.g. everything tracked), so a
        single upstream request refreshes the lot. Cancelling a caller never cancels the flight
        other callers are waiting on.
        """
        flights = {self._inflight[k] for k in keys if k in self._inflight}
        new = [k for k in dict.fromkeys(keys) if k not in self._inflight]
        if new:
            batch = new + [k for k in dict.fromkeys(widen) if k not in self._inflight and k not in new]
            flights.add(self._start(batch, fetch))
        merged: dict[str, V] = {}
        for result in await asyncio.gather(*(asyncio.shield(f) for f in flights)):
            merged.update(result)
        return {k: merged[k] for k in keys if k in merged}

    def _start(self, batch: list[str], fetch: BatchFetch[V]) -> asyncio.Task[dict[str, V]]:
        task = asyncio.ensure_future(fetch(batch))
        for key in batch:
            self._inflight[key] = task

        def _done(t: asyncio.Task[dict[str, V]]) -> None:
            for key in batch:
                if self._inflight.get(key) is t:
                    del self._inflight[key]
            if not t.cancelled():
                t.exception()  # marks it retrieved even if every waiter was cancelled

        task.add_done_callback(_done)
        return task
