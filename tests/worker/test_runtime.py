"""The worker's composition root (`autometa.runtime`): scheduler and executor hosted in one
process on a real dev chain execute a due run once and close cleanly; start-up refuses a key
that is not allow-listed, a store that holds another chain, and roles it does not know."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from autometa.chain.accounts import dev_role
from autometa.chain.identity import ChainChanged, claim_chain
from autometa.chain.signers import LocalKeySigner
from autometa.config import load_settings
from autometa.runtime import ChainTarget, StartError, run_worker
from autometa.runtime.host import Hosted
from autometa.store import Store

from .helpers import advance, create, deposit, mine_until_executed, now, spec, wait_loaded


def _settings(chain: Any, tmp_path: Path) -> Any:
    dep = chain.deployment
    return load_settings(
        NETWORK="dev",
        MOONBASE_RPC=chain.url,
        REGISTRY_ADDRESS=dep.address,
        DATABASE_URL=f"sqlite:///{tmp_path / 'worker.db'}",
        REDIS_URL=None,
        USE_BACKEND_INTEGRATION=False,
    )


def _target(chain: Any) -> ChainTarget:
    dep = chain.deployment
    return ChainTarget.of(dep, chain.url)


async def test_one_process_hosts_scheduler_and_executor_and_closes_cleanly(dev_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    w3, dep, user = dev_chain.w3, dev_chain.deployment, dev_role("user")
    deposit(w3, dep.address, user, 10**18)
    wid = create(w3, dep.address, user, spec(0, {"at": now(w3) + 60}))
    settings = _settings(dev_chain, tmp_path)
    stop = asyncio.Event()
    seen: list[Hosted] = []
    signer = LocalKeySigner(dev_role("executor"), kind="dev")
    worker = asyncio.create_task(
        run_worker(
            settings,
            _target(dev_chain),
            ("scheduler", "executor"),
            stop,
            in_memory_queue=True,
            signer=signer,
            worker_id="test-executor",
            on_ready=seen.append,
        )
    )
    try:
        while not seen:
            assert not worker.done(), worker.exception()
            await asyncio.sleep(0.05)
        (hosted,) = seen
        assert hosted.scheduler is not None and hosted.executor is not None
        await wait_loaded(hosted.scheduler.scheduler, 30)
        beats = {b.role for b in hosted.link.store.heartbeats.all()}
        assert "scheduler" in beats  # the runtime's presence heartbeat
        advance(w3, 120)
        await mine_until_executed(w3, hosted.executor.executor, 1)
    finally:
        stop.set()
        await asyncio.wait_for(worker, 30)
    executed = [key for o in hosted.executor.executor.outcomes for key in o.executed]
    assert executed == [(wid, 0)]
    store = Store.open(settings.database_url)
    try:
        assert [b for b in store.heartbeats.all() if b.role == "scheduler"] == []  # removed at a clean stop
        (row,) = store.executions.for_run(dep.chain_id, dep.address, wid, 0)
        assert row.status == "success"
    finally:
        store.close()


async def test_an_executor_key_not_allow_listed_stops_start_up(dev_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    stranger = LocalKeySigner(Account.create(), kind="dev")
    with pytest.raises(StartError, match="is not an allow-listed executor"):
        await run_worker(
            _settings(dev_chain, tmp_path),
            _target(dev_chain),
            ("executor",),
            asyncio.Event(),
            in_memory_queue=True,
            signer=stranger,
        )


async def test_a_store_of_another_chain_stops_start_up(dev_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = _settings(dev_chain, tmp_path)
    store = Store.open(settings.database_url)
    claim_chain(store, dev_chain.deployment.chain_id, "0x" + "ab" * 32, "elsewhere")
    store.close()
    with pytest.raises(ChainChanged, match="the chain was reset"):
        await run_worker(settings, _target(dev_chain), ("scheduler",), asyncio.Event(), in_memory_queue=True)


async def test_unknown_roles_are_refused(dev_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for roles in (("indexer",), ()):
        with pytest.raises(ValueError, match="roles must be some of scheduler, executor, api"):
            await run_worker(_settings(dev_chain, tmp_path), _target(dev_chain), roles, asyncio.Event())


def test_the_worker_command_names_an_unknown_role() -> None:
    from typer.testing import CliRunner

    from autometa.cli.main import app

    result = CliRunner().invoke(app, ["worker", "--role", "scheduler", "--role", "indexer"])
    assert result.exit_code == 2
    assert "--role indexer: one of scheduler, executor, api" in result.stderr
