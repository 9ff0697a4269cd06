"""Faults between the executors and the chain, on one distributed stack (a scheduler and two
executor processes, anvil with 1 s blocks, Redis, PostgreSQL). The executors reach the chain
through a fault-injecting JSON-RPC proxy.

Each test adds a wave of workflows under one fault and ends with the audit of everything so far:
every due run executed exactly once (or skipped with its reason recorded), the store equal to
the chain, the escrow exact to the wei.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from autometa.chain.accounts import dev_account
from autometa.chain.contracts import autometa
from autometa.chain.deploy import transact

from ..conftest import fresh_pg_database
from ..support.rpc_proxy import RpcProxy
from ..support.stack import distributed_stack
from .helpers import Scenario, pending_runs, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

EXECUTORS = {"executor-a": 5, "executor-b": 6}
OWNERS = (3, 8, 9)
DRAINED_OWNER = 4
GWEI = 10**9


@pytest.fixture(scope="module")
def scenario() -> Iterator[tuple[Scenario, RpcProxy]]:
    with (
        fresh_pg_database() as database_url,
        distributed_stack(database_url, executors=tuple(EXECUTORS.values()), owners=(*OWNERS, DRAINED_OWNER)) as stack,
        RpcProxy(stack.anvil.url) as proxy,
    ):
        stack.start_workers(EXECUTORS, MOONBASE_RPC=proxy.url)
        yield Scenario(stack), proxy


def owners() -> list[object]:
    return [dev_account(i) for i in OWNERS]


def test_dropped_send_responses_5xx_resets_and_delays(scenario: tuple[Scenario, RpcProxy]) -> None:
    """eth_sendRawTransaction reaches the node but its answer is lost; receipts fail with 5xx;
    simulations are cut by TCP resets; nonce reads are slow. Nothing runs twice or is lost."""
    sc, proxy = scenario
    proxy.fault("eth_sendRawTransaction", "drop", times=4)
    proxy.fault("eth_getTransactionReceipt", "error", times=6, status=502)
    proxy.fault("eth_simulateV1", "reset", times=2)
    proxy.fault("eth_getTransactionCount", "delay", times=4, seconds=1.5)
    proxy.fault("eth_blockNumber", "error", probability=0.1, times=10)
    sc.wave(owners(), 24, lead_s=4, spread=4)
    sc.settle(timeout=90)
    assert proxy.injected_for("eth_sendRawTransaction", "drop") == 4
    assert proxy.injected_for("eth_getTransactionReceipt", "error") == 6
    assert proxy.injected_for("eth_simulateV1", "reset") == 2
    proxy.clear()
    sc.audit().assert_ok()


def test_escrow_drained_between_trigger_and_execution(scenario: tuple[Scenario, RpcProxy]) -> None:
    """The owner withdraws everything while the batch that runs their workflows is on its way
    to the node (simulated fine, held 4 s by the proxy): the contract skips the runs for
    insufficient escrow, the skip is recorded, the owner pays nothing, nothing else is hurt."""
    sc, proxy = scenario
    w3, core = sc.stack.w3, autometa(sc.stack.w3, sc.stack.dep.address)
    owner = dev_account(DRAINED_OWNER)
    proxy.fault("eth_sendRawTransaction", "delay", times=2, seconds=4)
    ids = sc.wave([owner], 3, lead_s=4)
    sc.expect_skipped.update({(wid, 0): "insufficient_escrow" for wid in ids})
    wait_until(
        "the batch to be held by the proxy",
        lambda: proxy.injected_for("eth_sendRawTransaction", "delay") >= 1,
        40,
        sc.stack,
    )
    balance = int(core.functions.balanceOf(owner.address).call())
    transact(w3, owner, core.functions.withdraw(balance))
    assert int(core.functions.balanceOf(owner.address).call()) == 0
    sc.settle(timeout=60)
    assert all(sc.stack.state(wid).run_count == 0 for wid in ids)
    proxy.clear()
    report = sc.audit()
    report.assert_ok()
    assert report.skip_reasons["insufficient_escrow"] == len(ids)


def test_executor_without_gas_funds(scenario: tuple[Scenario, RpcProxy]) -> None:
    """One executor's account is emptied: its broadcasts are refused for insufficient funds,
    it hands its jobs back to the queue at once (no idle-timeout wait) and stops reading, and
    the other executor runs them, exactly once: the wave settles within seconds of falling due
    (it took 16-66 s when each refused job waited out the 5 s reclaim)."""
    sc, _ = scenario
    w3 = sc.stack.w3
    broke = dev_account(EXECUTORS["executor-b"]).address
    w3.provider.make_request("anvil_setBalance", [broke, "0x0"])  # type: ignore[arg-type]
    nonce_before = w3.eth.get_transaction_count(broke)
    try:
        sc.wave(owners(), 10, lead_s=4, spread=2)
        started = time.monotonic()
        sc.settle(timeout=90)
        assert time.monotonic() - started < 25, "the refused jobs waited for a reclaim"
        assert w3.eth.get_transaction_count(broke) == nonce_before  # nothing of it was mined
        log = sc.stack.log_text("executor-b")
        assert "executor.needs_gas_funds" in log and broke in log.split("executor.needs_gas_funds")[1]
    finally:
        w3.provider.make_request("anvil_setBalance", [broke, hex(10_000 * 10**18)])  # type: ignore[arg-type]
    sc.audit().assert_ok()


def test_base_fee_spike_with_transactions_pending(scenario: tuple[Scenario, RpcProxy]) -> None:
    """Batches are waiting in the pool when the base fee jumps 100×: their max fee no longer
    covers it, the sender replaces them with bumped fees, each run still happens once and the
    owner is charged for the gas price actually paid (exact to the wei)."""
    sc, _ = scenario
    stack, w3 = sc.stack, sc.stack.w3
    senders = [dev_account(k).address for k in EXECUTORS.values()]
    ids = sc.wave(owners(), 12, lead_s=6)
    stack.w3.provider.make_request("evm_setIntervalMining", [0])  # type: ignore[arg-type]
    try:
        at = max(int(sc.stack.state(wid).spec.trigger_data.at) for wid in ids)  # type: ignore[union-attr]
        assert stack.head_timestamp() < at, "the runs fell due before mining stopped"
        # the block that makes them due, by the chain's clock
        w3.provider.make_request("evm_mine", [max(at, sc.stack.head_timestamp() + 1)])  # type: ignore[arg-type]
        wait_until("batches pending in the pool", lambda: sum(stack.pending_txs(a) for a in senders) >= 1, 30, stack)
        time.sleep(0.5)
        base = int(w3.eth.get_block("latest")["baseFeePerGas"])
        spike = max(100 * base, 50 * GWEI)
        w3.provider.make_request("anvil_setNextBlockBaseFeePerGas", [hex(spike)])  # type: ignore[arg-type]
    finally:
        stack.interval_mining(1)
    sc.settle(timeout=90)
    logs = [e for e in stack.executed_logs() if (int(e.args.workflowId), 0) in {(w, 0) for w in ids}]
    assert any(int(e.args.gasPrice) >= spike // 2 for e in logs), "no run was mined at the spiked price"
    assert any("tx.replaced" in stack.log_text(n) for n in EXECUTORS)
    sc.audit().assert_ok()


def test_executors_killed_with_a_dropped_send_in_flight(scenario: tuple[Scenario, RpcProxy]) -> None:
    """A batch's eth_sendRawTransaction answer is lost (the node has it), and while the batches
    wait in the pool both executors are killed with -9. New executor processes with the same
    keys recover the journaled transactions (and follow them, not sign new ones); the
    unacknowledged jobs are reclaimed and settle as already done; each run once."""
    sc, proxy = scenario
    stack, w3 = sc.stack, sc.stack.w3
    ids = sc.wave(owners(), 12, lead_s=6)
    stack.w3.provider.make_request("evm_setIntervalMining", [0])  # type: ignore[arg-type]
    try:
        drops = proxy.injected_for("eth_sendRawTransaction", "drop")
        proxy.fault("eth_sendRawTransaction", "drop", times=1)
        at = max(int(sc.stack.state(wid).spec.trigger_data.at) for wid in ids)  # type: ignore[union-attr]
        w3.provider.make_request("evm_mine", [max(at, stack.head_timestamp() + 1)])  # type: ignore[arg-type]
        want = {(wid, 0) for wid in ids}
        wait_until("every run in a pending batch", lambda: pending_runs(stack) >= want, 30, stack)
        assert proxy.injected_for("eth_sendRawTransaction", "drop") == drops + 1
        for name in EXECUTORS:
            stack.kill(name)
        for name, key in EXECUTORS.items():
            stack.start_executor(f"{name}-successor", key, MOONBASE_RPC=proxy.url)
    finally:
        stack.interval_mining(1)
    # (a successor starts taking jobs once the transactions it recovered are mined)
    stack.wait_started(*(f"{n}-successor" for n in EXECUTORS), marker="executor.started")
    sc.settle(timeout=90)
    recovered = sum(
        int(line.split("recovered=")[1].split()[0])
        for n in EXECUTORS
        for line in stack.log_text(f"{n}-successor").splitlines()
        if "sender.nonce_initialised" in line
    )
    assert recovered >= 1, "no journaled transaction was recovered"
    proxy.clear()
    sc.audit().assert_ok()
