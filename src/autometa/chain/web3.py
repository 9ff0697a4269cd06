"""Web3 connections, with the middleware a chain needs (Moonbase/anvil are plain EVM).

The asyncio connection of the services retries what a public RPC provider throws at a client
that talks to it often: HTTP 429 (rate limited, honouring `Retry-After`), 502/503/504 and lost
connections, with jittered exponential backoff, bounded both in attempts and in total time, so
a node that is really gone still fails within `budget_s` (the API turns that into a 503 with the
reason). A transaction broadcast is retried only when the node cannot have acted on it (429, or
no connection made): anything else is left to the sender, which knows whether the node has it.
`eth_chainId` is answered from a cache after its first success (web3 asks it before every
`eth_call` and `eth_estimateGas` to validate the call's chain).
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
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
        self._backoff = wait_random_exponential(multiplier=self.retry.base_s, max=self.retry.max_wait_s)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        asked = retry_after(exc) if exc is not None else None
        if asked is not None:  # what the provider asks, plus jitter so retries do not arrive together
            return min(asked + random.uniform(0, self.retry.base_s), self.retry.max_wait_s)
        return float(self._backoff(state))

    def _stop(self, state: RetryCallState) -> bool:
        if state.attempt_number >= self.retry.attempts:
            return True
        return (state.seconds_since_start or 0.0) + (state.upcoming_sleep or 0.0) > self.retry.budget_s

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
        result: bytes = await retrying(super()._make_request, method, request_data)
        return result


def connect(rpc_url: str, timeout: float = 30.0) -> Web3:
    """A synchronous Web3 for scripts, deployment and the CLI."""
    return Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))


def connect_async(rpc_url: str, timeout: float = 30.0, retry: RpcRetry | None = None) -> AsyncWeb3[Any]:
    """An asyncio Web3 for the long-running services (retrying, see the module docstring)."""
    return AsyncWeb3(RetryingHTTPProvider(rpc_url, timeout=timeout, retry=retry))
