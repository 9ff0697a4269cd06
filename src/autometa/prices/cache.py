"""The worker's tiered price lookup: local cache (15 s) → backend (its shared 30 s cache) →
CoinGecko direct (→ on-chain oracle, when given).

Why tiers: ten workers each polling fifty tokens must not each hit CoinGecko's free tier. The
local cache absorbs repeat lookups, the backend shares one upstream fetch among all workers,
and the direct path keeps a worker running while the backend is down. Every miss refreshes
every stale tracked asset in one batched flight, and concurrent misses share that flight.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import structlog

from autometa.domain.assets import validate_asset
from autometa.prices import metrics
from autometa.prices.backend import BackendClient
from autometa.prices.coingecko import CoinGeckoClient
from autometa.prices.models import Clock, Price, PriceError, PriceSource, wall_clock
from autometa.prices.singleflight import BatchFlight

if TYPE_CHECKING:
    from autometa.config import Settings

log = structlog.get_logger("autometa.prices")


class PriceFetcher(Protocol):
    """A batched upstream: `CoinGeckoClient`, `OracleSource`, or anything shaped like them."""

    def fetch(self, assets: list[str]) -> Awaitable[dict[str, Price]]: ...


@dataclass(frozen=True)
class _Entry:
    price: Price  # as received, with its upstream source
    stored_at: float


def log_price(price: Price) -> None:
    """The seed's `price ethereum $3198.15 (from backend-redis)`, as a structured event."""
    log.info("price", asset=price.asset, usd=str(price.usd), source=price.source.value, age_s=round(price.age, 3))


class TieredPriceAdapter:
    """Price lookups for one worker process. Returned prices carry the tier that served them."""

    def __init__(
        self,
        coingecko: PriceFetcher | None,
        backend: BackendClient | None = None,
        *,
        oracle: PriceFetcher | None = None,
        tracked: Iterable[str] = (),
        local_ttl: float = 15.0,
        negative_ttl: float = 5.0,
        backend_retry_after: float = 10.0,
        clock: Clock = wall_clock,
    ) -> None:
        self._coingecko = coingecko
        self._backend = backend
        self._oracle = oracle
        self._tracked: dict[str, None] = dict.fromkeys(validate_asset(a) for a in tracked)
        self.local_ttl = local_ttl
        self.negative_ttl = negative_ttl
        self.backend_retry_after = backend_retry_after
        self._clock = clock
        self._local: dict[str, _Entry] = {}
        self._absent_until: dict[str, float] = {}
        self._backend_down_until = 0.0
        self._flight: BatchFlight[Price] = BatchFlight()
        self._refresher: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, oracle: PriceFetcher | None = None) -> TieredPriceAdapter:
        """Wire the tiers from configuration; `USE_BACKEND_INTEGRATION=false` drops the backend."""
        backend = BackendClient(settings.BACKEND_API_URL) if settings.USE_BACKEND_INTEGRATION else None
        return cls(CoinGeckoClient(settings.PRICE_FEED_URL), backend, oracle=oracle, tracked=settings.SUPPORTED_ASSETS)

    @property
    def tracked(self) -> list[str]:
        return list(self._tracked)

    async def get(self, asset: str) -> Price | None:
        """`asset`'s price, or None when no tier could give one (logged)."""
        entry = self._local.get(asset)  # fast path: a fresh local entry (the common case)
        if entry is not None and (now := self._clock()) - entry.stored_at < self.local_ttl:
            metrics.hit("local")
            return entry.price.served(PriceSource.LOCAL_CACHE, now)
        return (await self.get_many([asset])).get(asset)

    async def get_many(self, assets: Iterable[str]) -> dict[str, Price]:
        """Prices for `assets`; those no tier could price are absent. At most one upstream
        flight, which also refreshes every other stale tracked asset."""
        now = self._clock()
        wanted = list(dict.fromkeys(validate_asset(a) for a in assets))
        found: dict[str, Price] = {}
        missing: list[str] = []
        for asset in wanted:
            entry = self._local.get(asset)
            if entry is not None and now - entry.stored_at < self.local_ttl:
                found[asset] = entry.price.served(PriceSource.LOCAL_CACHE, now)
            elif self._absent_until.get(asset, 0.0) <= now:
                missing.append(asset)
        metrics.hit("local", len(found))
        metrics.miss("local", len(wanted) - len(found))
        if missing:
            self._tracked.update(dict.fromkeys(missing))
            found.update(await self._flight.run(missing, self._fetch, widen=self._stale(now)))
        return found

    async def refresh(self) -> dict[str, Price]:
        """Fetch every tracked asset now, in one flight (the background refresher's step)."""
        return await self._flight.run(self.tracked, self._fetch)

    def start(self, interval: float | None = None) -> None:
        """Refresh in the background a little faster than the local TTL, so lookups stay hits."""
        if self._refresher is None:
            self._refresher = asyncio.create_task(self._refresh_forever(interval or self.local_ttl * 0.8))

    async def aclose(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
            self._refresher = None
        for client in (self._backend, self._coingecko, self._oracle):
            close = getattr(client, "aclose", None)
            if close is not None:
                await close()

    async def _refresh_forever(self, interval: float) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:  # keep refreshing; one bad round must not end the loop
                log.exception("price_refresh_failed")
            await asyncio.sleep(interval)

    def _stale(self, now: float) -> list[str]:
        """Tracked assets at 80% of their TTL or beyond: worth riding along on a flight that is
        going upstream anyway, so they do not each cause their own miss moments later."""
        return [
            a for a in self._tracked if (e := self._local.get(a)) is None or now - e.stored_at >= self.local_ttl * 0.8
        ]

    async def _fetch(self, assets: list[str]) -> dict[str, Price]:
        """One flight: backend first, then CoinGecko for what is left, then the oracle."""
        prices = await self._from_backend(assets)
        for tier, source in (("coingecko", self._coingecko), ("oracle", self._oracle)):
            rest = [a for a in assets if a not in prices]
            if rest and source is not None:
                prices.update(await self._from_upstream(tier, source, rest))
        now = self._clock()
        for asset in assets:
            if asset in prices:
                self._local[asset] = _Entry(prices[asset], now)
                self._absent_until.pop(asset, None)
                log_price(prices[asset])
            else:
                self._absent_until[asset] = now + self.negative_ttl
                log.warning("price_unavailable", asset=asset)
        return prices

    async def _from_backend(self, assets: list[str]) -> dict[str, Price]:
        if self._backend is None or self._clock() < self._backend_down_until:
            return {}
        answers = await asyncio.gather(*(self._backend.get_price(a) for a in assets))
        prices = {p.asset: p for p in answers if p is not None}
        metrics.hit("backend", len(prices))
        metrics.miss("backend", len(assets) - len(prices))
        if not self._backend.available:
            self._backend_down_until = self._clock() + self.backend_retry_after
            log.warning("backend_down_fallback", retry_in_s=self.backend_retry_after, fallback="coingecko-direct")
        return prices

    async def _from_upstream(self, tier: str, source: PriceFetcher, assets: list[str]) -> dict[str, Price]:
        try:
            prices = await source.fetch(assets)
        except PriceError as exc:
            log.warning("price_source_failed", tier=tier, error=str(exc))
            prices = {}
        prices = {a: p for a, p in prices.items() if a in assets}
        metrics.hit(tier, len(prices))
        metrics.miss(tier, len(assets) - len(prices))
        return prices
