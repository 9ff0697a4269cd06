"""`autometa up`: the dev chain, indexer, scheduler, executor and API in one process, sharing
an in-process queue and a SQLite store in the data directory."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from pydantic import SecretStr

from autometa import __version__
from autometa.chain.accounts import dev_role
from autometa.chain.identity import ChainChanged, claim_chain, genesis_hash
from autometa.chain.indexer import EventIndexer
from autometa.chain.journal import StoreJournal
from autometa.chain.sender import SenderConfig, TransactionSender
from autometa.chain.signers import LocalKeySigner, Signer, role_signer
from autometa.chain.web3 import close_async, connect_async
from autometa.config import Settings
from autometa.embedded.devchain import DevChain
from autometa.notify.alerts import Alerts, Thresholds, watch_rpc
from autometa.prices import TieredPriceAdapter
from autometa.store import Store
from autometa.worker.blocks import BlockFollower, ws_url_for
from autometa.worker.executor import Executor
from autometa.worker.lease import LocalLease
from autometa.worker.presence import keep_heartbeat, scheduler_extra
from autometa.worker.prices import PriceReader
from autometa.worker.queue import make_queue
from autometa.worker.scheduler import Scheduler
from autometa.worker.sources import IndexerWorkflowSource

log = structlog.get_logger("autometa.up")

ApiRunner = Callable[[Settings, Store, asyncio.Event], Coroutine[Any, Any, None]]


@dataclass
class Stack:
    """What `up` runs, exposed so tests and the demo can look inside."""

    chain: DevChain
    settings: Settings
    store: Store
    executor_account: Signer
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)


def stack_settings(settings: Settings, chain: DevChain) -> Settings:
    """The settings every service of the embedded stack shares: this chain, this contract, this
    store, and the dev relayer unless a relayer key is configured."""
    update: dict[str, Any] = {
        "MOONBASE_RPC": chain.url,
        "REGISTRY_ADDRESS": chain.deployment.address,
        "ACTIONEXECUTOR_ADDRESS": chain.deployment.address,
        "FEEESCROW_ADDRESS": chain.deployment.address,
        "CHAIN_ID": chain.deployment.chain_id,
        "DATABASE_URL": chain.database_url(settings),
        "BACKEND_API_URL": f"http://{settings.API_HOST}:{settings.API_PORT}",
    }
    if settings.RELAYER_PRIVATE_KEY is None and settings.RELAYER_SIGNER is None:
        update["RELAYER_PRIVATE_KEY"] = SecretStr(dev_role("relayer").key.hex())
    return settings.model_copy(update=update)


def executor_account(settings: Settings) -> Signer:
    """WORKER_SIGNER / WORKER_PRIVATE_KEY if set, else the dev executor (allow-listed by the dev stack)."""
    return role_signer(settings, "worker") or LocalKeySigner(dev_role("executor"), kind="dev")


def open_store_for_chain(chain: DevChain, settings: Settings) -> Store:
    """The store, checked against the chain's genesis. A dev chain that was reset (its state file
    gone, the contract redeployed at the same address) finds its SQLite store moved aside with a
    log line — a clean start, never the old chain's workflows mixed into the new one's. A
    configured DATABASE_URL is never touched: a mismatch stops start-up (`ChainChanged`)."""
    url = chain.database_url(settings)
    genesis = genesis_hash(chain.w3)
    store = Store.open(url)
    try:
        claim_chain(store, chain.deployment.chain_id, genesis, chain.url)
        return store
    except ChainChanged:
        store.close()
        if settings.DATABASE_URL or not url.startswith("sqlite:///"):
            raise
    path = Path(url.removeprefix("sqlite:///"))
    aside = path.with_name(f"{path.name}.before-{genesis[2:10]}")
    path.rename(aside)
    log.warning("dev_chain_reset", moved_store_to=str(aside), genesis=genesis)
    store = Store.open(url)
    claim_chain(store, chain.deployment.chain_id, genesis, chain.url)
    return store


async def run_stack(
    chain: DevChain,
    settings: Settings,
    stop: asyncio.Event,
    *,
    api: ApiRunner | None = None,
    on_ready: Callable[[Stack], None] | None = None,
) -> None:
    """Run every service until `stop` is set; a service that crashes stops the others."""
    address, rpc = chain.deployment.address, chain.url
    store = open_store_for_chain(chain, settings)
    indexer = EventIndexer(
        chain.w3,
        store,
        address,
        chain.deployment.block,
        confirmations=settings.CONFIRMATIONS,
        batch_blocks=settings.INDEXER_BATCH_BLOCKS,
    )
    w3 = connect_async(rpc)
    alerts = Alerts(store, chain.deployment.chain_id, Thresholds.from_settings(settings), source="embedded")
    watch_rpc(w3, alerts, rpc)
    queue = make_queue(None)
    offchain = TieredPriceAdapter.from_settings(settings)
    scheduler = Scheduler(
        w3,
        IndexerWorkflowSource(indexer, queue),
        queue,
        PriceReader(w3, address, offchain),
        lease=LocalLease(),
        follower=BlockFollower(w3, ws_url_for(rpc), poll_interval=0.5),
        alerts=alerts,
    )
    account = executor_account(settings)
    sender = TransactionSender(
        w3, account, journal=StoreJournal(store.sent_transactions), config=SenderConfig.from_settings(settings)
    )
    executor = Executor(
        w3,
        address,
        sender,
        queue,
        store,
        batch_size=settings.BATCH_SIZE,
        max_concurrent=settings.MAX_CONCURRENT_EXECUTIONS,
        batch_gas_share=settings.BATCH_GAS_SHARE,
        worker_id="embedded-executor",
        version=__version__,
        alerts=alerts,
    )
    stack = Stack(chain, settings, store, account)
    await queue.startup()
    try:
        for sent in await sender.recover():  # finish what the last run left in flight
            await sender.wait(sent, raise_on_revert=False)
        services: dict[str, Coroutine[Any, Any, None]] = {
            "scheduler": scheduler.run(stop),
            "executor": executor.run(stop),
            "presence": keep_heartbeat(
                store,
                scheduler.lease.holder,
                "scheduler",
                stop,
                scheduler_extra(scheduler.lease, chain.deployment.chain_id),
                wake=scheduler.lease.changed,
            ),
        }
        if api is not None:
            services["api"] = api(settings, store, stop)
        stack.tasks = [asyncio.create_task(coro, name=name) for name, coro in services.items()]
        if on_ready is not None:
            on_ready(stack)
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([*stack.tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not stopper and task.exception() is not None:
                log.error("service crashed; stopping", service=task.get_name(), error=repr(task.exception()))
        stop.set()
        await asyncio.gather(*stack.tasks, return_exceptions=True)
        stopper.cancel()
    finally:
        await queue.shutdown()
        await offchain.aclose()
        await close_async(w3)
        store.close()
