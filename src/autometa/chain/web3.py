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
import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import requests
import structlog
from eth_typing import URI
from eth_utils import keccak
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_random_exponential
from web3 import AsyncHTTPProvider, AsyncWeb3, HTTPProvider, Web3
from web3._utils.rpc_abi import RPC
from web3.types import RPCEndpoint

from autometa.chain.endpoints import Endpoint, EndpointPool
from autometa.chain.pacing import Pacer

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
    return _seconds(headers.get("Retry-After") if headers is not None else None)


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


class BroadcastUncertain(ConnectionError):
    """A raw transaction went to an endpoint that may have taken it, and no endpoint confirmed
    it afterwards: the caller keeps it in flight (journaled) and follows it by hash."""


def split_urls(endpoint_uri: str | Sequence[str]) -> list[str]:
    """The endpoints of a setting: one URL, a comma-separated list, or a sequence."""
    items = endpoint_uri.split(",") if isinstance(endpoint_uri, str) else list(endpoint_uri)
    return [u.strip() for u in items if u.strip()]


def _json_error(reply: bytes) -> str | None:
    try:
        body = json.loads(reply)
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("message", "")) if isinstance(error, dict) else None


class RetryingHTTPProvider(AsyncHTTPProvider):
    """`AsyncHTTPProvider` over one or several endpoints (`EndpointPool`: health-scored, failing
    over), with the retry policy of `RpcRetry` (tenacity) and the constant methods cached. web3's
    own `exception_retry_configuration` is off: it neither honours `Retry-After` nor jitters, and
    it repeats broadcasts after a lost connection.

    With several endpoints a failed request is retried at once on another one. A broadcast the
    first endpoint may have taken is re-sent, same signed bytes, to the next: that is idempotent by
    hash, and "already known" or "nonce too low" for a transaction the node then shows under our
    hash is the success it looks like. If no endpoint confirms it, `BroadcastUncertain` says the
    transaction may be out there (never "not sent")."""

    def __init__(
        self,
        endpoint_uri: str | Sequence[str],
        *,
        timeout: float,
        retry: RpcRetry | None = None,
        failover_after: int = 2,
        cooldown_s: float = 30.0,
    ) -> None:
        urls = split_urls(endpoint_uri)
        super().__init__(
            urls[0],
            request_kwargs={"timeout": timeout},
            exception_retry_configuration=None,
            cache_allowed_requests=True,
            cacheable_requests=set(CONSTANT_METHODS),
            request_cache_validation_threshold=None,
        )
        self.retry = retry or RpcRetry()
        self.pool = EndpointPool(
            urls, failover_after=failover_after, cooldown_s=cooldown_s, max_pause_s=self.retry.max_wait_s
        )
        self._backoff = wait_random_exponential(multiplier=self.retry.base_s, max=self.retry.max_wait_s)

    @property
    def pacer(self) -> Pacer:
        """The pacer of the endpoint in use."""
        return self.pool.endpoints[self.pool.current].pacer

    def _wait(self, state: RetryCallState, last: Endpoint | None) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if last is not None and self.pool.other_available(last):
            return 0.0  # another endpoint can answer now
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

    async def _post(self, endpoint: Endpoint, request_data: bytes) -> bytes:
        reply: bytes = await self._request_session_manager.async_make_post_request(
            URI(endpoint.url), request_data, **self.get_request_kwargs()
        )
        return reply

    async def _paced_request(self, endpoint: Endpoint, request_data: bytes) -> bytes:
        await endpoint.pacer.turn()
        started = time.monotonic()
        try:
            result = await self._post(endpoint, request_data)
        except Exception as exc:
            limited = _rate_limited(exc)
            if limited:
                endpoint.pacer.limited(retry_after(exc))
            self.pool.failed(endpoint, _describe(exc), rate_limited=limited)
            raise
        endpoint.pacer.succeeded()
        self.pool.succeeded(endpoint, time.monotonic() - started)
        return result

    async def _ours_known(self, endpoint: Endpoint, request_data: bytes) -> str | None:
        """The hash of the raw transaction in a broadcast, if `endpoint` knows a transaction by it."""
        try:
            raw = json.loads(request_data)["params"][0]
            tx_hash = "0x" + keccak(hexstr=raw).hex()
            query = json.dumps({"jsonrpc": "2.0", "id": 0, "method": "eth_getTransactionByHash", "params": [tx_hash]})
            reply = json.loads(await self._post(endpoint, query.encode()))
        except Exception:
            return None
        return tx_hash if isinstance(reply, dict) and reply.get("result") else None

    async def _make_request(self, method: RPCEndpoint, request_data: bytes) -> bytes:
        broadcast = method == BROADCAST
        failover = self.pool.several
        uncertain: list[str] = []  # endpoints a broadcast may have reached
        last: list[Endpoint] = []  # the endpoint of the previous attempt

        def transient(exc: BaseException) -> bool:
            if is_transient(method, exc):
                return True
            # another endpoint may take the same signed transaction: idempotent by hash
            return failover and broadcast and isinstance(exc, aiohttp.ClientError | asyncio.TimeoutError)

        async def attempt() -> bytes:
            endpoint = self.pool.pick(avoid=last[-1] if last else None)
            last.append(endpoint)
            try:
                reply = await self._paced_request(endpoint, request_data)
            except Exception as exc:
                if broadcast and not _not_reached(exc):
                    uncertain.append(endpoint.label)
                raise
            if broadcast and uncertain:
                error = _json_error(reply)
                if error is not None and any(
                    p in error.lower()
                    for p in ("already known", "nonce too low", "already imported", "known transaction")
                ):
                    tx_hash = await self._ours_known(endpoint, request_data)
                    if tx_hash is None:  # its nonce is used, maybe by ours on an endpoint we lost: follow it
                        raise BroadcastUncertain(
                            f"{method}: {endpoint.label} answered {error!r} after "
                            f"{', '.join(uncertain)} may have taken the transaction"
                        )
                    log.info("rpc.broadcast_already_taken", endpoint=endpoint.label, tx_hash=tx_hash)
                    request_id = json.loads(request_data).get("id")
                    return json.dumps({"jsonrpc": "2.0", "id": request_id, "result": tx_hash}).encode()
            return reply

        def give_up(state: RetryCallState) -> Any:
            exc = state.outcome.exception() if state.outcome is not None else None
            if uncertain:
                raise BroadcastUncertain(
                    f"{method}: {', '.join(uncertain)} may have taken the transaction; no endpoint confirmed it "
                    f"({_describe(exc)})"
                ) from exc
            raise RpcUnavailable(
                f"{method}: the node failed with {_describe(exc)} {state.attempt_number} times "
                f"in {state.seconds_since_start or 0.0:.1f} s"
            ) from exc

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            log.debug(
                "rpc.retry",
                method=method,
                error=_describe(exc),
                attempt=state.attempt_number,
                endpoint=last[-1].label if last else None,
                sleep_s=round(state.upcoming_sleep or 0.0, 3),
            )

        retrying = AsyncRetrying(
            retry=retry_if_exception(transient),
            wait=lambda st: self._wait(st, last[-1] if last else None),
            stop=self._stop,
            before_sleep=before_sleep,
            retry_error_callback=give_up,
        )
        result: bytes = await retrying(attempt)
        return result


