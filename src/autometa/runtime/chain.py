"""One chain as a worker process sees it: which chain (`ChainTarget`) and the parts every runtime
on it shares (`ChainLink`): the store claimed for the chain's genesis, one queue, the genesis
watch. Built from the settings; the store may be handed in (one store serves several chains)."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self, TypeVar

import structlog
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from autometa.chain.identity import claim_chain, genesis_hash_async, queue_prefix, watch_chain
from autometa.chain.web3 import RpcRetry, close_async, connect, connect_async

if TYPE_CHECKING:
    import asyncio

    from redis.asyncio import Redis
    from web3 import AsyncWeb3, Web3

    from autometa.chain.deploy import Deployment
    from autometa.config import Settings
    from autometa.store import Store
    from autometa.worker.queue import JobQueue


T = TypeVar("T")
log = structlog.get_logger("autometa.runtime")

STARTUP_WAIT_S = 60.0  # how long a starting worker waits for its database or Redis to answer


async def _while_unreachable(what: str, call: Callable[..., Awaitable[T]], *args: Any) -> T:
    """`call`, retried while the database or Redis refuses connections (a restart, a failover):
    a worker started during one waits up to STARTUP_WAIT_S instead of exiting. Any other error,
    or the same one after the wait, goes to the caller."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from sqlalchemy.exc import OperationalError

    retrying = AsyncRetrying(
        retry=retry_if_exception_type((OperationalError, RedisConnectionError, ConnectionError)),
        wait=wait_exponential(multiplier=0.5, max=5),
        stop=stop_after_delay(STARTUP_WAIT_S),
        reraise=True,
        before_sleep=lambda state: log.warning(
            "startup.unreachable",
            service=what,
            attempt=state.attempt_number,
            error=str(state.outcome.exception() if state.outcome else "")[:200],
            hint=f"waiting up to {STARTUP_WAIT_S:.0f} s for the {what}; check that it runs",
        ),
    )
    async for attempt in retrying:
        with attempt:
            return await call(*args)
    raise AssertionError("unreachable")  # AsyncRetrying either returns or raises


class Opened:
    """An async context manager whose `_open` registers everything it opens on `self._exit`:
    leaving closes it in reverse order, and a start that fails half-way closes what it had
    opened before raising (the chain link and both runtimes share this life cycle)."""

    def __init__(self) -> None:
        self._exit = contextlib.AsyncExitStack()

    async def _open(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        try:
            await self._open()
        except BaseException:
            await self._exit.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._exit.aclose()


class StartError(Exception):
    """A runtime cannot start as configured; the message names the setting to change."""


@dataclass(frozen=True)
class ChainTarget:
    """A chain a worker serves: its id, the RPC endpoint(s) (comma-separated for failover), the
    Autometa contract and the block its events start at (the deployment block, or 0)."""

    chain_id: int
    rpc_url: str
    contract: str
    start_block: int = 0

    @classmethod
    def of(cls, deployment: Deployment, rpc_url: str) -> ChainTarget:
        """The target of a deployment we made (dev chains, tests): its events start at its block."""
        return cls(deployment.chain_id, rpc_url, deployment.address, deployment.block)


class ChainLink(Opened):
    """The store, genesis, queue and Redis connection of one chain, shared by the runtimes one
    process hosts on it. `in_memory_queue`: the scheduler and executors live in this process
    only (`autometa up`); otherwise the queue (and the scheduler lease) is Redis when REDIS_URL
    is set. A store handed in is used as it is and not closed."""

    def __init__(
        self, settings: Settings, target: ChainTarget, *, store: Store | None = None, in_memory_queue: bool = False
    ) -> None:
        self.settings, self.target = settings, target
        self.redis_url = None if in_memory_queue else settings.REDIS_URL
        self._given_store = store
        super().__init__()
        self.genesis = ""
        self.prefix = ""

    # Set by __aenter__ (typed here so the runtimes read them without checks).
    store: Store
    queue: JobQueue
    w3: AsyncWeb3[Any]
    redis: Redis | None

    def connect(self) -> AsyncWeb3[Any]:
        """A new async Web3 on this chain, with the retry and failover settings."""
        s = self.settings
        return connect_async(
            self.target.rpc_url,
            retry=RpcRetry.from_settings(s),
            failover_after=s.RPC_FAILOVER_AFTER,
            cooldown_s=s.RPC_COOLDOWN_S,
        )

    def connect_sync(self) -> Web3:
        """A synchronous Web3 on this chain (the event indexer's)."""
        s = self.settings
        return connect(self.target.rpc_url, failover_after=s.RPC_FAILOVER_AFTER, cooldown_s=s.RPC_COOLDOWN_S)

    async def _open(self) -> None:
        import asyncio

        from autometa.store import Store
        from autometa.worker.queue import make_queue

        t = self.target
        self.w3 = self.connect()
        self._exit.push_async_callback(close_async, self.w3)
        self.genesis = await genesis_hash_async(self.w3)
        if self._given_store is None:
            self.store = await _while_unreachable("database", asyncio.to_thread, Store.open, self.settings.database_url)
            self._exit.callback(self.store.close)
        else:
            self.store = self._given_store
        # A store that holds another chain under this id (a dev chain reset) stops here.
        await _while_unreachable(
            "database", asyncio.to_thread, claim_chain, self.store, t.chain_id, self.genesis, t.rpc_url
        )
        self.prefix = queue_prefix(t.chain_id, self.genesis, t.contract)
        self.queue = make_queue(self.redis_url, self.prefix)
        await _while_unreachable("redis", self.queue.startup)
        self._exit.push_async_callback(self.queue.shutdown)
        self.redis = None
        if self.redis_url:
            from redis.asyncio import Redis

            self.redis = Redis.from_url(self.redis_url)
            self._exit.push_async_callback(self.redis.aclose)

    async def watch(self, stop: asyncio.Event) -> None:
        """Until `stop`: raise ChainChanged (and set `stop`) if the endpoint's chain is reset."""
        await watch_chain(self.w3, self.genesis, stop, self.target.rpc_url)
