"""A fault-injecting JSON-RPC proxy: workers talk to it, it talks to the chain.

A small HTTP/1.1 server on asyncio (its own thread and event loop, a free loopback port) that
forwards each POSTed JSON-RPC request to `upstream` and, per JSON-RPC method, can

* ``drop``: forward the request, then close the connection without answering (the node acted:
  for ``eth_sendRawTransaction`` the transaction is in the pool, but the client cannot know);
* ``delay``: wait `seconds` before forwarding;
* ``error``: answer an HTTP 5xx without forwarding;
* ``reset``: abort the connection with a TCP RST without forwarding.

Rules are set and cleared while the proxy runs (`fault`, `clear`); each applies to the next
`times` matching calls (or every call), optionally with a probability, and counts what it
injected (`injected`).

`rate_limit(per_second, retry_after)` behaves like a public provider's plan: at most
`per_second` JSON-RPC calls (a batch counts each call) in any one-second window; beyond it,
HTTP 429 with `Retry-After` and nothing forwarded (`limited` counts them, by method).

Non-POST requests (a websocket upgrade) get a 404, so clients fall back
to polling through the proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import struct
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

import httpx

KINDS = ("drop", "delay", "error", "reset")


@dataclass
class Rule:
    method: str  # a JSON-RPC method, or "*" for every method
    kind: str
    times: int | None = None  # how many more calls it applies to (None: unlimited)
    probability: float = 1.0
    seconds: float = 0.0  # delay
    status: int = 503  # error

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {KINDS}")


class RpcProxy:
    def __init__(self, upstream: str, seed: int = 7) -> None:
        self.upstream = upstream
        self.port = 0
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self.injected: Counter[tuple[str, str]] = Counter()  # (method, kind) -> faults injected
        self.calls: Counter[str] = Counter()  # method -> requests seen
        self.limited: Counter[str] = Counter()  # method -> requests answered 429 by the rate limit
        self._per_second: int | None = None
        self._retry_after = "1"
        self._window: deque[float] = deque()  # monotonic times of the calls forwarded in the last second
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._client: httpx.AsyncClient | None = None

    # ------------------------------------------------------------------ control (any thread)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fault(
        self,
        method: str,
        kind: str,
        *,
        times: int | None = None,
        probability: float = 1.0,
        seconds: float = 0.0,
        status: int = 503,
    ) -> Rule:
        rule = Rule(method, kind, times, probability, seconds, status)
        with self._lock:
            self._rules.append(rule)
        return rule

    def rate_limit(self, per_second: int | None, retry_after: float = 1.0) -> None:
        """At most `per_second` calls in any second, HTTP 429 + `Retry-After` beyond (None: off)."""
        with self._lock:
            self._per_second, self._retry_after = per_second, f"{retry_after:g}"
            self._window.clear()

    def _over_limit(self, methods: list[str]) -> bool:
        with self._lock:
            if self._per_second is None:
                return False
            now = time.monotonic()
            while self._window and now - self._window[0] >= 1.0:
                self._window.popleft()
            if len(self._window) + len(methods) > self._per_second:
                for m in methods:
                    self.limited[m] += 1
                return True
            self._window.extend([now] * len(methods))
            return False

    def clear(self, method: str | None = None) -> None:
        with self._lock:
            self._rules = [r for r in self._rules if method is not None and r.method != method]

    @property
    def total_injected(self) -> int:
        with self._lock:
            return sum(self.injected.values())

    def injected_for(self, method: str, kind: str | None = None) -> int:
        with self._lock:
            return sum(n for (m, k), n in self.injected.items() if m == method and (kind is None or k == kind))

    def _pick(self, methods: list[str]) -> Rule | None:
        with self._lock:
            for m in methods:
                self.calls[m] += 1
            for rule in self._rules:
                if rule.times is not None and rule.times <= 0:
                    continue
                if rule.method != "*" and rule.method not in methods:
                    continue
                if rule.probability < 1.0 and self._random.random() >= rule.probability:
                    continue
                if rule.times is not None:
                    rule.times -= 1
                self.injected[(rule.method if rule.method != "*" else methods[0], rule.kind)] += 1
                return rule
        return None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> RpcProxy:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = int(sock.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, args=(sock,), name="rpc-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the RPC proxy did not start")
        return self

    def stop(self) -> None:
        """Stop serving (idempotent: a test may kill the proxy before its `with` block ends)."""
        loop, self._loop = self._loop, None
        if loop is not None and self._server is not None:
            loop.call_soon_threadsafe(self._server.close)
            fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            with contextlib.suppress(Exception):
                fut.result(5)
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    async def _shutdown(self) -> None:
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def __enter__(self) -> RpcProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self, sock: socket.socket) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def boot() -> None:
            self._client = httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=200))
            self._server = await asyncio.start_server(self._connection, sock=sock, backlog=512)

        loop.run_until_complete(boot())
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    # ------------------------------------------------------------------ HTTP

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                verb = lines[0].split(" ", 1)[0]
                headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if verb != "POST":
                    self._respond(writer, 404, b"not found", keep_alive=False)
                    await writer.drain()
                    break
                if not await self._handle(body, writer):
                    break
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, asyncio.CancelledError):
            pass  # the client went away, or the proxy is stopping
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    @staticmethod
    def _respond(
        writer: asyncio.StreamWriter, status: int, body: bytes, keep_alive: bool = True, extra: str = ""
    ) -> None:
        reason = {200: "OK", 404: "Not Found", 429: "Too Many Requests"}.get(status, "Error")
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"{extra}Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n".encode()
            + body
        )

    async def _refuse_over_limit(self, methods: list[str], writer: asyncio.StreamWriter) -> bool:
        """Answer HTTP 429 + `Retry-After` (True) when these calls exceed the rate limit."""
        if not self._over_limit(methods):
            return False
        with self._lock:
            self.calls.update(methods)
            retry_after = self._retry_after
        body = b'{"jsonrpc":"2.0","id":null,"error":{"code":429,"message":"Too Many Requests"}}'
        self._respond(writer, 429, body, extra=f"Retry-After: {retry_after}\r\n")
        await writer.drain()
        return True

    async def _handle(self, body: bytes, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the connection must not be reused."""
        try:
            payload: Any = json.loads(body)
            calls = payload if isinstance(payload, list) else [payload]
            methods = [str(c.get("method", "")) for c in calls if isinstance(c, dict)] or [""]
        except ValueError:
            methods = [""]
        if await self._refuse_over_limit(methods, writer):
            return True
        rule = self._pick(methods)
        if rule is not None and rule.kind == "reset":
            sock = writer.get_extra_info("socket")
            if sock is not None:  # SO_LINGER 0: close() sends a RST
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        if rule is not None and rule.kind == "error":
            self._respond(writer, rule.status, b'{"error":"injected"}', keep_alive=False)
            await writer.drain()
            return False
        if rule is not None and rule.kind == "delay":
            await asyncio.sleep(rule.seconds)
        assert self._client is not None
        try:
            reply = await self._client.post(self.upstream, content=body, headers={"Content-Type": "application/json"})
        except httpx.HTTPError:
            self._respond(writer, 502, b'{"error":"upstream unavailable"}', keep_alive=False)
            await writer.drain()
            return False
        if rule is not None and rule.kind == "drop":
            writer.transport.abort()  # the node has acted; the client never hears of it
            return False
        self._respond(writer, reply.status_code, reply.content)
        await writer.drain()
        return True
