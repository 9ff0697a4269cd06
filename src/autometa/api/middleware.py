"""Pure ASGI middleware (BaseHTTPMiddleware costs a task per request): request body size limit
and request metrics."""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from autometa.api.metrics import HTTP_LATENCY

MAX_BODY_BYTES = 64 * 1024
FAST_ROUTE = "autometa.route"  # scope key: the route template a fast path answered for


def _too_large(limit: int) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    body = json.dumps({"error": "body_too_large", "message": f"request body over {limit} bytes", "field": "body"})
    return body.encode(), [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]


class BodyLimitMiddleware:
    """413 for a body over `limit` bytes, by Content-Length or while streaming a chunked body.

    The body (at most `limit` bytes) is read before the app runs and replayed to it: an exception
    raised from inside `receive` would reach FastAPI's body parser, which turns any error into a
    400 "error parsing the body" — so a streamed oversize body must be refused out here."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not (value.isascii() and value.isdigit()) or int(value) > self.limit:
                    await self._reject(send)
                    return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the app see it
                first: Message = message
                break
            body += message.get("body", b"")
            if len(body) > self.limit:
                await self._reject(send)
                return
            if not message.get("more_body", False):
                first = {"type": "http.request", "body": bytes(body), "more_body": False}
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return first
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, send: Send) -> None:
        body, headers = _too_large(self.limit)
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class MetricsMiddleware:
    """Latency per route template (not raw path: ids would explode the label set)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._children: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or scope.get(FAST_ROUTE) or "unmatched"
            key = (scope["method"], path, status)
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = HTTP_LATENCY.labels(method=key[0], route=path, status=str(status))
            child.observe(time.perf_counter() - start)


class PriceFastPath:
    """`GET /api/price/{symbol}` for a supported symbol, answered before FastAPI's routing and
    dependency injection (~150 µs of a ~250 µs request): every worker polls it, so it bounds the
    fleet a single API process serves. The route in `routes/price.py` stays the documented
    endpoint and answers everything this declines: unknown symbols, cache failures, no price."""

    PREFIX = "/api/price/"

    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"].startswith(self.PREFIX):
            services = getattr(self.state, "services", None)
            symbol = scope["path"][len(self.PREFIX) :]
            if services is not None and symbol in services.settings.SUPPORTED_ASSETS:
                try:
                    price = await services.prices.get(symbol)
                except Exception:  # the route answers with the right error
                    await self.app(scope, receive, send)
                    return
                scope[FAST_ROUTE] = "/api/price/{symbol}"
                if price is None:  # the same answer as the route's, without a second upstream attempt
                    status, payload = (
                        503,
                        {
                            "error": "price_unavailable",
                            "field": None,
                            "message": f"no price for {symbol} right now (upstream unavailable); retry shortly",
                        },
                    )
                else:
                    status, payload = 200, price.to_payload()
                body = json.dumps(payload).encode()
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
