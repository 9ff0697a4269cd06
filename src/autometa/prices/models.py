"""What a price is, where it came from, and which upstream values we refuse to believe."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from autometa.domain.outcomes import PriceSource as PriceSource  # re-exported: the tiers name it

# Seconds since the epoch. Injected everywhere a TTL matters, so tests never sleep.
Clock = Callable[[], float]
wall_clock: Clock = time.time

# Anything at or above this is a broken feed, not a price (the whole crypto market is ~1e12).
MAX_USD = Decimal("1e12")


@dataclass(frozen=True)
class Price:
    """A USD price. `fetched_at` is when the value left its origin (epoch seconds); `age` is how
    old it was, in seconds, when handed to the caller — so a trigger can refuse stale data."""

    asset: str
    usd: Decimal
    source: PriceSource
    fetched_at: float
    age: float = 0.0

    def served(self, source: PriceSource, now: float) -> Price:
        """The same value as served again from `source` at `now` (age recomputed)."""
        # Direct construction, not dataclasses.replace: this runs on every local-cache hit.
        return Price(self.asset, self.usd, source, self.fetched_at, max(0.0, now - self.fetched_at))

    def to_payload(self) -> dict[str, Any]:
        """The JSON body of `GET /api/price/{symbol}`, which `BackendClient.get_price` reads."""
        return {
            "symbol": self.asset,
            "usd": float(self.usd),
            "source": self.source.value,
            "age_s": round(self.age, 3),
            "fetched_at": self.fetched_at,
        }

    def __str__(self) -> str:
        return f"{self.asset} ${self.usd} (from {self.source.value})"


class PriceError(Exception):
    """An upstream could not give us prices (network, HTTP status, unreadable body)."""


class RateLimited(PriceError):
    """The upstream asked us to wait longer than we are willing to block a caller."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited by upstream; retry in {retry_after:.1f}s")
        self.retry_after = retry_after


def parse_usd(value: Any) -> tuple[Decimal | None, str | None]:
    """`(usd, None)` for a believable price, else `(None, reason)`.

    Feeds do glitch (a 0, a string, NaN, a decimals mix-up ×1e18); passing such a value on could
    fire a trigger, so it is refused here and the reason is logged by the caller.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        return None, f"not a number: {value!r}"
    try:
        usd = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        return None, f"not a number: {value!r}"
    if isinstance(value, float) and not math.isfinite(value) or not usd.is_finite():
        return None, f"not finite: {value!r}"
    if usd <= 0:
        return None, f"not positive: {value!r}"
    if usd > MAX_USD:
        return None, f"absurdly large: {value!r}"
    return usd, None
