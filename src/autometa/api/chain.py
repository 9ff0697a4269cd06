"""The API's view of the chain: one AsyncWeb3, the Autometa contract, resolved lazily so the API
starts (and serves prices) while the node is still coming up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from web3 import AsyncWeb3
from web3.contract import AsyncContract

from autometa.api.errors import Unavailable
from autometa.chain.contracts import autometa_async
from autometa.chain.deploy import Deployment
from autometa.chain.web3 import RpcUnavailable, connect_settings
from autometa.config import ConfigError, Settings

T = TypeVar("T")

CODE_CACHE_S = 600.0  # how long a contract wallet is remembered as one
CODE_CACHE_SIZE = 10_000


class Fresh(Generic[T]):
    """A value read from the chain, reused for `max_age` seconds; concurrent readers of an
    expired value share one read (a burst of requests makes one RPC call, not one each)."""

    def __init__(self, read: Callable[[], Awaitable[T]]) -> None:
        self._read = read
        self._value: tuple[float, T] | None = None
        self._flight: asyncio.Task[tuple[float, T]] | None = None

    async def get(self, max_age: float) -> T:
        if self._value is not None and time.monotonic() - self._value[0] < max_age:
            return self._value[1]
        if self._flight is None:
            self._flight = asyncio.ensure_future(self._timed())
            self._flight.add_done_callback(self._landed)
        self._value = await asyncio.shield(self._flight)
        return self._value[1]

    async def _timed(self) -> tuple[float, T]:
        started = time.monotonic()  # the value's age counts from the request, not the answer
        return started, await self._read()

    def _landed(self, task: asyncio.Task[tuple[float, T]]) -> None:
        if self._flight is task:
            self._flight = None
        if not task.cancelled():
            task.exception()  # retrieved, even if every reader was cancelled


@dataclass(frozen=True)
class ChainInfo:
    chain_id: int
    contract: str
    start_block: int  # deployment block when known (where an indexer starts), else 0


class ChainGateway:
    """Chain id, contract address and reads. Every failure (after the connection's bounded
    retries) is `Unavailable` (a 503)."""

    def __init__(self, w3: AsyncWeb3[Any], settings: Settings, *, contract: str | None = None) -> None:
        self.w3 = w3
        self._settings = settings
        self._contract_override = contract
        self._info: ChainInfo | None = None
        self._core: AsyncContract | None = None
        self._lock = asyncio.Lock()
        self._head = Fresh(self._read_head)
        self._code_seen: dict[str, float] = {}  # address -> monotonic time its code was last seen

    @classmethod
    def from_settings(cls, settings: Settings, *, contract: str | None = None) -> ChainGateway:
        # Rate limits and transient failures are retried (Retry-After, jitter), within
        # RPC_RETRY_BUDGET_S: a node that is really gone is still a 503 with the reason soon.
        return cls(connect_settings(settings, timeout=10.0), settings, contract=contract)

    @property
    def resolved(self) -> ChainInfo | None:
        """The chain id and contract once a read has resolved them (None before: no node asked)."""
        return self._info

    async def info(self) -> ChainInfo:
        if self._info is None:
            async with self._lock:
                if self._info is None:
                    self._info = await self._resolve()
        return self._info

    async def core(self) -> AsyncContract:
        if self._core is None:
            self._core = autometa_async(self.w3, (await self.info()).contract)
        return self._core

    async def _resolve(self) -> ChainInfo:
        try:
            chain_id = int(await self.w3.eth.chain_id)
        except Exception as exc:  # the type only: an error's text may hold the RPC URL (and its key)
            detail = str(exc) if isinstance(exc, RpcUnavailable) else type(exc).__name__
            raise Unavailable("chain", f"cannot reach the chain node: {detail}") from None
        expected = self._settings.expected_chain_id
        if expected is not None and expected != chain_id:
            raise Unavailable("chain", f"CHAIN_ID is {expected} but the node is chain {chain_id}")
        try:
            address = self._contract_override or self._settings.contract_address
        except ConfigError as exc:
            raise Unavailable("chain", str(exc)) from None
        dep = Deployment.load(self._settings.DATA_DIR, chain_id)
        if address is None and dep is not None:
            address = dep.address
        if address is None:
            raise Unavailable("chain", f"no Autometa contract known for chain {chain_id}: set REGISTRY_ADDRESS")
        start = dep.block if dep is not None and dep.address.lower() == address.lower() else 0
        return ChainInfo(chain_id, AsyncWeb3.to_checksum_address(address), start)

    async def head(self, max_age: float = 1.0) -> tuple[int, int]:
        """(latest block number, its timestamp), cached for `max_age` seconds."""
        return await self._head.get(max_age)

    async def _read_head(self) -> tuple[int, int]:
        block = await self.w3.eth.get_block("latest")
        return int(block["number"]), int(block["timestamp"])

    async def balance_of(self, owner: str) -> int:
        return int(await (await self.core()).functions.balanceOf(owner).call())

    async def nonce_of(self, owner: str) -> int:
        return int(await (await self.core()).functions.nonces(owner).call())

    async def has_code(self, address: str, max_age: float = CODE_CACHE_S) -> bool:
        """Whether an account has code. Only "yes" is remembered (for `max_age` s): the answer
        only lets a contract wallet's signature through to the simulation, which checks it with
        the wallet itself, so a stale "yes" costs nothing; a "no" is never cached, because a
        counterfactual wallet may be deployed at any moment."""
        key = address.lower()
        seen = self._code_seen.get(key)
        if seen is not None and time.monotonic() - seen < max_age:
            return True
        found = bool(await self.w3.eth.get_code(AsyncWeb3.to_checksum_address(address)))
        if found:
            if len(self._code_seen) >= CODE_CACHE_SIZE:
                self._code_seen.clear()  # bounded: a flood of addresses costs re-reads, not memory
            self._code_seen[key] = time.monotonic()
        return found

    async def get_workflow(self, workflow_id: int) -> Any:
        """The contract's `getWorkflow` tuple (reverts `UnknownWorkflow` for an unknown id)."""
        return await (await self.core()).functions.getWorkflow(workflow_id).call()

    async def aclose(self) -> None:
        provider = self.w3.provider
        disconnect = getattr(provider, "disconnect", None)
        if disconnect is not None:
            await disconnect()
