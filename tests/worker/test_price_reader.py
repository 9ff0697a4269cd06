"""The scheduler's price reader: off-chain prices that do not fit the attested uint64 are dropped."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from autometa.chain.web3 import connect_async
from autometa.prices.models import Price, PriceSource
from autometa.worker.prices import PriceReader


class _Offchain:
    def __init__(self, prices: dict[str, str]) -> None:
        self.prices = prices

    async def get_many(self, assets: list[str]) -> dict[str, Price]:
        now = time.time()
        return {a: Price(a, Decimal(self.prices[a]), PriceSource.COINGECKO_DIRECT, now) for a in assets}


async def test_an_offchain_price_too_large_to_attest_is_dropped(dev_chain: Any) -> None:
    """$5e11 passes the adapter's sanity bound ($1e12) but at 8 decimals it needs 66 bits: packed
    under the run index (`id << 96 | run << 64 | price`) it would corrupt the run index."""
    w3 = connect_async(dev_chain.url)
    try:
        offchain = _Offchain({"dogecoin": "5e11", "shiba-inu": "0.00002", "pepe": "184467440737.09551615"})
        reader = PriceReader(w3, dev_chain.deployment.address, offchain)  # type: ignore[arg-type]
        ticks = await reader.read(["dogecoin", "shiba-inu", "pepe"])
        assert {t.token: t.price for t in ticks} == {"shiba-inu": 2000, "pepe": 2**64 - 1}
    finally:
        await w3.provider.disconnect()  # type: ignore[attr-defined]
