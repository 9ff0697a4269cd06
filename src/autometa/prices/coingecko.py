"""CoinGecko's `/simple/price`: one batched request for many ids, polite about rate limits.

The free API allows a few calls a minute. So: every id in one request, `Retry-After` obeyed
(and remembered, so the next caller waits too instead of earning another 429), transient
failures retried with capped exponential backoff and full jitter, and values that cannot be
prices dropped with a logged reason.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import structlog

from autometa.prices.models import Clock, Price, PriceError, PriceSource, RateLimited, parse_usd, wall_clock

log = structlog.get_logger("autometa.prices.coingecko")

Sleep = Callable[[float], Awaitable[None]]
# CoinGecko documents no hard cap on ids; this keeps the URL well under common 8 KB limits.
MAX_IDS_PER_REQUEST = 250
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


class CoinGeckoClient:
    """Async client for `PRICE_FEED_URL` (the full `/simple/price` endpoint URL)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        max_attempts: int = 4,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        max_wait: float = 30.0,
        headers: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
        clock: Clock = wall_clock,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.url = url
        self.max_attempts = max(1, max_attempts)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)), headers=dict(headers or {})
        )
        self._blocked_until = 0.0

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    async def fetch(self, assets: Iterable[str]) -> dict[str, Price]:
        """USD prices for `assets` in as few requests as possible (one per 250 ids).

        Ids CoinGecko does not know, and values refused by `parse_usd`, are simply absent from
        the result. Raises `PriceError` when the upstream cannot be reached or read, and
        `RateLimited` when it asks for a longer pause than `max_wait`.
        """
        ids = sorted(set(assets))
        prices: dict[str, Price] = {}
        for start in range(0, len(ids), MAX_IDS_PER_REQUEST):
            chunk = ids[start : start + MAX_IDS_PER_REQUEST]
            body = await self._request(chunk)
            prices.update(self._parse(body, chunk))
        return prices

    async def _request(self, ids: list[str]) -> Any:
        params = {"ids": ",".join(ids), "vs_currencies": "usd"}
        for attempt in range(self.max_attempts):
            await self._wait_out_rate_limit()
            last = attempt == self.max_attempts - 1
            try:
                response = await self._client.get(self.url, params=params)
            except httpx.HTTPError as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if last:
                    raise PriceError(f"CoinGecko unreachable: {reason}") from exc
                await self._backoff(attempt, reason)
                continue
            if response.status_code == 200:
                return _decode(response)
            if response.status_code not in RETRYABLE_STATUS:
                raise PriceError(f"CoinGecko answered HTTP {response.status_code}")
            retry_after = parse_retry_after(response.headers.get("retry-after"), self._clock())
            if response.status_code == 429:
                self._note_rate_limit(retry_after)
            if last:
                raise PriceError(f"CoinGecko answered HTTP {response.status_code} {self.max_attempts} times")
            await self._backoff(attempt, f"HTTP {response.status_code}", retry_after)
        raise AssertionError("unreachable")  # pragma: no cover

    def _note_rate_limit(self, retry_after: float | None) -> None:
        wait = retry_after if retry_after is not None else self._jitter(0)
        self._blocked_until = max(self._blocked_until, self._clock() + wait)
        log.warning("coingecko_rate_limited", retry_after=retry_after)
        if wait > self.max_wait:
            raise RateLimited(wait)

    async def _wait_out_rate_limit(self) -> None:
        wait = self._blocked_until - self._clock()
        if wait <= 0:
            return
        if wait > self.max_wait:
            raise RateLimited(wait)
        await self._sleep(wait)

    def _jitter(self, attempt: int) -> float:
        """Full jitter: spreads the retries of many workers instead of synchronising them."""
        return self._rng.uniform(0, min(self.backoff_max, self.backoff_base * 2**attempt))

    async def _backoff(self, attempt: int, reason: str, retry_after: float | None = None) -> None:
        """Sleep before the next attempt: at least `Retry-After` when given (plus a little jitter
        so a fleet of workers does not return on the same tick), else exponential backoff."""
        if retry_after is not None:
            delay = retry_after + self._rng.uniform(0, self.backoff_base)
        else:
            delay = self._jitter(attempt)
        log.info("coingecko_retry", attempt=attempt + 1, reason=reason, delay_s=round(delay, 3))
        if delay > 0:
            await self._sleep(delay)

    def _parse(self, body: Any, ids: list[str]) -> dict[str, Price]:
        if not isinstance(body, dict):
            raise PriceError(f"CoinGecko body is a {type(body).__name__}, not an object")
        now = self._clock()
        prices: dict[str, Price] = {}
        for asset in ids:
            entry = body.get(asset)
            if entry is None:
                log.warning("price_rejected", asset=asset, reason="not in CoinGecko response (unknown id?)")
                continue
            usd, reason = parse_usd(entry.get("usd")) if isinstance(entry, dict) else (None, "malformed entry")
            if usd is None:
                log.warning("price_rejected", asset=asset, source=PriceSource.COINGECKO_DIRECT.value, reason=reason)
                continue
            prices[asset] = Price(asset, usd, PriceSource.COINGECKO_DIRECT, fetched_at=now)
        return prices


def _decode(response: httpx.Response) -> Any:
    """JSON with floats as Decimal (no binary rounding), and NaN/Infinity kept so they can be
    refused with a reason rather than crash the parse."""
    try:
        return json.loads(response.text, parse_float=Decimal)
    except ValueError as exc:
        raise PriceError(f"CoinGecko body is not JSON: {response.text[:80]!r}") from exc
