"""Web3 connections, with the middleware a chain needs (Moonbase/anvil are plain EVM).

The asyncio connection of the services retries what a public RPC provider throws at a client
that talks to it often: HTTP 429 (rate limited, honouring `Retry-After`), 502/503/504 and lost
connections, with jittered exponential backoff, bounded both in attempts and in total time, so
a node that is really gone still fails within `budget_s` (the API turns that into a 503 with the
reason). Once the provider has said 429, the connection's requests go out paced and first come,
first served (`Pacer`) rather than all at once when `Retry-After` ends: retrying independently,
the same unlucky requests lose the race again and again (a 429 is bounded by the time budget
alone: the node is there, and busy). A transaction broadcast is retried only when the node cannot
have acted on it (429, or no connection made): anything else is left to the sender, which knows
whether the node has it.
`eth_chainId` is answered from a cache after its first success (web3 asks it before every
`eth_call` and `eth_estimateGas` to validate the call's chain).
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import random
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import structlog
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_random_exponential
from web3 import AsyncHTTPProvider, AsyncWeb3, HTTPProvider, Web3
from web3._utils.rpc_abi import RPC
from web3.types import RPCEndpoint

if TYPE_CHECKING:
    from autometa.config import Settings

log = structlog.get_logger("autometa.chain.web3")

RETRY_STATUSES = frozenset({429, 502, 503, 504})
# Answers that never change for one endpoint: served from web3's request cache.
CONSTANT_METHODS = frozenset({RPC.eth_chainId, RPC.net_version, RPC.web3_clientVersion})
# A broadcast the node may have acted on must not be blindly repeated (see the module docstring).
BROADCAST = RPC.eth_sendRawTransaction


class Pacer:
    """One connection's pace after a 429. Until the first 429 it only counts what it sends; then
    every request waits its turn (an asyncio.Lock wakes waiters in order) for the end of
    `Retry-After` and `interval` after the previous one, the interval set from what the provider
    let through in the last second. It shortens slowly while requests succeed, and pacing stops
    after `calm_s` without a 429. A `Retry-After` longer than `max_pause_s` is cut to it: the
    caller's time budget, not the provider, decides when to give up."""

    def __init__(self, calm_s: float = 10.0, max_interval_s: float = 1.0, max_pause_s: float = 5.0) -> None:
        self.calm_s, self.max_interval_s, self.max_pause_s = calm_s, max_interval_s, max_pause_s
        self.interval = 0.0  # seconds between two requests; 0: not pacing
        self._not_before = 0.0  # the end of the last Retry-After
        self._next = 0.0
        self._limited_at = -math.inf
        self._adjusted_at = -math.inf
        self._sent: deque[float] = deque()  # send times within the last second
        self._lock: asyncio.Lock | None = None

    def _count(self, now: float) -> int:
        while self._sent and now - self._sent[0] >= 1.0:
            self._sent.popleft()
        return len(self._sent)

    async def turn(self) -> None:
        now = time.monotonic()
        if self.interval and now - self._limited_at > self.calm_s:
            self.interval = 0.0
        if self.interval or now < self._not_before:
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                delay = max(self._not_before, self._next) - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                self._next = time.monotonic() + self.interval
        now = time.monotonic()
        self._count(now)
        self._sent.append(now)

    def limited(self, retry_after_s: float | None) -> None:
        now = time.monotonic()
        pause = min(retry_after_s if retry_after_s is not None else 1.0, self.max_pause_s)
        self._not_before = max(self._not_before, now + pause)
        if now - self._adjusted_at >= 1.0:  # once per window: a burst of 429s is one signal
            got_through = max(1.0, 0.8 * self._count(now))
            self.interval = min(max(self.interval * 1.25, 1.0 / got_through), self.max_interval_s)
            self._adjusted_at = now
        self._limited_at = now

    def succeeded(self) -> None:
        if self.interval:
            self.interval *= 0.98


class RpcUnavailable(ConnectionError):
    """The node still failed after the bounded retries; the message says how and for how long."""


@dataclass(frozen=True)
class RpcRetry:
    """How hard to retry one JSON-RPC request."""

    attempts: int = 6  # requests in all, the first included
    budget_s: float = 12.0  # never start a sleep that would end later than this after the first try
    base_s: float = 0.2  # exponential backoff (full jitter) from here, without Retry-After
    max_wait_s: float = 5.0  # longest single sleep, Retry-After included

    @classmethod
    def from_settings(cls, settings: Settings) -> RpcRetry:
        return cls(attempts=settings.RPC_RETRY_ATTEMPTS, budget_s=settings.RPC_RETRY_BUDGET_S)


