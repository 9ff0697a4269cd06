"""New blocks as they come: a websocket `newHeads` subscription where the node offers one
(anvil serves websockets on its HTTP port), polling otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import structlog
from web3 import AsyncWeb3

from autometa.chain.heads import new_heads, ws_url_for

__all__ = ["BlockFollower", "ws_url_for"]

log = structlog.get_logger("autometa.worker.blocks")


class BlockFollower:
    """Yields each new block number once, in order (gaps filled), from `start` on, and keeps the
    newest blocks' headers (`header`) so the scheduler and the indexer need not ask for them again.

    poll_interval: the most we wait between polls (POLL_INTERVAL); with a subscription it is
    only the safety net for a silent socket. Polling asks for the newest header itself (one
    request gives the number, hash, parent and timestamp) and paces itself by the block time it
    observes: the first poll just before the next block is due, then 15 % of a block time
    apart, so a 2 s chain costs one or two requests per block, not one every poll_interval."""

    KEEP = 64  # headers kept

    def __init__(self, w3: AsyncWeb3[Any], ws_url: str | None = None, poll_interval: float = 1.0) -> None:
        self.w3, self.ws_url, self.poll_interval = w3, ws_url, poll_interval
        self.mode = "poll"
        self._heads: asyncio.Queue[int] = asyncio.Queue()
        self._headers: dict[int, dict[str, Any]] = {}
        self.block_time: float | None = None  # seconds between blocks, as observed
        self._seen: tuple[int, float] | None = None  # (newest number, when we first saw it)
        self.polls = 0

    def header(self, number: int) -> dict[str, Any] | None:
        """The header of block `number` (number, hash, parentHash, timestamp), if seen."""
        return self._headers.get(number)

    def _remember(self, raw: Any) -> int:
        def num(value: Any) -> int:
            return int(value, 16) if isinstance(value, str) else int(value)

        number = num(raw["number"])
        base = raw.get("baseFeePerGas")
        self._headers[number] = {
            "number": number,
            "hash": raw["hash"],
            "parentHash": raw["parentHash"],
            "timestamp": num(raw["timestamp"]),
            "baseFeePerGas": num(base) if base is not None else None,
        }
        for old in [n for n in self._headers if n <= number - self.KEEP]:
            del self._headers[old]
        now = time.monotonic()
        if self._seen is None or number > self._seen[0]:
            if self._seen is not None:
                gap = (now - self._seen[1]) / (number - self._seen[0])
                self.block_time = gap if self.block_time is None else 0.8 * self.block_time + 0.2 * gap
            self._seen = (number, now)
        return number

    def _subscribed(self) -> None:
        self.mode = "subscription"
        log.info("blocks.subscribed", url=self.ws_url)

    async def _subscribe(self) -> None:
        assert self.ws_url is not None
        while True:
            try:
                async for head in new_heads(self.ws_url, on_subscribed=self._subscribed):
                    if "number" in head:
                        self._heads.put_nowait(self._remember(head) if "hash" in head else int(head["number"], 16))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.mode == "subscription":
                    log.warning("blocks.subscription_lost", error=str(exc))
                else:
                    log.info("blocks.polling", reason=str(exc))
                self.mode = "poll"
                await asyncio.sleep(max(self.poll_interval, 5.0))

    async def follow(self, start: int | None = None) -> AsyncIterator[int]:
        sub = asyncio.create_task(self._subscribe()) if self.ws_url else None
        try:
            last = (self._remember(await self.w3.eth.get_block("latest")) if start is None else start) - 1
            while True:
                head = await self._wait_head()
                for number in range(last + 1, head + 1):
                    yield number
                last = max(last, head)
        finally:
            if sub is not None:
                sub.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sub

    def _poll_wait(self) -> float:
        """Seconds until the next poll: just before the next block is due (we saw the last one
        late by at most one poll, so polling 10 % early finds it most times and shrinks that
        lag when it does), then every 15 % of a block time, or poll_interval if shorter."""
        if self.block_time is None or self._seen is None:
            return self.poll_interval
        due = self._seen[1] + 0.9 * self.block_time - time.monotonic()
        return due if due > 0 else min(self.poll_interval, 0.15 * self.block_time)

    async def _wait_head(self) -> int:
        """The chain head, as soon as a subscription says it moved, or by the next poll."""
        timeout = self._poll_wait() if self.mode == "poll" else max(self.poll_interval, 2.0)
        with contextlib.suppress(TimeoutError):
            head = await asyncio.wait_for(self._heads.get(), timeout)
            while not self._heads.empty():
                head = max(head, self._heads.get_nowait())
            return head
        self.polls += 1
        return self._remember(await self.w3.eth.get_block("latest"))
