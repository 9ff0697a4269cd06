"""Events the worker processes observe rather than read from a store fact: an executor short of
gas money, a scheduler failover, the RPC endpoint down, a backlog, a run that missed its window.

``Alerts`` writes them to the outbox in a thread of their own and never raises into the worker:
an alert that cannot be written is logged, and the work it reports on goes on. The trackers
(``autometa.notify.watches``) are pure state machines, so each event is reported once per
crossing of its threshold, not on every block or failed call that confirms it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from autometa.chain.endpoints import public_url
from autometa.config import Settings
from autometa.notify.watches import RpcWatch

log = structlog.get_logger("autometa.notify.alerts")


@dataclass(frozen=True)
class Thresholds:
    missed_blocks: int = 20
    backlog_blocks: int = 10
    backlog_depth: int = 1000
    low_gas_wei: int = 10**16
    gas_check_blocks: int = 10
    rpc_down_s: float = 30.0

    @classmethod
    def from_settings(cls, s: Settings) -> Thresholds:
        return cls(
            s.NOTIFY_MISSED_BLOCKS,
            s.NOTIFY_BACKLOG_BLOCKS,
            s.NOTIFY_BACKLOG_DEPTH,
            s.NOTIFY_LOW_GAS_WEI,
            s.NOTIFY_GAS_CHECK_BLOCKS,
            s.NOTIFY_RPC_DOWN_S,
        )


class Alerts:
    """Writes observed events to the outbox of ``store`` for chain ``chain_id``."""

    def __init__(
        self,
        store: Any,
        chain_id: int,
        thresholds: Thresholds | None = None,
        *,
        source: str = "",
        contract: str | None = None,
    ) -> None:
        self.store, self.chain_id = store, chain_id
        self.contract = contract  # the deployment whose workflow ids owner events name
        self.thresholds = thresholds or Thresholds()
        self.source = source  # which process observed it (in the event's data)
        self._tasks: set[asyncio.Task[None]] = set()

    async def operator(self, kind: str, key: str, data: dict[str, Any]) -> None:
        await self._write(
            self.store.notifications.emit_operator,
            self.chain_id,
            kind,
            f"{kind}:{self.chain_id}:{key}",
            {**data, "source": self.source},
        )

    async def owners(self, kind: str, events: list[tuple[int, str, dict[str, Any]]]) -> None:
        """Owner events, ``(workflow id, key, data)`` each, in one transaction (a thousand runs
        missed at once must not hold the scheduler's block for a thousand commits)."""
        keyed = [(wid, f"{kind}:{self.chain_id}:{key}", data) for wid, key, data in events]
        await self._write(self.store.notifications.emit_workflows, self.chain_id, kind, keyed, self.contract)

    def operator_soon(self, kind: str, key: str, data: dict[str, Any]) -> None:
        """From synchronous code inside the event loop (a web3 middleware): write in the background."""
        task = asyncio.get_running_loop().create_task(self.operator(kind, key, data))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            recorded = await asyncio.to_thread(fn, *args)
        except Exception as exc:  # the store down: the worker's own log still says it
            log.warning("alerts.write_failed", kind=args[1], error=str(exc)[:300])
            return
        log.info("alerts.event", kind=args[1], recorded=recorded)


def endpoint_hint(url: str) -> str:
    """The hosts of an RPC URL or of each in a comma-separated list (the failover set: a failure
    seen here is one no endpoint could answer), never a key from the path, query or user part."""
    return ",".join(public_url(part) for part in url.split(",") if part.strip())


def watch_rpc(w3: Any, alerts: Alerts, endpoint: str) -> RpcWatch:
    """Add a middleware to ``w3`` that reports rpc.down / rpc.recovered. It sees transport
    failures only (a JSON-RPC error answer, such as a revert, is an answer: the node is up)."""
    from web3.middleware.base import Web3Middleware

    watch = RpcWatch(alerts.thresholds.rpc_down_s)
    where = endpoint_hint(endpoint)

    class _Middleware(Web3Middleware):
        async def async_wrap_make_request(self, make_request: Any) -> Any:
            async def middleware(method: Any, params: Any) -> Any:
                try:
                    response = await make_request(method, params)
                except Exception as exc:
                    if watch.failure(f"{type(exc).__name__}: {exc}"[:300]):
                        log.warning("alerts.rpc_down", endpoint=where, failures=watch.failures)
                        alerts.operator_soon(
                            "rpc.down",
                            f"{alerts.source}:{int(time.time() * 1000)}",
                            {
                                "endpoint": where,
                                "failures": watch.failures,
                                "down_for_s": alerts.thresholds.rpc_down_s,
                                "last_error": endpoint_scrub(watch.last_error, endpoint),
                            },
                        )
                    raise
                down_s = watch.success()
                if down_s is not None:
                    log.info("alerts.rpc_recovered", endpoint=where, down_s=round(down_s, 1))
                    alerts.operator_soon(
                        "rpc.recovered",
                        f"{alerts.source}:{int(time.time() * 1000)}",
                        {"endpoint": where, "down_s": round(down_s, 1)},
                    )
                return response

            return middleware

    w3.middleware_onion.add(_Middleware, name="autometa_rpc_watch")
    return watch


def endpoint_scrub(message: str, endpoint: str) -> str:
    """An error message with the full RPC URL (and its key) replaced by its hint."""
    from autometa.notify.targets import scrub

    return scrub(message.replace(endpoint, endpoint_hint(endpoint)) if endpoint else message, [endpoint])
