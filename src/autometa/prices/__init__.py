"""Prices: where they come from (CoinGecko, the backend API, on-chain feeds) and the tiered,
single-flight cache that keeps a fleet of workers to about one upstream call per window."""

from autometa.prices.backend import BackendClient, ContractAddresses
from autometa.prices.cache import PriceFetcher, TieredPriceAdapter
from autometa.prices.clock import ManualClock
from autometa.prices.coingecko import CoinGeckoClient, parse_retry_after
from autometa.prices.models import Price, PriceError, PriceSource, RateLimited, parse_usd
from autometa.prices.oracle import OracleSource
from autometa.prices.shared import MemoryStore, RedisStore, SharedPriceCache

__all__ = [
    "BackendClient",
    "CoinGeckoClient",
    "ContractAddresses",
    "ManualClock",
    "MemoryStore",
    "OracleSource",
    "Price",
    "PriceError",
    "PriceFetcher",
    "PriceSource",
    "RateLimited",
    "RedisStore",
    "SharedPriceCache",
    "TieredPriceAdapter",
    "parse_retry_after",
    "parse_usd",
]
