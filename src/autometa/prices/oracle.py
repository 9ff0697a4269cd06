"""On-chain prices from Chainlink-style AggregatorV3Interface feeds.

This is the price the contract itself checks a trigger against, so it is the authority wherever
a feed is registered; the off-chain tiers exist for tokens without one and to pre-screen cheaply.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import structlog
from web3 import AsyncWeb3

from autometa.contracts import load_artifact
from autometa.prices.models import Clock, Price, PriceSource, parse_usd, wall_clock

log = structlog.get_logger("autometa.prices.oracle")


class OracleSource:
    """Reads `latestRoundData` + `decimals` from the feed registered for each asset."""

    def __init__(
        self,
        w3: AsyncWeb3[Any],
        feeds: Mapping[str, str],
        *,
        max_age: float | None = None,
        clock: Clock = wall_clock,
    ) -> None:
        self._w3 = w3
        self._feeds = {asset: AsyncWeb3.to_checksum_address(addr) for asset, addr in feeds.items()}
        self._abi = load_artifact("MockV3Aggregator").abi
        self._decimals: dict[str, int] = {}  # immutable per feed, so read once
        self.max_age = max_age
        self._clock = clock

    @property
    def assets(self) -> list[str]:
        return sorted(self._feeds)

    async def get_price(self, asset: str) -> Price | None:
        """The feed's latest answer, or None (logged) without a feed, on RPC failure, for a
        non-positive/absurd answer, or when older than `max_age`."""
        address = self._feeds.get(asset)
        if address is None:
            return None
        feed = self._w3.eth.contract(address=address, abi=self._abi)
        try:
            if asset not in self._decimals:
                self._decimals[asset] = int(await feed.functions.decimals().call())
            _round, answer, _started, updated_at, _answered = await feed.functions.latestRoundData().call()
        except Exception as exc:  # web3 raises many unrelated types for one failed eth_call
            log.warning("oracle_unavailable", asset=asset, feed=address, error=type(exc).__name__, detail=str(exc))
            return None
        usd, reason = parse_usd(Decimal(int(answer)).scaleb(-self._decimals[asset]))
        if usd is None:
            log.warning("price_rejected", asset=asset, source=PriceSource.ORACLE.value, feed=address, reason=reason)
            return None
        age = max(0.0, self._clock() - float(updated_at))
        if self.max_age is not None and age > self.max_age:
            log.warning("price_rejected", asset=asset, source=PriceSource.ORACLE.value, reason=f"stale: {age:.0f}s old")
            return None
        return Price(asset, usd, PriceSource.ORACLE, fetched_at=float(updated_at), age=age)

    async def fetch(self, assets: list[str]) -> dict[str, Price]:
        """Same shape as `CoinGeckoClient.fetch`, for assets that have a feed."""
        prices: dict[str, Price] = {}
        for asset in assets:
            price = await self.get_price(asset)
            if price is not None:
                prices[asset] = price
        return prices
