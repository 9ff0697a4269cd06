"""Reorgs of depth 3 (anvil_reorg: the last three blocks replaced by empty ones, their
transactions gone) under the distributed worker: one scheduler (with the indexer), two
executors, anvil, Redis, PostgreSQL.

* After creation: the workflows vanish from the chain; the store forgets them, nothing is run
  for them; the ones the users send again run exactly once.
* After execution: the runs are undone on the chain (and the executor's transaction with its
  nonce is gone); the store rolls back, the runs are executed again, exactly once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from autometa.chain.accounts import dev_account

from ..conftest import fresh_pg_database
from ..support.stack import distributed_stack
from .helpers import Scenario, pending_runs, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

EXECUTORS = {"executor-a": 5, "executor-b": 6}
OWNERS = (3, 8, 9)


@pytest.fixture(scope="module")
def scenario() -> Iterator[Scenario]:
    with fresh_pg_database() as database_url, distributed_stack(database_url, executors=(5, 6)) as stack:
        stack.start_workers(EXECUTORS)
        yield Scenario(stack)


def _stop_mining(sc: Scenario) -> None:
    sc.stack.w3.provider.make_request("evm_setIntervalMining", [0])  # type: ignore[arg-type]


def _mine(sc: Scenario, n: int = 1) -> None:
    for _ in range(n):
        sc.stack.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def _reorg(sc: Scenario, depth: int = 3) -> None:
    reply = sc.stack.w3.provider.make_request("anvil_reorg", [depth, []])  # type: ignore[arg-type]
    assert "error" not in reply, reply


def _reported(sc: Scenario) -> int:
    """Runs the executors reported executed (their `executor.batch` log lines)."""
    total = 0
    for name in EXECUTORS:
        for line in sc.stack.log_text(name).splitlines():
            if "executor.batch" in line and (m := re.search(r"executed=(\d+)", line)):
                total += int(m.group(1))
    return total


def _stored(sc: Scenario, ids: list[int]) -> list[bool]:
    """For each id, whether the store holds that workflow."""
    from autometa.store import Store

    store = Store.open(sc.stack.database_url, migrate=False)
    try:
        chain_id, contract = int(sc.stack.w3.eth.chain_id), sc.stack.dep.address
        return [store.workflows.get(chain_id, contract, wid) is not None for wid in ids]
    finally:
        store.close()


def test_reorg_after_creation(scenario: Scenario) -> None:
    sc = scenario
    owners = [dev_account(i) for i in OWNERS]
    first_id = sc.next_recipient
    ids = sc.wave(owners, 10, lead_s=8, due=False)
    orphan_specs = [sc.stack.state(wid).spec for wid in ids[5:]]
    _stop_mining(sc)
    try:
        wait_until("the indexer to store the new workflows", lambda: all(_stored(sc, ids)), 30, sc.stack)
        head = int(sc.stack.w3.eth.block_number)
        creation_blocks = {int(e["blockNumber"]) for e in _created_logs(sc, ids)}
        assert min(creation_blocks) > head - 3, "the creations are deeper than the reorg"
        _reorg(sc, 3)
        assert not _created_logs(sc, ids), "the creations survived the reorg"
        _mine(sc, 1)
        wait_until("the indexer to forget the orphaned workflows", lambda: not any(_stored(sc, ids)), 30, sc.stack)
    finally:
        sc.stack.interval_mining(1)
    # Half the users send their workflows again: same specs, so the same ids come back.
    sc.next_recipient = first_id
    again = sc.wave(owners, 5, lead_s=3)
    assert again == ids[:5]
    sc.next_recipient = first_id + 10
    orphan_at = max(int(s.trigger_data.at) for s in orphan_specs)  # type: ignore[attr-defined]
    sc.settle(timeout=60)
    wait_until("the orphans' due time to pass", lambda: sc.stack.head_timestamp() > orphan_at + 3, 30, sc.stack)
    sc.wait_indexed()
    # the orphaned ids the users did not send again never fell due on the chain: nothing ran,
    # nothing was recorded for them
    assert not sc.store_rows(ids[5:])
    sc.audit().assert_ok()


def _created_logs(sc: Scenario, ids: list[int]) -> list[dict[str, object]]:
    from autometa.chain.contracts import autometa

    core = autometa(sc.stack.w3, sc.stack.dep.address)
    logs = core.events.WorkflowCreated().get_logs(from_block=sc.stack.dep.block, to_block="latest")
    return [dict(e) for e in logs if int(e.args.workflowId) in set(ids)]


def test_reorg_after_execution(scenario: Scenario) -> None:
    sc = scenario
    owners = [dev_account(i) for i in OWNERS]
    ids = sc.wave(owners, 12, lead_s=6)
    _stop_mining(sc)
    try:
        at = max(int(sc.stack.state(wid).spec.trigger_data.at) for wid in ids)  # type: ignore[union-attr]
        assert sc.stack.head_timestamp() < at
        # at the due time by the chain's clock (anvil's runs ahead of the wall clock after reorgs)
        sc.stack.w3.provider.make_request("evm_mine", [max(at, sc.stack.head_timestamp() + 1)])  # type: ignore[arg-type]
        want = {(wid, 0) for wid in ids}
        wait_until("every run in a pending batch", lambda: pending_runs(sc.stack) >= want, 30, sc.stack)
        before = _reported(sc)
        _mine(sc, 1)  # executed
        # the executors saw their receipts and moved on: nothing of theirs follows these
        # transactions any more, so only the reorg handling can bring the runs back
        wait_until("the executors to report the batch", lambda: _reported(sc) >= before + len(ids), 30, sc.stack)
        wait_until("every run executed", lambda: {w for w, _ in sc.stack.run_counts()} >= set(ids), 30, sc.stack)
        executed_rows = lambda: [r for r in sc.store_rows(ids) if r.status == "success"]  # noqa: E731
        wait_until("the store to record the executions", lambda: len(executed_rows()) == len(ids), 30, sc.stack)
        _mine(sc, 1)
        _reorg(sc, 3)
        assert not ({w for w, _ in sc.stack.run_counts()} & set(ids)), "the executions survived the reorg"
        assert all(sc.stack.state(wid).run_count == 0 for wid in ids)
    finally:
        sc.stack.interval_mining(1)
    sc.settle(timeout=90)
    sc.audit().assert_ok()
