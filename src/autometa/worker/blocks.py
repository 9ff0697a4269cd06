"""New blocks as they come: a websocket `newHeads` subscription where the node offers one
(anvil serves websockets on its HTTP port), polling otherwise."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import structlog
import websockets
from web3 import AsyncWeb3

log = structlog.get_logger("autometa.worker.blocks")


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


class BlockFollower:
    """Yields each new block number once, in order (gaps filled), from `start` on.

    poll_interval: the most we wait between polls (POLL_INTERVAL); with a subscription it is
    only the safety net for a silent socket."""

    def __init__(self, w3: AsyncWeb3[Any], ws_url: str | None = None, poll_interval: float = 1.0) -> None:
        self.w3, self.ws_url, self.poll_interval = w3, ws_url, poll_interval
        self.mode = "poll"
        self._heads: asyncio.Queue[int] = asyncio.Queue()

    async def _subscribe(self) -> None:
        assert self.ws_url is not None
        while True:
            try:
                async with websockets.connect(self.ws_url, open_timeout=3, max_size=2**22) as ws:
                    await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe",
                                              "params": ["newHeads"]}))  # fmt: skip
                    reply = json.loads(await asyncio.wait_for(ws.recv(), 3))
                    if "result" not in reply:
                        raise RuntimeError(f"newHeads refused: {reply.get('error')}")
                    self.mode = "subscription"
                    log.info("blocks.subscribed", url=self.ws_url)
                    async for raw in ws:
                        head = json.loads(raw).get("params", {}).get("result", {})
                        if "number" in head:
                            self._heads.put_nowait(int(head["number"], 16))
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
            last = (int(await self.w3.eth.block_number) if start is None else start) - 1
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

    async def _wait_head(self) -> int:
        """The chain head, as soon as a subscription says it moved, or by the next poll."""
        timeout = self.poll_interval if self.mode == "poll" else max(self.poll_interval, 2.0)
        with contextlib.suppress(TimeoutError):
            head = await asyncio.wait_for(self._heads.get(), timeout)
            while not self._heads.empty():
                head = max(head, self._heads.get_nowait())
            return head
        return int(await self.w3.eth.block_number)
