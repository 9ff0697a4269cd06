"""One worker process, every configured chain (issue 16): `run_chains` hosts a scheduler and an
executor per chain on one store; a due run on each of two dev chains executes once, on its own
chain, by that chain's executor, and its rows are keyed by that chain. `autometa worker` resolves
one target per CHAINS entry and refuses the one-chain options beside CHAINS."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autometa.chain.accounts import dev_role
from autometa.chain.anvil import Anvil
from autometa.chain.devnet import setup_dev_stack
from autometa.chain.signers import LocalKeySigner
from autometa.chain.web3 import connect
from autometa.cli.common import CliError
from autometa.cli.worker_command import chain_runs
from autometa.config import load_settings
from autometa.runtime import ChainRun, ChainTarget, run_chains
from autometa.runtime.host import Hosted
from autometa.store import Store
from tests.conftest import DevChain

from .helpers import advance, create, deposit, mine_until_executed, now, spec, wait_loaded

SECOND_CHAIN_ID = 31338


@pytest.fixture(scope="module")
def second_chain() -> Iterator[DevChain]:
    """Another dev chain with its own chain id and its own deployment of the contract."""
    with Anvil(chain_id=SECOND_CHAIN_ID) as anvil:
        w3 = connect(anvil.url)
        yield DevChain(anvil, w3, setup_dev_stack(w3))


def _chains_setting(*chains: DevChain) -> str:
    return json.dumps(
        [
            {"chain_id": c.deployment.chain_id, "name": f"dev{i}", "rpc": c.url, "contract": c.deployment.address}
            for i, c in enumerate(chains)
        ]
    )


def _settings(tmp_path: Path, *chains: DevChain, **extra: Any) -> Any:
    return load_settings(
        NETWORK="dev",
        CHAINS=_chains_setting(*chains),
        MOONBASE_RPC=None,
        REGISTRY_ADDRESS=None,
        CHAIN_ID=None,
        DATABASE_URL=f"sqlite:///{tmp_path / 'worker.db'}",
        REDIS_URL=None,
        USE_BACKEND_INTEGRATION=False,
        DATA_DIR=str(tmp_path),
        **extra,
    )


async def test_one_worker_executes_a_due_run_on_each_chain_once(
    dev_chain: DevChain, second_chain: DevChain, tmp_path: Path
) -> None:
    user = dev_role("user")
    chains = (dev_chain, second_chain)
    created = []
    for c in chains:
        deposit(c.w3, c.deployment.address, user, 10**18)
        created.append(create(c.w3, c.deployment.address, user, spec(0, {"at": now(c.w3) + 60})))
    settings = _settings(tmp_path, *chains)
    signer = LocalKeySigner(dev_role("executor"), kind="dev")
    runs = [
        ChainRun(
            settings.for_chain(c.deployment.chain_id),
            ChainTarget.of(c.deployment, c.url),
            signer,
        )
        for c in chains
    ]
    stop = asyncio.Event()
    seen: list[list[Hosted]] = []
    worker = asyncio.create_task(
        run_chains(settings, runs, ("scheduler", "executor"), stop, in_memory_queue=True, on_ready=seen.append)
    )
    try:
        while not seen:
            assert not worker.done(), worker.exception()
            await asyncio.sleep(0.05)
        (hosted,) = seen
        assert [h.link.target.chain_id for h in hosted] == [31337, SECOND_CHAIN_ID]
        assert hosted[0].link.store is hosted[1].link.store  # one store for both chains
        for h, c in zip(hosted, chains, strict=True):
            assert h.scheduler is not None and h.executor is not None
            await wait_loaded(h.scheduler.scheduler, 30)
            advance(c.w3, 120)
        for h, c in zip(hosted, chains, strict=True):
            assert h.executor is not None
            await mine_until_executed(c.w3, h.executor.executor, 1)
    finally:
        stop.set()
        await asyncio.wait_for(worker, 30)
    for h, wid in zip(hosted, created, strict=True):
        assert h.executor is not None
        assert [key for o in h.executor.executor.outcomes for key in o.executed] == [(wid, 0)]
    store = Store.open(settings.database_url)
    try:
        for c, wid in zip(chains, created, strict=True):
            (row,) = store.executions.for_run(c.deployment.chain_id, c.deployment.address, wid, 0)
            assert row.status == "success"
            assert c.w3.eth.get_transaction_receipt(row.tx_hash).status == 1  # mined on its own chain
        # each chain holds exactly its own run: nothing executed twice or on the other chain
        for c in chains:
            page = store.executions.list(chain_id=c.deployment.chain_id)
            assert page.total == 1
    finally:
        store.close()


async def test_a_chain_refused_at_start_up_stops_every_chain(
    dev_chain: DevChain, second_chain: DevChain, tmp_path: Path
) -> None:
    from eth_account import Account

    from autometa.runtime import StartError

    settings = _settings(tmp_path, dev_chain, second_chain)
    good = LocalKeySigner(dev_role("executor"), kind="dev")
    stranger = LocalKeySigner(Account.create(), kind="dev")
    runs = [
        ChainRun(
            settings.for_chain(c.deployment.chain_id),
            ChainTarget.of(c.deployment, c.url),
            key,
        )
        for c, key in ((dev_chain, good), (second_chain, stranger))
    ]
    stop = asyncio.Event()
    with pytest.raises(StartError, match="is not an allow-listed executor"):
        await asyncio.wait_for(run_chains(settings, runs, ("scheduler", "executor"), stop, in_memory_queue=True), 60)
    assert stop.is_set()


def test_the_worker_command_resolves_every_chain(
    dev_chain: DevChain, second_chain: DevChain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in {
        "NETWORK": "dev",
        "CHAINS": _chains_setting(dev_chain, second_chain),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
        "DATA_DIR": str(tmp_path),
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("MOONBASE_RPC", "REGISTRY_ADDRESS", "CHAIN_ID", "ACTIONEXECUTOR_ADDRESS", "FEEESCROW_ADDRESS"):
        monkeypatch.delenv(key, raising=False)
    settings, runs = chain_runs(None, None)
    assert len(settings.chains) == 2
    assert [(r.target.chain_id, r.target.contract, r.target.rpc_url) for r in runs] == [
        (c.deployment.chain_id, c.deployment.address, c.url) for c in (dev_chain, second_chain)
    ]
    assert [r.settings.CHAIN_ID for r in runs] == [31337, SECOND_CHAIN_ID]
    with pytest.raises(CliError, match="with CHAINS set"):
        chain_runs(None, dev_chain.deployment.address)
