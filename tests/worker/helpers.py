"""Creating workflows on the dev chain for worker tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.logs import DISCARD

from autometa.chain.accounts import dev_role
from autometa.chain.contracts import autometa
from autometa.chain.deploy import Deployment, transact
from autometa.chain.indexer import EventIndexer
from autometa.chain.web3 import connect_async
from autometa.domain.workflow import WorkflowSpec
from autometa.store import Store
from autometa.worker.blocks import BlockFollower
from autometa.worker.prices import PriceReader
from autometa.worker.queue import InMemoryJobQueue
from autometa.worker.scheduler import Scheduler
from autometa.worker.sources import IndexerWorkflowSource

RECIPIENT = dev_role("recipient").address


def spec(trigger_type: int, trigger_data: dict[str, Any], amount: int = 10**15, **extra: Any) -> WorkflowSpec:
    return WorkflowSpec.model_validate(
        {
            "trigger_type": trigger_type,
            "trigger_data": trigger_data,
            "action_type": 0,
            "action_data": {"to": RECIPIENT, "amount_wei": amount},
            **extra,
        }
    )


def seed_spec() -> WorkflowSpec:
    """The seed's example: ethereum below $3200 -> send 1 coin."""
    return spec(2, {"token": "ethereum", "comparator": 0, "price_usd": 3200}, amount=10**18)


def create(w3: Web3, address: str, owner: LocalAccount, s: WorkflowSpec) -> int:
    core = autometa(w3, address)
    receipt = transact(w3, owner, core.functions.createWorkflow(s.to_abi()))
    (event,) = core.events.WorkflowCreated().process_receipt(receipt, errors=DISCARD)
    return int(event.args.workflowId)


def deposit(w3: Web3, address: str, owner: LocalAccount, wei: int) -> None:
    transact(w3, owner, autometa(w3, address).functions.deposit(), value=wei)


def advance(w3: Web3, seconds: int) -> int:
    """Mine one block exactly `seconds` after the latest one (not wall clock + offset: under load
    a second of real time between reading `now` and mining made a `+121 s` trigger fire at `+120`)."""
    w3.provider.make_request("evm_setNextBlockTimestamp", [now(w3) + seconds])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    return int(w3.eth.block_number)


def mine_at(w3: Web3, timestamp: int) -> int:
    """Mine one block at exactly `timestamp` (a test whose set-up mined blocks of its own cannot
    count on `advance` landing at a time it computed before them)."""
    w3.provider.make_request("evm_setNextBlockTimestamp", [timestamp])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    return int(w3.eth.block_number)


def now(w3: Web3) -> int:
    return int(w3.eth.get_block("latest")["timestamp"])


async def wait_loaded(scheduler: Any, timeout_s: float = 30.0) -> None:
    """Until the scheduler has loaded its workflows; fails naming the wait after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not scheduler.loaded:
        assert time.monotonic() < deadline, f"the scheduler did not load its workflows in {timeout_s:.0f} s"
        await asyncio.sleep(0.05)


async def mine_until_executed(
    w3: Web3, executor: Any, count: int, max_blocks: int = 300, on_progress: Callable[[int], None] | None = None
) -> None:
    """Mine a block every 0.1 s until `executor` has executed `count` runs (or after `max_blocks`,
    ~30 s: the caller's assertions say what is missing), then five more blocks: a run executed
    twice would show. `on_progress(done)` is called before each block (a test's fault goes there)."""
    for _ in range(max_blocks):
        done = sum(len(o.executed) for o in executor.outcomes)
        if on_progress is not None:
            on_progress(done)
        if done >= count:
            break
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        await asyncio.sleep(0.1)
    for _ in range(5):
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        await asyncio.sleep(0.2)


async def indexed_scheduler(
    url: str, w3: Web3, dep: Deployment, db_url: str, poll_interval: float = 0.1
) -> tuple[Store, InMemoryJobQueue, Scheduler]:
    """The embedded worker's scheduler side, as `autometa up` wires it: a store its own indexer
    fills from the deployment block, an in-process queue, a scheduler following blocks."""
    store = Store.open(db_url)
    aw3 = connect_async(url)
    queue = InMemoryJobQueue()
    await queue.startup()
    indexer = EventIndexer(w3, store, dep.address, dep.block)
    scheduler = Scheduler(
        aw3,
        IndexerWorkflowSource(indexer),
        queue,
        PriceReader(aw3, dep.address),
        follower=BlockFollower(aw3, poll_interval=poll_interval),
    )
    return store, queue, scheduler
