"""Fee policy: EIP-1559 fees (or a legacy gas price) under a cap, and the bump for a replacement.

EIP-1559: tip = the configured priority fee (or the node's eth_maxPriorityFeePerGas), maxFee =
min(2 × baseFee + tip, cap), tip ≤ maxFee. Legacy (no baseFee, or configured): gasPrice =
min(eth_gasPrice, cap). A replacement bumps every fee field by at least `bump_percent` (never less
than the 10 % nodes require) and takes the current market fees if they are higher, up to the cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from web3 import AsyncWeb3

GWEI = 10**9
NODE_MIN_BUMP_PERCENT = 10


@dataclass(frozen=True)
class Fees:
    """Either EIP-1559 fees (max_fee_per_gas + max_priority_fee_per_gas) or a legacy gas_price."""

    max_fee_per_gas: int | None = None
    max_priority_fee_per_gas: int | None = None
    gas_price: int | None = None

    @property
    def is_legacy(self) -> bool:
        return self.gas_price is not None

    @property
    def tx_type(self) -> str:
        return "legacy" if self.is_legacy else "eip1559"

    def as_params(self) -> dict[str, int]:
        if self.gas_price is not None:
            return {"gasPrice": self.gas_price}
        assert self.max_fee_per_gas is not None and self.max_priority_fee_per_gas is not None
        return {"maxFeePerGas": self.max_fee_per_gas, "maxPriorityFeePerGas": self.max_priority_fee_per_gas}

    @property
    def ceiling(self) -> int:
        """The most per gas this transaction can cost."""
        return self.gas_price if self.gas_price is not None else int(self.max_fee_per_gas or 0)

    def __str__(self) -> str:
        if self.gas_price is not None:
            return f"gasPrice={self.gas_price / GWEI:.3f} gwei"
        return (
            f"maxFee={int(self.max_fee_per_gas or 0) / GWEI:.3f} gwei "
            f"tip={int(self.max_priority_fee_per_gas or 0) / GWEI:.3f} gwei"
        )


def _bumped(value: int, percent: int) -> int:
    return -(-value * (100 + percent) // 100)  # ceil


def _min_bump(value: int) -> int:
    return _bumped(value, NODE_MIN_BUMP_PERCENT)


@dataclass(frozen=True)
class FeePolicy:
    cap_wei: int
    priority_fee_wei: int | None = None  # None: ask the node (eth_maxPriorityFeePerGas)
    legacy: bool | None = None  # None: legacy exactly when the chain's blocks have no baseFee
    bump_percent: int = 15

    async def base_fee(self, w3: AsyncWeb3[Any]) -> int | None:
        """The next block's base fee (the pending block's, else the latest's); None on a
        pre-London chain."""
        for ident in ("pending", "latest"):
            try:
                block = await w3.eth.get_block(ident)
            except Exception:
                continue
            base = block.get("baseFeePerGas")
            if base is not None:
                return int(base)
            if ident == "latest":
                return None
        return None

    async def current(self, w3: AsyncWeb3[Any]) -> Fees:
        """Fees for a new transaction now."""
        return (await self.quote(w3))[0]

    async def quote(self, w3: AsyncWeb3[Any]) -> tuple[Fees, int]:
        """Fees for a new transaction now, and the market price per gas they answer: the next
        block's base fee (EIP-1559), or the node's gas price (legacy). Above the cap, no fee this
        policy may pay gets a transaction mined now."""
        base = None if self.legacy is True else await self.base_fee(w3)
        if base is None:
            price = int(await w3.eth.gas_price)
            return Fees(gas_price=min(price, self.cap_wei)), price
        tip = self.priority_fee_wei if self.priority_fee_wei is not None else int(await w3.eth.max_priority_fee)
        return self._eip1559(base, tip), base

    def from_base_fee(self, base_fee: int) -> Fees | None:
        """Fees from a base fee the caller read already (a recent block's header), without a
        request; None when the node must be asked (legacy pricing, or no fixed priority fee).
        Twice the base fee covers six full blocks of base-fee rises (12.5 % each)."""
        if self.legacy is True or self.priority_fee_wei is None or base_fee <= 0:
            return None
        return self._eip1559(base_fee, self.priority_fee_wei)

    def _eip1559(self, base: int, tip: int) -> Fees:
        max_fee = min(2 * base + tip, self.cap_wei)
        return Fees(max_fee_per_gas=max_fee, max_priority_fee_per_gas=min(tip, max_fee))

    def bump(self, previous: Fees, market: Fees) -> Fees | None:
        """Fees for a replacement of a transaction sent with `previous`: each field at least
        `bump_percent` higher and at least the market's, capped. None when the cap leaves no room
        for the 10 % a node requires (the replacement would be refused)."""
        pct = max(self.bump_percent, NODE_MIN_BUMP_PERCENT)
        if previous.gas_price is not None:
            market_price = market.gas_price if market.gas_price is not None else market.ceiling
            price = min(max(_bumped(previous.gas_price, pct), market_price), self.cap_wei)
            if price < _min_bump(previous.gas_price):
                return None
            return Fees(gas_price=price)
        old_max = int(previous.max_fee_per_gas or 0)
        old_tip = int(previous.max_priority_fee_per_gas or 0)
        tip = max(_bumped(old_tip, pct), int(market.max_priority_fee_per_gas or 0))
        max_fee = max(_bumped(old_max, pct), int(market.max_fee_per_gas or 0), tip)
        max_fee = min(max_fee, self.cap_wei)
        tip = min(tip, max_fee)
        if max_fee < _min_bump(old_max) or tip < _min_bump(old_tip):
            return None
        return Fees(max_fee_per_gas=max_fee, max_priority_fee_per_gas=tip)