def _not_reached(exc: BaseException) -> bool:
    """The endpoint surely did not act on the request: rate limited, or no connection made."""
    return _rate_limited(exc) or isinstance(exc, aiohttp.ClientConnectorError)


class FailoverHTTPProvider(HTTPProvider):
    """The synchronous connection (indexer, CLI, deployment), over one or several endpoints
    (`EndpointPool`). HTTP 429 waits out `Retry-After` (a public provider's answer to a client
    that asks often; the indexer is one) on that endpoint or moves to another; a read that fails
    otherwise is asked of the next usable endpoint, or again after a backoff when there is only
    one. All within `RpcRetry`'s attempts and time budget. A broadcast is repeated only after a
    429 (the node did not act); the asyncio sender is the one that follows transactions by hash."""

    def __init__(
        self,
        urls: list[str],
        *,
        timeout: float,
        retry: RpcRetry | None = None,
        failover_after: int = 2,
        cooldown_s: float = 30.0,
    ) -> None:
        super().__init__(urls[0], request_kwargs={"timeout": timeout}, exception_retry_configuration=None)
        self.retry = retry or RpcRetry()
        self.pool = EndpointPool(
            urls, failover_after=failover_after, cooldown_s=cooldown_s, max_pause_s=self.retry.max_wait_s
        )

    def _make_request(self, method: RPCEndpoint, request_data: bytes) -> bytes:
        started = time.monotonic()
        last: Endpoint | None = None
        for attempt in range(1, 1_000):
            endpoint = self.pool.pick(avoid=last)
            endpoint.pacer.turn_blocking()  # after a 429: Retry-After, then paced like the async side
            sent_at = time.monotonic()
            try:
                reply: bytes = self._request_session_manager.make_post_request(
                    URI(endpoint.url), request_data, **self.get_request_kwargs()
                )
            except requests.RequestException as exc:
                status = exc.response.status_code if exc.response is not None else None
                limited = status == 429
                if limited:
                    asked = exc.response.headers.get("Retry-After") if exc.response is not None else None
                    endpoint.pacer.limited(_seconds(asked))
                self.pool.failed(endpoint, f"HTTP {status}" if status else type(exc).__name__, rate_limited=limited)
                retryable = limited or (method != BROADCAST and (status is None or status in RETRY_STATUSES))
                elapsed = time.monotonic() - started
                if not retryable or elapsed > self.retry.budget_s or (attempt >= self.retry.attempts and not limited):
                    raise
                last = endpoint
                if not limited and not self.pool.other_available(endpoint):
                    time.sleep(min(self.retry.base_s * 2**attempt * random.random(), self.retry.max_wait_s))
                log.debug("rpc.retry", method=method, endpoint=endpoint.label, attempt=attempt, status=status)
                continue
            endpoint.pacer.succeeded()
            self.pool.succeeded(endpoint, time.monotonic() - sent_at)
            return reply
        raise AssertionError("unreachable")


