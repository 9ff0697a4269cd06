"""Prometheus counters for the price tiers, safe to import (or reload) more than once."""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter


def _counter(name: str, documentation: str) -> Counter:
    """Create the counter once; a second import (module reload in tests, two import paths)
    gets the already-registered one instead of a duplicate-timeseries error."""
    existing = REGISTRY._names_to_collectors.get(name)  # noqa: SLF001 - no public lookup exists
    if isinstance(existing, Counter):
        return existing
    return Counter(name, documentation, ["tier"], registry=REGISTRY)


CACHE_HITS = _counter("autometa_price_cache_hits_total", "Price lookups answered by a tier")
CACHE_MISSES = _counter("autometa_price_cache_misses_total", "Price lookups a tier could not answer")


TIERS = ("local", "backend", "coingecko", "oracle", "shared")
# Label children resolved once: `.labels()` on every lookup would dominate a local-cache hit.
_HITS = {tier: CACHE_HITS.labels(tier=tier) for tier in TIERS}
_MISSES = {tier: CACHE_MISSES.labels(tier=tier) for tier in TIERS}


def hit(tier: str, n: int = 1) -> None:
    if n:
        _HITS[tier].inc(n)


def miss(tier: str, n: int = 1) -> None:
    if n:
        _MISSES[tier].inc(n)
