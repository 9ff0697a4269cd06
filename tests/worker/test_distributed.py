"""The distributed worker as real processes: two `autometa scheduler`, three `autometa executor`
(each its own allow-listed key) on one Redis queue and one PostgreSQL store, against anvil with
1 s blocks.

340 workflows each run exactly once — checked on the chain (one successful RunExecuted per
run, runCount 1, every recipient paid once) and in the store (one success row per run, the
chain's transaction) — although one executor is killed with -9 while its batch transaction is
in the pool and unacknowledged (the others reclaim its jobs), and the active scheduler is killed
with -9 (the standby takes the lease and schedules workflows created after the kill).
"""

from __future__ import annotations

import time
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from autometa.chain.accounts import dev_account, dev_role
from autometa.chain.contracts import autometa
from autometa.chain.deploy import set_dev_price
from autometa.store import Store
from autometa.store.models import Execution

from ..conftest import fresh_pg_database
from ..support.stack import EXECUTOR_KEYS, OWNER_KEYS, Stack, distributed_stack, native_spec, recipient

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

FIRST_WAVE = 300
AMOUNT = 10**12


def _pending_batch(stack: Stack, address: str) -> list[tuple[int, int]]:
    """The runs in `address`'s executeBatch transactions waiting in the pool."""
    core = autometa(stack.w3, stack.dep.address)
    pool = stack.w3.provider.make_request("txpool_content", [])["result"]  # type: ignore[arg-type]
    runs = []
    for sender, txs in pool.get("pending", {}).items():
        if sender.lower() != address.lower():
            continue
        for tx in txs.values():
            fn, args = core.decode_function_input(tx["input"])
            assert fn.fn_name == "executeBatch"
            runs.extend((packed >> 96, (packed >> 64) & 0xFFFFFFFF) for packed in args["runs"])
    return runs


def _kill_mid_batch(stack: Stack, name: str, key_index: int, timeout: float = 40.0) -> list[tuple[int, int]]:
    """Once the first executions are on the chain, SIGKILL `name` the moment one of its batch
    transactions is sent but not mined (so its jobs are unacknowledged); returns that batch."""
    address = dev_account(key_index).address
    deadline = time.monotonic() + timeout
    stack.wait_for("the first executions", lambda: bool(stack.executed_logs()), timeout)
    while time.monotonic() < deadline:
        runs = _pending_batch(stack, address)
        if runs:
            stack.kill(name)
            return runs
        stack.check_alive()
        time.sleep(0.02)
    raise AssertionError(f"{name} never had a batch in flight\n{stack.log_tails()}")


def _pending_jobs(stack: Stack) -> int:
    r = stack.redis()
    try:
        return int(r.xpending(stack.stream, stack.group)["pending"])
    finally:
        r.close()


def _store_rows(database_url: str, chain_id: int) -> list[Execution]:
    store = Store.open(database_url, migrate=False)
    try:
        with store.session() as session:
            return list(session.scalars(select(Execution).where(Execution.chain_id == chain_id)).all())
    finally:
        store.close()


def test_processes_execute_every_run_exactly_once_through_kills() -> None:
    with fresh_pg_database() as database_url, distributed_stack(database_url) as stack:
        w3 = stack.w3
        stack.interval_mining(1)
        stack.start("scheduler-1", "scheduler")
        stack.wait_for("a scheduler to hold the lease", lambda: stack.lease_holder() is not None)
        stack.start("scheduler-2", "scheduler")
        executors = {f"executor-{i}": key for i, key in enumerate(EXECUTOR_KEYS)}
        for name, key in executors.items():
            stack.start_executor(name, key)
        stack.wait_started(*executors, marker="executor.started")
        stack.wait_for("scheduler-1 to load", lambda: stack.scheduler_loaded("scheduler-1"))
        assert not stack.scheduler_loaded("scheduler-2")  # the standby waits for the lease

        # ---- 300 TIME workflows from three owners, 15 falling due per block over 20 blocks
        owners = [dev_account(i) for i in OWNER_KEYS]
        start = stack.head_timestamp() + 8
        first = stack.create_many(
            [(owners[i % 3], native_spec(0, {"at": start + i // 15}, recipient(i), AMOUNT)) for i in range(FIRST_WAVE)]
        )
        held = _kill_mid_batch(stack, "executor-0", executors["executor-0"])
        stack.wait_executed(first, timeout=90)
        # the dead executor's jobs are reclaimed by the others and acknowledged
        stack.wait_for("every job acknowledged", lambda: _pending_jobs(stack) == 0, timeout=30)
        assert any("queue.reclaimed" in stack.log_text(n) for n in ("executor-1", "executor-2"))

        # ---- kill the active scheduler; the standby must schedule what is created afterwards
        found: list[str] = []

        def lease_named() -> bool:
            holder = stack.lease_holder()
            found[:] = [n for n in ("scheduler-1", "scheduler-2") if holder and f"holder={holder}" in stack.log_text(n)]
            return bool(found)

        stack.wait_for("the lease holder's name in a scheduler's log", lease_named, timeout=15)
        active = found[0]
        standby = "scheduler-2" if active == "scheduler-1" else "scheduler-1"
        assert stack.log_text(active).count("scheduler.active") == 1  # held throughout: no lapse, no flapping
        stack.kill(active)
        start = stack.head_timestamp() + 4
        items: list[tuple[Any, Any]] = []
        for i in range(20):
            items.append((owners[i % 3], native_spec(0, {"at": start}, recipient(FIRST_WAVE + i), AMOUNT)))
        for i in range(20, 40):  # the seed's workflow: ethereum below $3200 -> send
            trigger = {"token": "ethereum", "comparator": 0, "price_usd": 3200}
            items.append((owners[i % 3], native_spec(2, trigger, recipient(FIRST_WAVE + i), AMOUNT)))
        second = stack.create_many(items)
        set_dev_price(w3, dev_role("admin"), stack.dep.feeds["ethereum"], Decimal("3198.15"))
        stack.wait_executed(second, timeout=60)
        assert stack.log_text(standby).count("scheduler.active") == 1  # took over once
        stack.wait_for("every job acknowledged", lambda: _pending_jobs(stack) == 0, timeout=30)
        time.sleep(3)  # a few more blocks: nothing may run again

        # ---- the chain: one successful run per workflow, nothing else
        ids = first + second
        logs = stack.executed_logs()
        assert all(e.args.success for e in logs)
        runs = Counter((int(e.args.workflowId), int(e.args.runIndex)) for e in logs)
        assert runs == Counter({(wid, 0): 1 for wid in ids})
        assert held and all(runs[run] == 1 for run in held)
        assert {stack.state(wid).run_count for wid in ids} == {1}
        assert {w3.eth.get_balance(recipient(i)) for i in range(len(ids))} == {AMOUNT}

        # ---- the store equals the chain: one success row per run, with the chain's transaction
        chain = {(int(e.args.workflowId), int(e.args.runIndex)): "0x" + bytes(e.transactionHash).hex() for e in logs}

        def store_matches() -> bool:
            rows = _store_rows(database_url, stack.dep.chain_id)
            ok = [r for r in rows if r.status == "success"]
            return len(ok) == len(chain) and {(r.workflow_id, r.run_index): r.tx_hash for r in ok} == chain

        stack.wait_for("the store to hold every execution", store_matches, timeout=30)
        rows = _store_rows(database_url, stack.dep.chain_id)
        assert not [r for r in rows if r.status in ("failed", "pending")]
        success = Counter((r.workflow_id, r.run_index) for r in rows if r.status == "success")
        assert set(success.values()) == {1}