def _seconds(value: str | None) -> float | None:
    """A `Retry-After` header as seconds (a number or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        return None if when is None else max(0.0, when.timestamp() - time.time())


def connect(
    rpc_url: str,
    timeout: float = 30.0,
    retry: RpcRetry | None = None,
    failover_after: int = 2,
    cooldown_s: float = 30.0,
) -> Web3:
    """A synchronous Web3 for scripts, deployment, the indexer and the CLI; `rpc_url` may list
    several endpoints, comma-separated (`FailoverHTTPProvider`)."""
    return Web3(
        FailoverHTTPProvider(
            split_urls(rpc_url), timeout=timeout, retry=retry, failover_after=failover_after, cooldown_s=cooldown_s
        )
    )


def connect_async(
    rpc_url: str | Sequence[str],
    timeout: float = 30.0,
    retry: RpcRetry | None = None,
    failover_after: int = 2,
    cooldown_s: float = 30.0,
) -> AsyncWeb3[Any]:
    """An asyncio Web3 for the long-running services (retrying and failing over, see
    `RetryingHTTPProvider`); `rpc_url` may list several endpoints, comma-separated."""
    return AsyncWeb3(
        RetryingHTTPProvider(
            rpc_url, timeout=timeout, retry=retry, failover_after=failover_after, cooldown_s=cooldown_s
        )
    )


def connect_settings(settings: Settings, timeout: float = 30.0) -> AsyncWeb3[Any]:
    """`connect_async` with the retry and failover settings."""
    return connect_async(
        settings.rpc_url,
        timeout=timeout,
        retry=RpcRetry.from_settings(settings),
        failover_after=settings.RPC_FAILOVER_AFTER,
        cooldown_s=settings.RPC_COOLDOWN_S,
    )


async def close_async(w3: AsyncWeb3[Any]) -> None:
    """Close the provider's HTTP sessions (else aiohttp warns "Unclosed client session" at exit)."""
    disconnect = getattr(w3.provider, "disconnect", None)
    if disconnect is not None:
        await disconnect()
