"""Issue 14 on a real anvil: an OP-stack (Base, chain id 8453) deployment charges each run its share
of the transaction's L1 data fee, read from the GasPriceOracle stand-in installed at the predeploy
address; the owner's cap bounds it; the module changes only through the timelock; doctor and
deploy say which module a deployment uses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner
from web3 import Web3
from web3.logs import DISCARD

from autometa.chain.accounts import dev_role
from autometa.chain.anvil import Anvil
from autometa.chain.contracts import autometa, deployed_module
from autometa.chain.deploy import Deployment, deploy, transact
from autometa.chain.l2_standins import install_arb_gas_info, install_op_oracle, op_l1_fee
from autometa.chain.web3 import connect
from autometa.cli.main import app
from autometa.networks import ChainModule
from tests.conftest import DevChain
from tests.worker.helpers import create, deposit, now, spec

ADMIN, EXECUTOR, USER = dev_role("admin"), dev_role("executor"), dev_role("user")
GWEI = 10**9
SNAPSHOT = "evm_snapshot"


@pytest.fixture(scope="module")
def base_chain() -> Iterator[tuple[Web3, Deployment, str]]:
    """A Base-like anvil (chain id 8453) with the oracle stand-in and a deployment made by `deploy`."""
    with Anvil(chain_id=8453) as anvil:
        w3 = connect(anvil.url)
        install_op_oracle(w3, ADMIN, l1_base_fee=20 * GWEI, blob_base_fee=5 * GWEI)
        dep = deploy(w3, ADMIN, executors=[EXECUTOR.address], timelock=60)
        yield w3, dep, anvil.url


@pytest.fixture
def chain(base_chain: tuple[Web3, Deployment, str]) -> Iterator[tuple[Web3, Deployment, str]]:
    w3 = base_chain[0]
    snap = w3.provider.make_request(SNAPSHOT, [])["result"]  # type: ignore[arg-type]
    yield base_chain
    w3.provider.make_request("evm_revert", [snap])  # type: ignore[arg-type]


def _run(w3: Web3, dep: Deployment, wf_id: int) -> tuple[Any, dict[str, Any], tuple[int, int]]:
    core = autometa(w3, dep.address)
    receipt = transact(w3, EXECUTOR, core.functions.execute(wf_id, 0, 0))
    (executed,) = core.events.RunExecuted().process_receipt(receipt, errors=DISCARD)
    (shared,) = core.events.L1FeeShared().process_receipt(receipt, errors=DISCARD)
    return receipt, dict(executed["args"]), (int(shared["args"]["l1Fee"]), int(shared["args"]["gasPerRun"]))


def _workflow(w3: Web3, dep: Deployment, **extra: Any) -> int:
    deposit(w3, dep.address, USER, 10**18)
    return create(w3, dep.address, USER, spec(0, {"at": now(w3)}, **extra))


def test_deploy_picks_the_optimism_module_from_the_preset(chain: tuple[Web3, Deployment, str]) -> None:
    w3, dep, _ = chain
    assert dep.chain_module == "optimism"
    address = autometa(w3, dep.address).functions.chainModule().call()
    assert address == dep.chain_module_address and deployed_module(w3, address) is ChainModule.OPTIMISM


@pytest.mark.parametrize("l1_base_fee_gwei", [20, 100_000])
def test_a_run_is_charged_its_l1_share_and_the_executor_is_not_out_of_pocket(
    chain: tuple[Web3, Deployment, str], l1_base_fee_gwei: int
) -> None:
    """A quiet L1 is charged Fjord's cheap upper bound (its overcharge is small next to the run's
    gas); an expensive one the exact fee of the transaction (on-chain compression)."""
    w3, dep, _ = chain
    oracle = install_op_oracle(w3, ADMIN, l1_base_fee=l1_base_fee_gwei * GWEI, blob_base_fee=5 * GWEI)
    wf_id = _workflow(w3, dep)
    receipt, run, (l1, gas_per_run) = _run(w3, dep, wf_id)
    premium, price = int(run["premiumBps"]), int(run["gasPrice"])
    assert l1 > 0 and gas_per_run == -(-l1 // price), "the whole L1 fee, as gas at the run's price"
    assert int(run["gasUsed"]) > gas_per_run + 21_000
    assert int(run["fee"]) == int(run["gasUsed"]) * price * (10_000 + premium) // 10_000
    # what the sequencer would charge for this very transaction, from the oracle's formula
    real_l1 = op_l1_fee(w3, receipt["transactionHash"])
    tx = w3.eth.get_transaction(receipt["transactionHash"])
    bound = oracle.functions.getL1FeeUpperBound(len(tx["input"]) + 50).call(block_identifier=tx["blockNumber"])
    if l1_base_fee_gwei < 1000:
        assert l1 == bound > real_l1, "the cheap bound"
    else:
        assert l1 != bound and abs(l1 - real_l1) <= real_l1 * 3 // 100, ("the exact fee", l1, real_l1)
    real_cost = int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"]) + real_l1
    paid_without_premium = int(run["fee"]) * 10_000 // (10_000 + premium)
    assert abs(paid_without_premium - real_cost) <= real_cost * 3 // 100, (paid_without_premium, real_cost)
    assert int(run["fee"]) >= real_cost, "the executor is repaid at least its real cost"


def test_the_owners_max_fee_bounds_the_l1_share(chain: tuple[Web3, Deployment, str]) -> None:
    w3, dep, _ = chain
    install_op_oracle(w3, ADMIN, l1_base_fee=200_000 * GWEI, blob_base_fee=5 * GWEI)  # an L1 fee spike
    cap = 10**13
    wf_id = _workflow(w3, dep, max_fee_per_run_wei=cap)
    before = autometa(w3, dep.address).functions.balanceOf(USER.address).call()
    _, run, (l1, _) = _run(w3, dep, wf_id)
    assert l1 > cap and int(run["fee"]) == cap
    after = autometa(w3, dep.address).functions.balanceOf(USER.address).call()
    assert before - after == cap + 10**15, "the cap and the action's amount, nothing more"


def test_the_module_changes_only_through_the_timelock_and_doctor_reports_it(
    chain: tuple[Web3, Deployment, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w3, dep, url = chain
    core = autometa(w3, dep.address)
    _workflow(w3, dep)
    for name in ("MOONBASE_RPC", "REGISTRY_ADDRESS", "CHAIN_ID", "NETWORK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ADMIN_PRIVATE_KEY", ADMIN.key.hex())
    runner = CliRunner()

    def doctor() -> dict[str, str]:
        result = runner.invoke(app, ["doctor", "--json", "--rpc-url", url, "--contract", dep.address])
        return {f["check"]: f for f in json.loads(result.stdout)["findings"]}["chain module"]

    row = doctor()
    assert row["status"] == "ok" and "optimism" in row["seen"] and dep.chain_module_address in row["seen"], row
    assert "an execute's L1 fee ≤" in row["seen"], row

    # a stranger cannot set it; the admin's change waits in the timelock
    stranger = transact_fails(w3, USER, core.functions.setChainModule(dep.chain_module_address))
    # OwnableUnauthorizedAccount(user)
    assert "0x118cdaa7" in stranger and USER.address[2:].lower() in stranger.lower(), stranger
    result = runner.invoke(
        app, ["admin", "set-chain-module", "none", "--rpc-url", url, "--contract", dep.address, "--json"]
    )
    assert result.exit_code == 0, result.stderr
    queued = json.loads(result.stdout)
    assert queued["status"] == "queued"
    assert core.functions.chainModule().call() == dep.chain_module_address, "not applied before the delay"
    w3.provider.make_request("evm_increaseTime", [61])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    target = ["--rpc-url", url, "--contract", dep.address]
    result = runner.invoke(app, ["admin", "apply", str(queued["change_id"]), *target])
    assert result.exit_code == 0, result.stderr
    assert deployed_module(w3, core.functions.chainModule().call()) is ChainModule.NONE
    row = doctor()
    assert row["status"] == "fail" and "set-chain-module" in row["action"], row

    # bad input: a kind the CLI does not know
    result = runner.invoke(app, ["admin", "set-chain-module", "zksync", "--rpc-url", url, "--contract", dep.address])
    assert result.exit_code == 2 and "zksync" in result.stderr


def transact_fails(w3: Web3, account: Any, call: Any) -> str:
    """Send a call expected to revert; returns the error text."""
    try:
        transact(w3, account, call)
    except Exception as exc:  # the estimate or the transaction reverts
        return f"{type(exc).__name__}: {exc}"
    raise AssertionError("the call went through")


def test_an_arbitrum_deployment_charges_the_poster_fee(chain: tuple[Web3, Deployment, str]) -> None:
    w3, _, _ = chain
    info = install_arb_gas_info(w3, ADMIN, l1_price_per_unit=30 * GWEI)
    dep = deploy(w3, ADMIN, executors=[EXECUTOR.address], timelock=60, chain_module=ChainModule.ARBITRUM)
    assert deployed_module(w3, dep.chain_module_address) is ChainModule.ARBITRUM
    wf_id = _workflow(w3, dep)
    transact(w3, ADMIN, info.functions.setCurrentTxSize(120))  # the next transaction's compressed size
    _, run, (l1, _) = _run(w3, dep, wf_id)
    assert l1 == 30 * GWEI * 120 * 16
    assert int(run["gasUsed"]) > -(-l1 // int(run["gasPrice"])) + 21_000, "the poster fee is in the run's gas"
    assert int(run["fee"]) == int(run["gasUsed"]) * int(run["gasPrice"]) * 11_000 // 10_000


def test_deploy_refuses_a_module_the_chain_cannot_serve(dev_chain: DevChain) -> None:
    with pytest.raises(ValueError, match="chain module 'optimism' does not work on chain 31337"):
        deploy(dev_chain.w3, ADMIN, chain_module=ChainModule.OPTIMISM)


def test_cli_deploy_reports_the_module_and_refuses_a_wrong_one(
    chain: tuple[Web3, Deployment, str], dev_chain: DevChain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, url = chain
    for name in ("MOONBASE_RPC", "REGISTRY_ADDRESS", "CHAIN_ID", "NETWORK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    runner = CliRunner()
    result = runner.invoke(app, ["deploy", "--rpc-url", url, "--key", ADMIN.key.hex(), "--json"])
    assert result.exit_code == 0, result.stderr
    deployment = json.loads(result.stdout)["deployment"]
    assert deployment["chain_module"] == "optimism" and deployment["chain_module_address"]
    result = runner.invoke(
        app, ["deploy", "--rpc-url", dev_chain.url, "--key", ADMIN.key.hex(), "--chain-module", "optimism"]
    )
    assert result.exit_code == 2 and "chain module 'optimism' does not work on chain 31337" in result.stderr
