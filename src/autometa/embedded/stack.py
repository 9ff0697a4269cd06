"""`autometa up`: the dev chain, indexer, scheduler, executor and API in one process, sharing
an in-process queue and a SQLite store in the data directory."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from pydantic import SecretStr

from autometa.chain.accounts import dev_role
from autometa.chain.identity import ChainChanged, claim_chain, genesis_hash
from autometa.chain.signers import LocalKeySigner, Signer, role_signer
from autometa.config import Settings
from autometa.config_chains import ChainConfig
from autometa.embedded.devchain import DevChain, default_shared_database_url, shared_database_url
from autometa.runtime import ApiRunner, ChainRun, ChainTarget, run_chains, run_worker
from autometa.runtime.host import Hosted
from autometa.store import Store

log = structlog.get_logger("autometa.up")


@dataclass
class Stack:
    """What `up` runs, exposed so tests and the demo can look inside."""

    chain: DevChain
    settings: Settings
    store: Store
    executor_account: Signer
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    chains: list[DevChain] = field(default_factory=list)  # `up --chains N`: every chain, first = `chain`


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
    """Run every service until `stop` is set; a service that crashes stops the others. The
    scheduler and executor share an in-process queue (no Redis needed), and the store is the
    data directory's (moved aside if the dev chain was reset)."""
    store = open_store_for_chain(chain, settings)
    account = executor_account(settings)
    dep = chain.deployment
    target = ChainTarget.of(dep, chain.url)

    def ready(hosted: Hosted) -> None:
        if on_ready is not None:
            on_ready(Stack(chain, settings, store, account, hosted.tasks))

    roles = ("scheduler", "executor", "api") if api is not None else ("scheduler", "executor")
    try:
        await run_worker(
            settings,
            target,
            roles,
            stop,
            store=store,
            in_memory_queue=True,
            signer=account,
            worker_id="embedded-executor",
            api=api,
            on_ready=ready,
        )
    finally:
        store.close()


def chains_settings(settings: Settings, chains: list[DevChain]) -> Settings:
    """`up --chains N`: the embedded settings with every dev chain in CHAINS (the first is the
    default chain, so the seed's paths mean it) and one store for all of them."""
    one = stack_settings(settings, chains[0])
    entries = [ChainConfig(chain_id=c.deployment.chain_id, rpc=c.url, contract=c.deployment.address) for c in chains]
    return one.model_copy(
        update={
            "CHAINS": entries,
            "MOONBASE_RPC": None,
            "REGISTRY_ADDRESS": None,
            "ACTIONEXECUTOR_ADDRESS": None,
            "FEEESCROW_ADDRESS": None,
            "CHAIN_ID": None,
            "DATABASE_URL": shared_database_url(settings),
        }
    )


def open_store_for_chains(chains: list[DevChain], settings: Settings) -> Store:
    """The one store of `up --chains N`, claimed for every chain's genesis. If any dev chain
    was reset, the SQLite file is moved aside (a clean start for all, with a log line); a
    configured DATABASE_URL is never touched (`ChainChanged` stops start-up)."""
    url = shared_database_url(settings)
    claims = [(c.deployment.chain_id, genesis_hash(c.w3), c.url) for c in chains]
    store = Store.open(url)
    try:
        for chain_id, genesis, rpc in claims:
            claim_chain(store, chain_id, genesis, rpc)
        return store
    except ChainChanged:
        store.close()
        if url != default_shared_database_url(settings.DATA_DIR):  # configured: never touched
            raise
    path = Path(url.removeprefix("sqlite:///"))
    aside = path.with_name(f"{path.name}.before-{claims[0][1][2:10]}")
    path.rename(aside)
    log.warning("dev_chain_reset", moved_store_to=str(aside))
    store = Store.open(url)
    for chain_id, genesis, rpc in claims:
        claim_chain(store, chain_id, genesis, rpc)
    return store


async def run_chains_stack(
    chains: list[DevChain],
    settings: Settings,
    stop: asyncio.Event,
    *,
    api: ApiRunner | None = None,
    on_ready: Callable[[Stack], None] | None = None,
) -> None:
    """`run_stack` on several dev chains: `settings` from `chains_settings`; a scheduler and an
    executor per chain (each its own in-process queue), one store, one API serving every chain."""
    store = open_store_for_chains(chains, settings)
    account = executor_account(settings)
    runs = [
        ChainRun(
            settings.for_chain(c.deployment.chain_id),
            ChainTarget.of(c.deployment, c.url),
            account,
        )
        for c in chains
    ]

    def ready(hosted: list[Hosted]) -> None:
        if on_ready is not None:
            tasks = [t for h in hosted for t in h.tasks]
            on_ready(Stack(chains[0], settings, store, account, tasks, chains=list(chains)))

    roles = ("scheduler", "executor", "api") if api is not None else ("scheduler", "executor")
    try:
        await run_chains(
            settings,
            runs,
            roles,
            stop,
            store=store,
            in_memory_queue=True,
            worker_id="embedded-executor",
            api=api,
            on_ready=ready,
        )
    finally:
        store.close()
