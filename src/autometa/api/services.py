"""What the routes depend on, built once per app from the settings (or handed in by a test or by
`autometa up`, which already holds a store)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from autometa.api.chain import ChainGateway
from autometa.api.chains import ChainRegistry, ServedChain
from autometa.api.metrics import app_registry
from autometa.api.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from autometa.api.relayer import Relayer, RelayerConfig
from autometa.chain.journal import StoreJournal
from autometa.chain.sender import SenderConfig, TransactionSender
from autometa.chain.signers import role_signer
from autometa.config import Settings
from autometa.prices import SharedPriceCache
from autometa.store import Store

log = structlog.get_logger("autometa.api")


@dataclass
class Services:
    settings: Settings
    store: Store
    prices: SharedPriceCache
    chain: ChainGateway
    limiter: RateLimiter
    relayer: Relayer | None = None  # None without RELAYER_SIGNER / RELAYER_PRIVATE_KEY
    redis: Redis | None = None
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    _closers: list[Callable[[], Awaitable[Any] | Any]] = field(default_factory=list)
    # Every served chain (CHAINS); `chain` and `relayer` above are the default (first) one's.
    chains: ChainRegistry | None = None

    def __post_init__(self) -> None:
        if self.chains is None:
            first = self.settings.default_chain
            self.chains = ChainRegistry(
                self.settings, [ServedChain(first, self.settings.for_chain(first), self.chain, self.relayer)]
            )

    @property
    def served(self) -> ChainRegistry:
        assert self.chains is not None  # set by __post_init__
        return self.chains

    @classmethod
    async def from_settings(
        cls,
        settings: Settings,
        *,
        store: Store | None = None,
        prices: SharedPriceCache | None = None,
        chain: ChainGateway | None = None,
        redis_prefix: str = "autometa:",
    ) -> Services:
        """Everything from configuration; parts given here are used as they are and not closed."""
        closers: list[Callable[[], Awaitable[Any] | Any]] = []
        if store is None:
            store = Store.open(settings.database_url)
            closers.append(store.close)
        if prices is None:
            prices = SharedPriceCache.from_settings(settings)
            prices.prefix = redis_prefix + "price:"
            closers.append(prices.aclose)
        default = settings.default_chain
        if chain is None:
            chain = ChainGateway.from_settings(settings.for_chain(default))
            closers.append(chain.aclose)
        redis: Redis | None = None
        limiter: RateLimiter
        if settings.REDIS_URL:
            redis = Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)
            closers.append(redis.aclose)
            limiter = RedisRateLimiter(redis, settings.RATE_LIMIT_PER_MINUTE, prefix=redis_prefix + "ratelimit:")
        else:
            limiter = MemoryRateLimiter(settings.RATE_LIMIT_PER_MINUTE)
        served: list[ServedChain] = []
        for i, entry in enumerate(settings.chains):
            one = settings.for_chain(entry)
            gateway = chain if i == 0 else ChainGateway.from_settings(one)
            if gateway is not chain:
                closers.append(gateway.aclose)
            relayer = await _relayer(one, gateway, store, closers)
            served.append(ServedChain(entry, one, gateway, relayer))
        first = served[0]
        return cls(
            settings,
            store,
            prices,
            chain,
            limiter,
            first.relayer,
            redis,
            app_registry(store),
            closers,
            ChainRegistry(settings, served),
        )

    def chain_for(self, key: str | int | None) -> ServedChain:
        """The served chain a request names (None: the default); a 404 for an unknown one."""
        return self.served.get(key)

    async def aclose(self) -> None:
        for close in reversed(self._closers):
            with contextlib.suppress(Exception):
                result = close()
                if result is not None and hasattr(result, "__await__"):
                    await result
        self._closers.clear()


async def _relayer(
    settings: Settings, gateway: ChainGateway, store: Store, closers: list[Callable[[], Awaitable[Any] | Any]]
) -> Relayer | None:
    """A chain's relayer, when a relayer key is configured for it (None otherwise)."""
    account = await asyncio.to_thread(role_signer, settings, "relayer")  # KMS: looked up and checked
    if account is None:
        return None
    sender = TransactionSender(
        gateway.w3,
        account,
        journal=StoreJournal(store.sent_transactions),
        config=SenderConfig.from_settings(settings),
    )
    config = RelayerConfig(settings.MAX_RELAYER_FEE_WEI, tuple(settings.SUPPORTED_ASSETS))
    relayer = Relayer(gateway, sender, config)
    closers.append(relayer.aclose)  # closed before the gateways: stop following before the chain closes
    relayer.resume_following()
    log.info("relayer_ready", relayer=relayer.address, chain=settings.default_chain.label)  # never the key
    return relayer
