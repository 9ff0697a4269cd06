"""Typed Python clients for the Autometa API (sync and async, on httpx), speaking the API's own
pydantic models (`autometa.api.schemas`)."""

from __future__ import annotations

import asyncio
import copy
import time
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx
from eth_account.signers.local import LocalAccount

from autometa.api.schemas import (
    ChainOut,
    ContractsOut,
    ExecutionPageOut,
    HealthOut,
    PreparedIntent,
    PriceOut,
    RelayedTxOut,
    StatsOut,
    StatusChangedOut,
    StatusChangeRequest,
    WorkersOut,
    WorkflowCreateBody,
    WorkflowCreatedOut,
    WorkflowCreateRequest,
    WorkflowListOut,
    WorkflowOut,
)
from autometa.client._base import (
    ApiClientError,
    Call,
    Chain,
    Endpoints,
    Op,
    RelayPending,
    decode,
    owned_by,
    settled,
    signed_create,
    signed_terms,
    submitted,
)

__all__ = ["ApiClientError", "AsyncAutometaClient", "AutometaClient", "RelayPending"]

M = TypeVar("M")
E = Endpoints


def _headers(api_key: str | None) -> dict[str, str]:
    return {"X-API-Key": api_key} if api_key else {}


class AutometaClient:
    """Blocking client. `transport` lets tests talk to an app in-process.

    A relayed create / pause / resume / cancel answered 202 (sent, not mined yet) is followed on
    its status URL every `poll_interval` s until mined (the usual result), reverted or dropped
    (`ApiClientError`), or `follow_timeout` s (`RelayPending`, with the hash: not a failure)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        follow_timeout: float = 300.0,
        poll_interval: float = 1.0,
        chain: Chain = None,
    ) -> None:
        self._http = httpx.Client(base_url=base_url, headers=_headers(api_key), timeout=timeout, transport=transport)
        self.follow_timeout, self.poll_interval = follow_timeout, poll_interval
        self.chain = chain  # sent as `chain` on every chain-scoped call (None: the API's default chain)

    def _do(self, call: Call[M]) -> M:
        response = self._http.request(call.method, call.path, json=call.json, params=call.params or None)
        pending = submitted(call, response)
        return decode(call, response) if pending is None else self._follow(call, pending)

    def _follow(self, call: Call[M], pending: RelayedTxOut) -> M:
        assert call.model is not None
        started = time.monotonic()
        while time.monotonic() - started < self.follow_timeout:
            time.sleep(self.poll_interval)
            try:
                status = self._do(Endpoints.relayed_tx(pending.status_url.rsplit("/", 1)[-1]))
            except (httpx.TransportError, ApiClientError) as exc:
                if isinstance(exc, ApiClientError) and exc.status < 500:
                    raise
                continue  # the API or its node hiccuped: the transaction is still out there
            done = settled(call.model, status)
            if done is not None:
                return done
            pending = status
        raise RelayPending(pending, time.monotonic() - started)

    def relayed_tx(self, tx_hash: str) -> RelayedTxOut:
        """A relayed transaction's state (what a 202's status URL answers)."""
        return self._do(E.relayed_tx(tx_hash))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AutometaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def healthz(self) -> HealthOut:
        return self._do(E.healthz())

    def contracts(self) -> ContractsOut:
        return self._do(E.contracts())

    def assets(self) -> list[str]:
        return self._do(E.assets()).assets

    def price(self, symbol: str) -> PriceOut:
        return self._do(E.price(symbol))

    def chains(self) -> list[ChainOut]:
        """The chains the API serves (the first is its default)."""
        return self._do(E.chains())

    def on(self, chain: Chain) -> AutometaClient:
        """This client for another chain: same connection (closing either closes both)."""
        other = copy.copy(self)
        other.chain = chain
        return other

    def prepare_create(self, body: WorkflowCreateBody | dict[str, Any]) -> PreparedIntent:
        return self._do(E.prepare_create(body, self.chain))

    def create(self, body: WorkflowCreateRequest | dict[str, Any]) -> WorkflowCreatedOut:
        return self._do(E.create(body, self.chain))

    def create_signed(self, account: LocalAccount, body: WorkflowCreateBody | dict[str, Any]) -> WorkflowCreatedOut:
        """prepare → sign with `account` → create."""
        body = owned_by(body, account)
        return self.create(signed_create(body, self.prepare_create(body), account))

    def prepare_status(self, workflow_id: int, op: Op, user_address: str) -> PreparedIntent:
        return self._do(E.prepare_status(workflow_id, op, user_address, self.chain))

    def change_status(self, workflow_id: int, op: Op, body: StatusChangeRequest | dict[str, Any]) -> StatusChangedOut:
        return self._do(E.change_status(workflow_id, op, body, self.chain))

    def change_status_signed(self, account: LocalAccount, workflow_id: int, op: Op) -> StatusChangedOut:
        prepared = self.prepare_status(workflow_id, op, account.address)
        body = {"user_address": account.address, **signed_terms(prepared, account)}
        return self.change_status(workflow_id, op, body)

    def workflow(self, workflow_id: int) -> WorkflowOut:
        return self._do(E.workflow(workflow_id, self.chain))

    def user_workflows(
        self, address: str, offset: int = 0, limit: int = 50, *, every_chain: bool = False
    ) -> WorkflowListOut:
        """The owner's workflows on this client's chain, or on every chain the API serves when the
        client names none or with `every_chain` (each item names its chain)."""
        return self._do(E.user_workflows(address, offset, limit, None if every_chain else self.chain))

    def executions(self, **filters: Any) -> ExecutionPageOut:
        """Filters: workflow_id, user, status, since, until (datetimes), offset, limit, chain
        (default: this client's; None there: every chain, or the default one with workflow_id)."""
        return self._do(E.executions(**({"chain": self.chain} | filters)))

    def stats(
        self,
        *,
        user: str | None = None,
        workflow_id: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> StatsOut:
        return self._do(E.stats(chain=self.chain, user=user, workflow_id=workflow_id, since=since, until=until))

    def workers(self, within_s: float = 60) -> WorkersOut:
        return self._do(E.workers(within_s))

    def metrics(self) -> str:
        return self._do(E.metrics())


class AsyncAutometaClient:
    """The same endpoints for asyncio code (202s followed as in `AutometaClient`)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        follow_timeout: float = 300.0,
        poll_interval: float = 1.0,
        chain: Chain = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=_headers(api_key), timeout=timeout, transport=transport
        )
        self.follow_timeout, self.poll_interval = follow_timeout, poll_interval
        self.chain = chain  # sent as `chain` on every chain-scoped call (None: the API's default chain)

    async def _do(self, call: Call[M]) -> M:
        response = await self._http.request(call.method, call.path, json=call.json, params=call.params or None)
        pending = submitted(call, response)
        return decode(call, response) if pending is None else await self._follow(call, pending)

    async def _follow(self, call: Call[M], pending: RelayedTxOut) -> M:
        assert call.model is not None
        started = time.monotonic()
        while time.monotonic() - started < self.follow_timeout:
            await asyncio.sleep(self.poll_interval)
            try:
                status = await self._do(Endpoints.relayed_tx(pending.status_url.rsplit("/", 1)[-1]))
            except (httpx.TransportError, ApiClientError) as exc:
                if isinstance(exc, ApiClientError) and exc.status < 500:
                    raise
                continue  # the API or its node hiccuped: the transaction is still out there
            done = settled(call.model, status)
            if done is not None:
                return done
            pending = status
        raise RelayPending(pending, time.monotonic() - started)

    async def relayed_tx(self, tx_hash: str) -> RelayedTxOut:
        return await self._do(E.relayed_tx(tx_hash))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncAutometaClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def healthz(self) -> HealthOut:
        return await self._do(E.healthz())

    async def contracts(self) -> ContractsOut:
        return await self._do(E.contracts())

    async def assets(self) -> list[str]:
        return (await self._do(E.assets())).assets

    async def price(self, symbol: str) -> PriceOut:
        return await self._do(E.price(symbol))

    async def chains(self) -> list[ChainOut]:
        """The chains the API serves (the first is its default)."""
        return await self._do(E.chains())

    def on(self, chain: Chain) -> AsyncAutometaClient:
        """This client for another chain: same connection (closing either closes both)."""
        other = copy.copy(self)
        other.chain = chain
        return other

    async def prepare_create(self, body: WorkflowCreateBody | dict[str, Any]) -> PreparedIntent:
        return await self._do(E.prepare_create(body, self.chain))

    async def create(self, body: WorkflowCreateRequest | dict[str, Any]) -> WorkflowCreatedOut:
        return await self._do(E.create(body, self.chain))

    async def create_signed(
        self, account: LocalAccount, body: WorkflowCreateBody | dict[str, Any]
    ) -> WorkflowCreatedOut:
        body = owned_by(body, account)
        return await self.create(signed_create(body, await self.prepare_create(body), account))

    async def prepare_status(self, workflow_id: int, op: Op, user_address: str) -> PreparedIntent:
        return await self._do(E.prepare_status(workflow_id, op, user_address, self.chain))

    async def change_status(
        self, workflow_id: int, op: Op, body: StatusChangeRequest | dict[str, Any]
    ) -> StatusChangedOut:
        return await self._do(E.change_status(workflow_id, op, body, self.chain))

    async def change_status_signed(self, account: LocalAccount, workflow_id: int, op: Op) -> StatusChangedOut:
        prepared = await self.prepare_status(workflow_id, op, account.address)
        body = {"user_address": account.address, **signed_terms(prepared, account)}
        return await self.change_status(workflow_id, op, body)

    async def workflow(self, workflow_id: int) -> WorkflowOut:
        return await self._do(E.workflow(workflow_id, self.chain))

    async def user_workflows(
        self, address: str, offset: int = 0, limit: int = 50, *, every_chain: bool = False
    ) -> WorkflowListOut:
        """The owner's workflows on this client's chain, or on every chain the API serves when the
        client names none or with `every_chain` (each item names its chain)."""
        return await self._do(E.user_workflows(address, offset, limit, None if every_chain else self.chain))

    async def executions(self, **filters: Any) -> ExecutionPageOut:
        return await self._do(E.executions(**({"chain": self.chain} | filters)))

    async def stats(
        self,
        *,
        user: str | None = None,
        workflow_id: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> StatsOut:
        return await self._do(E.stats(chain=self.chain, user=user, workflow_id=workflow_id, since=since, until=until))

    async def workers(self, within_s: float = 60) -> WorkersOut:
        return await self._do(E.workers(within_s))

    async def metrics(self) -> str:
        return await self._do(E.metrics())
