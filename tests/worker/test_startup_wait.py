"""A worker started while its database or Redis restarts waits for it instead of exiting (the
chaos bench's replacement executor, started during the PostgreSQL restart, exited 1) — also
while it finishes what its killed predecessor left in flight."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from structlog.testing import capture_logs

from autometa.chain.accounts import dev_role
from autometa.chain.journal import MINED, StoreJournal
from autometa.chain.sender import TransactionSender
from autometa.chain.signers import LocalKeySigner
from autometa.chain.web3 import close_async, connect_async
from autometa.config import load_settings
from autometa.runtime import ChainTarget, run_worker
from autometa.runtime import chain as runtime_chain
from autometa.store import Store
from tests.support.services import PrivatePostgres


async def test_a_refused_database_is_waited_for_then_used(tmp_path) -> None:  # type: ignore[no-untyped-def]
    attempts: list[float] = []

    def open_when_up(url: str) -> Store:
        attempts.append(time.monotonic())
        if len(attempts) < 3:  # the first two attempts meet a database that refuses connections
            return Store.open("postgresql+psycopg://autometa@127.0.0.1:9/none", migrate=False).engine.connect()  # type: ignore[return-value]
        return Store.open(url)

    store = await runtime_chain._while_unreachable("database", _thread, open_when_up, f"sqlite:///{tmp_path}/s.db")
    try:
        assert len(attempts) == 3 and store.workflows.count() == 0
    finally:
        store.close()


async def test_other_errors_are_not_retried() -> None:
    calls = 0

    async def broken() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("not a connection problem")

    with pytest.raises(ValueError, match="not a connection problem"):
        await runtime_chain._while_unreachable("database", broken)
    assert calls == 1


async def test_it_gives_up_after_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime_chain, "STARTUP_WAIT_S", 1.0)

    def refused() -> None:
        Store.open("postgresql+psycopg://autometa@127.0.0.1:9/none", migrate=False).engine.connect()

    started = time.monotonic()
    with pytest.raises(OperationalError):
        await runtime_chain._while_unreachable("database", _thread, refused)
    assert time.monotonic() - started < 10


async def _thread(fn, *args):  # type: ignore[no-untyped-def]
    import asyncio

    return await asyncio.to_thread(fn, *args)


async def _until(check: Callable[[], Any], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_successor_follows_its_predecessors_transaction_through_a_database_restart(dev_chain) -> None:  # type: ignore[no-untyped-def]
    """`bench/chaos.py --chains 2`: the successor of a killed executor follows the transaction
    its predecessor left in flight; it is mined while PostgreSQL restarts, the journal write of
    its receipt is refused, and that ended the process (exit 1). Recovery is start-up: it waits
    for the database like the rest of start-up, then the executor starts."""
    w3, dep = dev_chain.w3, dev_chain.deployment
    signer = LocalKeySigner(dev_role("executor"), kind="dev")
    with PrivatePostgres() as pg:
        settings = load_settings(
            NETWORK="dev",
            MOONBASE_RPC=dev_chain.url,
            REGISTRY_ADDRESS=dep.address,
            DATABASE_URL=pg.url,
            REDIS_URL=None,
            USE_BACKEND_INTEGRATION=False,
        )
        # the predecessor: a transaction journaled and broadcast, then the process is gone
        store = Store.open(pg.url)
        w3a = connect_async(dev_chain.url)
        w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
        try:
            predecessor = TransactionSender(w3a, signer, journal=StoreJournal(store.sent_transactions))
            sent = await predecessor.send({"to": dep.address, "value": 0, "gas": 100_000, "data": "0x"}, "left")
        finally:
            await close_async(w3a)
            store.close()
        stop = asyncio.Event()
        target = ChainTarget.of(dep, dev_chain.url)

        async def mine() -> None:
            while True:
                await asyncio.to_thread(w3.provider.make_request, "evm_mine", [])  # type: ignore[arg-type]
                await asyncio.sleep(0.3)

        with capture_logs() as logs:

            def seen(name: str) -> bool:
                return any(e["event"] == name for e in logs)

            worker = asyncio.create_task(
                run_worker(settings, target, ("executor",), stop, in_memory_queue=True, signer=signer, worker_id="b")
            )
            try:
                await _until(lambda: worker.done() or seen("sender.nonce_initialised"), "the successor to recover")
                assert not worker.done(), worker.exception()
                await asyncio.to_thread(pg.stop)
                miner = asyncio.create_task(mine())
                try:
                    await _until(lambda: worker.done() or seen("startup.unreachable"), "the receipt's journal write")
                    assert not worker.done(), f"the successor stopped: {worker.exception()!r}"
                    await asyncio.to_thread(pg.start)
                    await _until(lambda: worker.done() or seen("executor.started"), "the executor to start")
                    assert not worker.done(), worker.exception()
                finally:
                    miner.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await miner
            finally:
                stop.set()
                await asyncio.wait_for(asyncio.gather(worker, return_exceptions=True), 30)
        store = Store.open(pg.url, migrate=False)
        try:
            row = store.sent_transactions.get(sent.tx_hash)
            status, block = (row.status, row.block_number) if row is not None else (None, None)
        finally:
            store.close()
    receipt = w3.eth.get_transaction_receipt(sent.tx_hash)  # type: ignore[arg-type]
    assert receipt["status"] == 1
    assert (status, block) == (MINED, receipt["blockNumber"])  # journaled once the store was back
