"""The backend's price cache, shared by every worker: Redis (30 s per asset) when `REDIS_URL`
is set, an in-process dict otherwise. `/api/price/{symbol}` is served from here.

A miss refreshes every tracked asset in one upstream request, and concurrent misses share it,
so CoinGecko sees about one request per TTL window however many workers ask.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from autometa.domain.assets import validate_asset
from autometa.prices import metrics
from autometa.prices.cache import PriceFetcher, log_price
from autometa.prices.coingecko import CoinGeckoClient
from autometa.prices.models import Clock, Price, PriceError, PriceSource, parse_usd, wall_clock
from autometa.prices.singleflight import BatchFlight

if TYPE_CHECKING:
    from autometa.config import Settings

log = structlog.get_logger("autometa.prices.shared")


class PriceStore(Protocol):
    """Where cached prices live; values are small JSON strings."""

    async def get_many(self, keys: list[str]) -> list[str | None]: ...

    async def set_many(self, items: dict[str, str], ttl: float) -> None: ...


class MemoryStore:
    """The embedded default: a dict with expiry by the injected clock."""

    def __init__(self, clock: Clock = wall_clock) -> None:
        self._clock = clock
        self._data: dict[str, tuple[str, float]] = {}

    async def get_many(self, keys: list[str]) -> list[str | None]:
        now = self._clock()
        values: list[str | None] = []
        for key in keys:
            value, expires = self._data.get(key, (None, 0.0))
            values.append(value if expires > now else None)
        return values

    async def set_many(self, items: dict[str, str], ttl: float) -> None:
        expires = self._clock() + ttl
        self._data.update({k: (v, expires) for k, v in items.items()})


class RedisStore:
    """Redis, one key per asset with a TTL, so every API replica shares one cache."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    @classmethod
    def from_url(cls, url: str, *, max_connections: int = 50, timeout: float = 5.0) -> RedisStore:
        """A blocking pool: under a burst, requests queue for a connection instead of failing
        with "Too many connections" (which would turn every one of them into an upstream miss)."""
        pool = BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=timeout)
        return cls(Redis.from_pool(pool))  # the client owns (and closes) the pool

    async def get_many(self, keys: list[str]) -> list[str | None]:
        values: list[Any] = await self._redis.mget(keys)
        return [v.decode() if isinstance(v, bytes) else v for v in values]

    async def set_many(self, items: dict[str, str], ttl: float) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, value in items.items():
                pipe.set(key, value, px=max(1, int(ttl * 1000)))
            await pipe.execute()

    async def aclose(self) -> None:
        await self._redis.aclose()


class SharedPriceCache:
    """Cached prices for the API. Hits come back as `backend-redis`, fresh upstream fetches as
    `backend-api` — the `source` the worker's `BackendClient` reports."""

    def __init__(
        self,
        upstream: PriceFetcher,
        store: PriceStore | None = None,
        *,
        ttl: float = 30.0,
        prefix: str = "autometa:price:",
        tracked: Iterable[str] = (),
        clock: Clock = wall_clock,
    ) -> None:
        self._upstream = upstream
        self._store = store or MemoryStore(clock)
        self.ttl = ttl
        self.prefix = prefix
        self._tracked: dict[str, None] = dict.fromkeys(validate_asset(a) for a in tracked)
        self._clock = clock
        self._flight: BatchFlight[Price] = BatchFlight()

    @classmethod
    def from_settings(cls, settings: Settings, upstream: PriceFetcher | None = None) -> SharedPriceCache:
        """Redis when `REDIS_URL` is set, else in-process; CoinGecko at `PRICE_FEED_URL`."""
        store = RedisStore.from_url(settings.REDIS_URL) if settings.REDIS_URL else None
        return cls(upstream or CoinGeckoClient(settings.PRICE_FEED_URL), store, tracked=settings.SUPPORTED_ASSETS)

    @property
    def tracked(self) -> list[str]:
        return list(self._tracked)

    async def get(self, asset: str) -> Price | None:
        return (await self.get_many([asset])).get(asset)

    async def get_many(self, assets: Iterable[str]) -> dict[str, Price]:
        """Cached prices, fetching the misses (with every tracked asset) in one upstream call."""
        wanted = list(dict.fromkeys(validate_asset(a) for a in assets))
        found = await self._load(wanted)
        metrics.hit("shared", len(found))
        metrics.miss("shared", len(wanted) - len(found))
        missing = [a for a in wanted if a not in found]
        if missing:
            self._tracked.update(dict.fromkeys(missing))
            found.update(await self._flight.run(missing, self._fetch, widen=self._tracked))
        return found

    async def aclose(self) -> None:
        for part in (self._store, self._upstream):
            close = getattr(part, "aclose", None)
            if close is not None:
                await close()

    async def _load(self, assets: list[str]) -> dict[str, Price]:
        if not assets:
            return {}
        try:
            raw = await self._store.get_many([self.prefix + a for a in assets])
        except RedisError as exc:  # a cache outage costs upstream calls, not availability
            log.warning("price_cache_unavailable", error=str(exc))
            return {}
        now = self._clock()
        found: dict[str, Price] = {}
        for asset, value in zip(assets, raw, strict=True):
            price = _decode(asset, value, now)
            if price is not None and now - price.fetched_at < self.ttl:
                found[asset] = price.served(PriceSource.BACKEND_REDIS, now)
        return found

    async def _fetch(self, assets: list[str]) -> dict[str, Price]:
        # Check again: a caller that missed just before another flight finished writing would
        # otherwise start a second upstream request for prices that are already cached.
        cached = await self._load(assets)
        if len(cached) == len(assets):
            return cached
        try:
            prices = await self._upstream.fetch(assets)
        except PriceError as exc:
            log.warning("price_source_failed", tier="shared-upstream", error=str(exc))
            return cached
        for asset in set(assets) - set(prices):
            self._tracked.pop(asset, None)  # unknown upstream: stop widening every batch with it
        now = self._clock()
        fresh = {a: p.served(PriceSource.BACKEND_API, now) for a, p in prices.items() if a in assets}
        items = {self.prefix + a: json.dumps({"usd": str(p.usd), "fetched_at": p.fetched_at}) for a, p in fresh.items()}
        try:
            if items:
                await self._store.set_many(items, self.ttl)
        except RedisError as exc:
            log.warning("price_cache_unavailable", error=str(exc))
        for price in fresh.values():
            log_price(price)
        return fresh


def _decode(asset: str, value: str | None, now: float) -> Price | None:
    """A stored entry, or None if absent or unreadable (a stray key is a miss, not a crash)."""
    if value is None:
        return None
    try:
        data = json.loads(value)
        usd, _ = parse_usd(Decimal(data["usd"]))
        fetched_at = float(data["fetched_at"])
    except (ValueError, KeyError, TypeError, ArithmeticError):
        return None
    if usd is None:
        return None
    return Price(asset, usd, PriceSource.BACKEND_REDIS, fetched_at=fetched_at, age=max(0.0, now - fetched_at))
