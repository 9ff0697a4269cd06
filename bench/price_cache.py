"""Benchmark: upstream calls and lookup latency, tiered single-flight cache vs seed-style.

10 workers each check 50 tokens every simulated second for 120 simulated seconds (a hand-moved
clock; the HTTP is real, against the local CoinGecko and backend stand-ins). All workers step
in lockstep, the worst case for a thundering herd when entries expire together.

- tiered: `TieredPriceAdapter` per worker → one shared backend (`SharedPriceCache`, in-process
  store, or Redis with --redis-url) → CoinGecko, batched and single-flight at every level.
- seed-style: per-worker 15 s dict → shared 30 s dict (the backend's Redis) → one CoinGecko
  request per symbol on a miss, with no single-flight, as the seed's adapters did.

Progress goes to stderr; the last stdout line is one JSON object.
Run: .venv/bin/python bench/price_cache.py [--workers 10 --tokens 50 --seconds 120 --redis-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import structlog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.support

from tests.support.coingecko_stub import BackendStub, CoinGeckoStub  # noqa: E402

from autometa.prices import BackendClient, CoinGeckoClient, ManualClock, Price, TieredPriceAdapter  # noqa: E402

LOCAL_TTL, SHARED_TTL = 15.0, 30.0


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class SeedStyleAdapter:
    """The seed's flow without batching or single-flight: per-symbol GETs on every miss."""

    def __init__(self, url: str, shared: dict[str, tuple[float, float]], clock: ManualClock) -> None:
        self._url = url
        self._shared = shared  # symbol -> (usd, stored_at): stands in for the backend's Redis
        self._local: dict[str, tuple[float, float]] = {}
        self._clock = clock
        self._client = httpx.AsyncClient(timeout=10)

    async def get(self, symbol: str) -> float | None:
        now = self._clock()
        for cache, ttl in ((self._local, LOCAL_TTL), (self._shared, SHARED_TTL)):
            hit = cache.get(symbol)
            if hit is not None and now - hit[1] < ttl:
                self._local[symbol] = hit if cache is self._local else (hit[0], now)
                return hit[0]
        response = await self._client.get(self._url, params={"ids": symbol, "vs_currencies": "usd"})
        usd = float(response.json()[symbol]["usd"])
        self._shared[symbol] = self._local[symbol] = (usd, self._clock())
        return usd

    async def aclose(self) -> None:
        await self._client.aclose()


async def simulate(adapters: list[Any], tokens: list[str], seconds: int, clock: ManualClock, label: str) -> list[float]:
    """Every simulated second, every worker looks up every token; returns lookup latencies (s)."""
    latencies: list[float] = []

    async def worker(adapter: Any) -> None:
        for token in tokens:
            started = time.perf_counter()
            price: Price | float | None = await adapter.get(token)
            latencies.append(time.perf_counter() - started)
            if price is None:
                raise RuntimeError(f"{label}: no price for {token}")

    for second in range(seconds):
        await asyncio.gather(*(worker(a) for a in adapters))
        clock.advance(1.0)
        if (second + 1) % 20 == 0:
            progress(f"  {label}: {second + 1}/{seconds} simulated s, {len(latencies)} lookups")
    return latencies


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tokens = [f"token-{i:02d}" for i in range(args.tokens)]
    prices = {t: round(1 + i * 1.37, 2) for i, t in enumerate(tokens)}
    clock = ManualClock()
    with CoinGeckoStub(prices) as coingecko:
        progress(f"tiered: {args.workers} workers x {args.tokens} tokens x {args.seconds} s")
        prefix = f"bench:autometa:price:{uuid.uuid4().hex}:"
        with BackendStub(coingecko.url, assets=tokens, clock=clock, redis_url=args.redis_url, prefix=prefix) as backend:
            adapters = [
                TieredPriceAdapter(
                    CoinGeckoClient(coingecko.url, clock=clock),
                    BackendClient(backend.url, clock=clock),
                    tracked=tokens,
                    clock=clock,
                )
                for _ in range(args.workers)
            ]
            tiered = await simulate(adapters, tokens, args.seconds, clock, "tiered")
            for adapter in adapters:
                await adapter.aclose()
            upstream, backend_calls = coingecko.requests, sum(backend.requests.values())
            if args.redis_url:
                await _drop_keys(args.redis_url, prefix)

        progress("seed-style: same load, per-symbol fetches, no single-flight")
        coingecko.reset(prices)
        shared: dict[str, tuple[float, float]] = {}
        seeds = [SeedStyleAdapter(coingecko.url, shared, clock) for _ in range(args.workers)]
        seed = await simulate(seeds, tokens, args.seconds, clock, "seed-style")
        for s in seeds:
            await s.aclose()
        seed_upstream = coingecko.requests

    windows = math.ceil(args.seconds / SHARED_TTL)
    return {
        "workers": args.workers,
        "tokens": args.tokens,
        "simulated_seconds": args.seconds,
        "lookups": len(tiered),
        "shared_store": "redis" if args.redis_url else "memory",
        "upstream_calls": upstream,
        "upstream_windows_30s": windows,
        "target_met": upstream <= windows,
        "backend_requests": backend_calls,
        "seed_style_upstream_calls": seed_upstream,
        "lookup_p50_us": round(statistics.median(tiered) * 1e6, 1),
        "lookup_p99_us": round(statistics.quantiles(tiered, n=100)[98] * 1e6, 1),
        "seed_style_lookup_p50_us": round(statistics.median(seed) * 1e6, 1),
    }


async def _drop_keys(url: str, prefix: str) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(url)
    keys = [k async for k in redis.scan_iter(match=prefix + "*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=10)
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL"),
        help="share the backend's cache through this Redis (default: $REDIS_URL, else in-process)",
    )
    args = parser.parse_args()
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    result = asyncio.run(run(args))
    progress(f"done: {result['upstream_calls']} upstream calls vs {result['seed_style_upstream_calls']} seed-style")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
