"""Real HTTP stand-ins on 127.0.0.1: CoinGecko's `/api/v3/simple/price`, and the backend's
price endpoints (served from a real `SharedPriceCache`) until the real API exists.

Each runs uvicorn in a daemon thread on a free port, so clients under test make genuine HTTP
requests (timeouts, status codes, headers and bodies all exercised) with no network access.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from autometa.prices import CoinGeckoClient, MemoryStore, RedisStore, SharedPriceCache
from autometa.prices.models import Clock, wall_clock


class ServerThread:
    """Runs an ASGI app with uvicorn in a background thread on a free loopback port."""

    def __init__(self, app: Any) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("stub server did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._sock.close()


@dataclass
class _Fault:
    status: int
    retry_after: str | None = None


class CoinGeckoStub:
    """`GET /api/v3/simple/price?ids=..&vs_currencies=usd` with settable prices and faults."""

    def __init__(self, prices: dict[str, Any] | None = None) -> None:
        self.prices: dict[str, Any] = dict(prices or {})
        self.delay = 0.0  # seconds before answering
        self.raw_body: str | None = None  # answer this text (with 200) instead of JSON
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self.requests = 0
        self.per_id: Counter[str] = Counter()
        self.request_ids: list[list[str]] = []
        self._server = ServerThread(Starlette(routes=[Route("/api/v3/simple/price", self._simple_price)]))

    @property
    def url(self) -> str:
        """What `PRICE_FEED_URL` should be set to."""
        return f"{self._server.base_url}/api/v3/simple/price"

    def fail_next(self, status: int, times: int = 1, retry_after: str | None = None) -> None:
        """Answer the next `times` requests with `status` (e.g. 429 with `Retry-After`)."""
        with self._lock:
            self._faults.extend(_Fault(status, retry_after) for _ in range(times))

    def reset(self, prices: dict[str, Any] | None = None) -> None:
        """Back to a well-behaved server with `prices` and zero counts (for reuse across tests)."""
        with self._lock:
            self.prices = dict(prices or {})
            self.delay = 0.0
            self.raw_body = None
            self._faults.clear()
            self.requests = 0
            self.per_id.clear()
            self.request_ids.clear()

    async def _simple_price(self, request: Request) -> Response:
        ids = [i for i in request.query_params.get("ids", "").split(",") if i]
        with self._lock:
            self.requests += 1
            self.per_id.update(ids)
            self.request_ids.append(ids)
            fault = self._faults.pop(0) if self._faults else None
        if self.delay:
            await asyncio.sleep(self.delay)
        if fault is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            return JSONResponse({"status": {"error_code": fault.status}}, fault.status, headers=headers)
        if request.query_params.get("vs_currencies") != "usd":
            return JSONResponse({"error": "vs_currencies=usd expected"}, 400)
        if self.raw_body is not None:
            return Response(self.raw_body, media_type="application/json")
        body = {i: {"usd": self.prices[i]} for i in ids if i in self.prices}
        return Response(json.dumps(body), media_type="application/json")  # NaN stays NaN, as from a bad proxy

    def __enter__(self) -> CoinGeckoStub:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()


CONTRACTS = {
    "WorkflowRegistry": "0x87bb7A86E657f1dDd2e84946545b6686935E3a56",
    "ActionExecutor": "0x87bb7A86E657f1dDd2e84946545b6686935E3a56",
    "FeeEscrow": "0x87bb7A86E657f1dDd2e84946545b6686935E3a56",
    "chain_id": 31337,
}


class BackendStub:
    """The backend API's read endpoints the worker uses, prices from a real `SharedPriceCache`
    over CoinGecko at `coingecko_url` (in-process store, or Redis when `redis_url` is given)."""

    def __init__(
        self,
        coingecko_url: str,
        *,
        assets: list[str] | None = None,
        redis_url: str | None = None,
        prefix: str = "autometa:price:",
        clock: Clock = wall_clock,
        workflows: dict[str, list[dict[str, Any]]] | None = None,
    ) -> None:
        self.down = False  # answer 503 to everything
        self.requests: Counter[str] = Counter()
        self.workflows = workflows or {}
        self._lock = threading.Lock()
        self._make_cache: Callable[[], SharedPriceCache] = lambda: SharedPriceCache(
            CoinGeckoClient(coingecko_url, clock=clock, timeout=5),
            RedisStore.from_url(redis_url) if redis_url else MemoryStore(clock),
            prefix=prefix,
            tracked=assets or [],
            clock=clock,
        )
        self.assets = list(assets or [])
        self.cache: SharedPriceCache | None = None
        app = Starlette(
            routes=[
                Route("/api/utils/healthz", self._health),
                Route("/api/utils/contracts", self._contracts),
                Route("/api/price/assets", self._assets),
                Route("/api/price/{symbol}", self._price),
                Route("/api/workflow/user/{address}", self._workflows),
            ],
            lifespan=self._lifespan,
        )
        self._server = ServerThread(app)

    @property
    def url(self) -> str:
        """What `BACKEND_API_URL` should be set to."""
        return self._server.base_url

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self.cache = self._make_cache()  # built inside the server's event loop
        yield
        await self.cache.aclose()

    def _count(self, request: Request) -> Response | None:
        with self._lock:
            self.requests[request.url.path] += 1
        return JSONResponse({"detail": "down"}, 503) if self.down else None

    async def _health(self, request: Request) -> Response:
        return self._count(request) or JSONResponse({"status": "ok"})

    async def _contracts(self, request: Request) -> Response:
        return self._count(request) or JSONResponse(CONTRACTS)

    async def _assets(self, request: Request) -> Response:
        return self._count(request) or JSONResponse({"assets": self.assets})

    async def _workflows(self, request: Request) -> Response:
        return self._count(request) or JSONResponse(self.workflows.get(request.path_params["address"], []))

    async def _price(self, request: Request) -> Response:
        if (refused := self._count(request)) is not None:
            return refused
        assert self.cache is not None
        try:
            price = await self.cache.get(request.path_params["symbol"])
        except ValueError as exc:
            return JSONResponse({"detail": str(exc)}, 422)
        if price is None:
            return JSONResponse({"detail": "no price"}, 404)
        return JSONResponse(price.to_payload())

    def __enter__(self) -> BackendStub:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    def stop(self) -> None:
        """Take the backend away entirely (connection refused), as when it crashes."""
        self._server.stop()


@contextlib.contextmanager
def running(*stubs: CoinGeckoStub | BackendStub) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for stub in stubs:
            stack.enter_context(stub)
        yield