def retry_after(exc: BaseException) -> float | None:
    """The seconds a 429/503 answer asks us to wait (`Retry-After`: seconds or an HTTP date)."""
    headers = getattr(exc, "headers", None)
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value) if value else None
        return None if when is None else max(0.0, when.timestamp() - time.time())


def is_transient(method: str, exc: BaseException) -> bool:
    """Worth another try: rate limited, a gateway error, or the connection failed — but for a
    broadcast only when the node surely did not act (429, or it was never reached)."""
    if isinstance(exc, aiohttp.ClientResponseError):
        if exc.status == 429:
            return True
        return exc.status in RETRY_STATUSES and method != BROADCAST
    if isinstance(exc, aiohttp.ClientConnectorError):
        return True  # no connection was made: nothing was sent
    if isinstance(exc, aiohttp.ClientConnectionError | asyncio.TimeoutError):
        return method != BROADCAST
    return False


def _rate_limited(exc: BaseException | None) -> bool:
    return isinstance(exc, aiohttp.ClientResponseError) and exc.status == 429


def _describe(exc: BaseException | None) -> str:
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"HTTP {exc.status}" + (" (rate limited)" if exc.status == 429 else "")
    return type(exc).__name__ if exc is not None else "no answer"


class RetryingHTTPProvider(AsyncHTTPProvider):
    """`AsyncHTTPProvider` with the retry policy of `RpcRetry` (tenacity) and the constant
    methods cached. web3's own `exception_retry_configuration` is off: it neither honours
    `Retry-After` nor jitters, and it repeats broadcasts after a lost connection."""

    def __init__(self, endpoint_uri: str, *, timeout: float, retry: RpcRetry | None = None) -> None:
        super().__init__(
            endpoint_uri, request_kwargs={"timeout": timeout}, exception_retry_configuration=None,
            cache_allowed_requests=True, cacheable_requests=set(CONSTANT_METHODS),
            request_cache_validation_threshold=None,
        )  # fmt: skip
        self.retry = retry or RpcRetry()
        self.pacer = Pacer(max_pause_s=self.retry.max_wait_s)
        self._backoff = wait_random_exponential(multiplier=self.retry.base_s, max=self.retry.max_wait_s)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if _rate_limited(exc):  # the pacer holds every request until Retry-After ends: only jitter here
            return random.uniform(0, self.retry.base_s)
        asked = retry_after(exc) if exc is not None else None
        if asked is not None:  # a 503 asking for time: that, plus jitter so retries do not arrive together
            return min(asked + random.uniform(0, self.retry.base_s), self.retry.max_wait_s)
        return float(self._backoff(state))

    def _stop(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome is not None else None
        if state.attempt_number >= self.retry.attempts and not _rate_limited(exc):
            return True  # a 429 is bounded by the time budget alone: the node is there, and busy
        return (state.seconds_since_start or 0.0) + (state.upcoming_sleep or 0.0) > self.retry.budget_s

    async def _paced_request(self, method: RPCEndpoint, request_data: bytes) -> bytes:
        await self.pacer.turn()
        try:
            result: bytes = await super()._make_request(method, request_data)
        except aiohttp.ClientResponseError as exc:
            if exc.status == 429:
                self.pacer.limited(retry_after(exc))
            raise
        self.pacer.succeeded()
        return result

    async def _make_request(self, method: RPCEndpoint, request_data: bytes) -> bytes:
        def give_up(state: RetryCallState) -> Any:
            exc = state.outcome.exception() if state.outcome is not None else None
            raise RpcUnavailable(
                f"{method}: the node failed with {_describe(exc)} {state.attempt_number} times "
                f"in {state.seconds_since_start or 0.0:.1f} s"
            ) from exc

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            log.debug("rpc.retry", method=method, error=_describe(exc), attempt=state.attempt_number,
                      sleep_s=round(state.upcoming_sleep or 0.0, 3))  # fmt: skip

        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda exc: is_transient(method, exc)), wait=self._wait, stop=self._stop,
            before_sleep=before_sleep, retry_error_callback=give_up,
        )  # fmt: skip
        result: bytes = await retrying(self._paced_request, method, request_data)
        return result


def connect(rpc_url: str, timeout: float = 30.0) -> Web3:
    """A synchronous Web3 for scripts, deployment and the CLI."""
    return Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))


def connect_async(rpc_url: str, timeout: float = 30.0, retry: RpcRetry | None = None) -> AsyncWeb3[Any]:
    """An asyncio Web3 for the long-running services (retrying, see the module docstring)."""
    return AsyncWeb3(RetryingHTTPProvider(rpc_url, timeout=timeout, retry=retry))


async def close_async(w3: AsyncWeb3[Any]) -> None:
    """Close the provider's HTTP sessions (else aiohttp warns "Unclosed client session" at exit)."""
    disconnect = getattr(w3.provider, "disconnect", None)
    if disconnect is not None:
        await disconnect()
