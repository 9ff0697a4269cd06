"""New chain heads as a signal to wait on: a websocket `newHeads` subscription, where the node
offers one.

The sender looked for a batch's receipt after 1.1 block times and then every half block, so a
mined batch was seen up to half a block late, and with eight batches in flight that was sixteen
receipt requests per block. Waiting on the next head instead looks once, right after each block
(`TransactionSender.wait(..., heads=...)`). Without a websocket (a public HTTP endpoint) `ready`
stays false and waits fall back to the timed looks; nothing is polled here, so an idle executor
costs one small message per block.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import structlog
import websockets

log = structlog.get_logger("autometa.chain.heads")


def ws_url_for(rpc_url: str) -> str | None:
    """The websocket endpoint to try: the URL itself if ws(s), else the same host and port (of
    the first endpoint, when several are listed)."""
    rpc_url = rpc_url.split(",")[0].strip()
    if rpc_url.startswith(("ws://", "wss://")):
        return rpc_url
    if rpc_url.startswith("http://"):
        return "ws://" + rpc_url.removeprefix("http://")
    if rpc_url.startswith("https://"):
        return "wss://" + rpc_url.removeprefix("https://")
    return None


async def new_heads(ws_url: str, on_subscribed: Callable[[], None] | None = None) -> AsyncIterator[dict[str, Any]]:
    """Each new head the node announces over an `eth_subscribe("newHeads")` websocket. Raises
    when the node refuses the subscription or the socket drops: the caller decides whether to
    retry or to poll. `on_subscribed` runs once the node accepted."""
    async with websockets.connect(ws_url, open_timeout=3, max_size=2**22) as ws:
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 3))
        if "result" not in reply:
            raise RuntimeError(f"newHeads refused: {reply.get('error')}")
        if on_subscribed is not None:
            on_subscribed()
        async for raw in ws:
            head = json.loads(raw).get("params", {}).get("result", {})
            if isinstance(head, dict):
                yield head


class NewHeads:
    """The newest block number the node announced (`head`), and a way to wait for a newer one.

    `run()` keeps a subscription open (reconnecting after `retry_s`); `ready` says whether one is
    open now. A node whose endpoint has no websocket is tried again only every `retry_s`."""

    def __init__(self, ws_url: str | None, retry_s: float = 30.0) -> None:
        self.ws_url, self.retry_s = ws_url, retry_s
        self.head: int | None = None
        self.ready = False
        self._changed = asyncio.Condition()

    async def run(self) -> None:
        if self.ws_url is None:
            return
        while True:
            try:
                async for head in new_heads(self.ws_url, on_subscribed=self._subscribed):
                    number = head.get("number")
                    if number is not None:
                        await self._announce(int(number, 16) if isinstance(number, str) else int(number))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info("heads.unavailable", reason=str(exc)[:200], retry_s=self.retry_s)
            finally:
                self.ready = False
                async with self._changed:  # waiters fall back to their timeouts
                    self._changed.notify_all()
            await asyncio.sleep(self.retry_s)

    def _subscribed(self) -> None:
        self.ready = True
        log.info("heads.subscribed", url=(self.ws_url or "").split("@")[-1])

    async def _announce(self, number: int) -> None:
        async with self._changed:
            if self.head is None or number > self.head:
                self.head = number
            self._changed.notify_all()

    async def beyond(self, block: int | None, timeout: float) -> bool:
        """Wait until a head newer than `block` (None: any new head) is announced; False after
        `timeout` seconds or when the subscription is (or goes) down."""
        if not self.ready:
            return False
        start = self.head if block is None else block

        def moved() -> bool:
            return not self.ready or (self.head is not None and (start is None or self.head > start))

        with contextlib.suppress(TimeoutError):
            async with self._changed:
                await asyncio.wait_for(self._changed.wait_for(moved), timeout)
            return self.ready
        return False


def provider_url(w3: Any) -> str | None:
    """The (first) endpoint a web3 provider talks to, if it says."""
    provider = getattr(w3, "provider", None)
    pool = getattr(provider, "pool", None)
    if pool is not None and getattr(pool, "endpoints", None):
        current = pool.endpoints[getattr(pool, "current", 0)]
        url = getattr(current, "url", None)
        if url:
            return str(url)
    uri = getattr(provider, "endpoint_uri", None)
    return str(uri) if uri else None
