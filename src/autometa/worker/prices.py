"""The prices the scheduler checks price triggers against.

For an asset with a registered feed the contract checks the feed, so the scheduler reads the
same thing, every block: `currentPrice(asset, 0)` on the Autometa contract (the feed's answer
scaled to 8 decimals, refused when stale). Only assets without a feed use the off-chain tiers
(`TieredPriceAdapter`), and that price is then what the executor attests.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import structlog
from web3 import AsyncWeb3
from web3.types import BlockIdentifier

from autometa.chain.contracts import autometa_async
from autometa.domain.assets import asset_to_bytes32
from autometa.domain.kinds import OnchainPriceSource
from autometa.domain.outcomes import PriceSource
from autometa.domain.types import price_to_int
from autometa.prices import TieredPriceAdapter

log = structlog.get_logger("autometa.worker.prices")


MAX_ATTESTED = 2**64 - 1  # an attested price is a uint64 (USD, 8 decimals): ~$1.8e11


@dataclass(frozen=True)
class TickPrice:
    token: str
    price: int  # USD, 8 decimals
    source: str  # "oracle", or the off-chain tier that served it ("local-cache", "coingecko-direct", …)


class PriceReader:
    def __init__(self, w3: AsyncWeb3[Any], address: str, offchain: TieredPriceAdapter | None = None) -> None:
        self.core = autometa_async(w3, address)
        self.offchain = offchain
        self._no_feed: set[str] = set()

    async def _onchain(self, token: str, block: BlockIdentifier) -> TickPrice | None:
        ok, price, source = await self.core.functions.currentPrice(asset_to_bytes32(token), 0).call(
            block_identifier=block
        )
        if int(source) == OnchainPriceSource.ORACLE:
            if not ok:
                log.warning("price.feed_unavailable", token=token)
                return None
            return TickPrice(token, int(price), PriceSource.ORACLE)
        self._no_feed.add(token)
        return None

    async def read(self, tokens: list[str], block: BlockIdentifier = "latest") -> list[TickPrice]:
        """Prices for `tokens` at `block`: oracle where a feed exists, else off-chain."""
        onchain = [t for t in tokens if t not in self._no_feed]
        results = await asyncio.gather(*(self._onchain(t, block) for t in onchain), return_exceptions=True)
        out: list[TickPrice] = []
        for token, result in zip(onchain, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("price.read_failed", token=token, error=str(result))
            elif result is not None:
                out.append(result)
        offchain = [t for t in tokens if t in self._no_feed]
        if offchain and self.offchain is not None:
            found = await self.offchain.get_many(offchain)
            for t, p in found.items():
                raw = price_to_int(p.usd)
                if not 0 < raw <= MAX_ATTESTED:
                    # The executor attests it as a uint64 packed under the run index: a larger
                    # value would spill into the index bits (a corrupted run), a zero is "none".
                    log.warning("price.out_of_range", token=t, usd=str(p.usd), source=p.source.value)
                    continue
                out.append(TickPrice(t, raw, p.source.value))
        return out
