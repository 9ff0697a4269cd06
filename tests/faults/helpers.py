"""Shared by the fault tests: waves of one-shot TIME workflows on a distributed stack, waiting
for the store to settle, and the audit of everything so far."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from eth_account.signers.local import LocalAccount
from sqlalchemy import func, select

from autometa.chain.accounts import dev_account
from autometa.store import Store
from autometa.store.models import Checkpoint, Execution

from ..support.audit import AuditReport, Run, audit
from ..support.stack import Stack, native_spec, recipient
from ..support.store_reads import read_store

AMOUNT = 10**12


@dataclass
class Scenario:
    """A stack plus the runs that fell due in it so far (and those expected to be skipped)."""

    stack: Stack
    due: set[Run] = field(default_factory=set)
    expect_skipped: dict[Run, str] = field(default_factory=dict)
    next_recipient: int = 0

    def wave(
        self, owners: Iterable[LocalAccount], n: int, lead_s: int = 4, spread: int = 1, due: bool = True
    ) -> list[int]:
        """`n` one-shot TIME workflows from `owners` (round robin), due `lead_s` seconds from the
        head, `spread` per second; recorded as due runs."""
        owners = list(owners)
        start = self.stack.head_timestamp() + lead_s
        items = []
        per_second = max(1, n // spread)
        for i in range(n):
            spec = native_spec(0, {"at": start + i // per_second}, recipient(self.next_recipient), AMOUNT)
            items.append((owners[i % len(owners)], spec))
            self.next_recipient += 1
        ids = self.stack.create_many(items)
        if due:
            self.due.update((wid, 0) for wid in ids)
        return ids

    def store_rows(self, ids: Iterable[int]) -> list[Execution]:
        wanted = list(ids)
        dep = self.stack.dep

        def read(store: Store) -> list[Execution]:
            with store.session() as s:
                q = select(Execution).where(
                    Execution.chain_id == dep.chain_id,
                    Execution.contract == dep.address,
                    Execution.workflow_id.in_(wanted),
                )
                return list(s.scalars(q))

        return read_store(self.stack.database_url, read)

    def wait_skipped(self, runs: dict[Run, str], timeout: float = 60) -> None:
        def done() -> bool:
            rows = self.store_rows({wid for wid, _ in runs})
            got = {(int(r.workflow_id), int(r.run_index), r.skip_reason) for r in rows if r.status == "skipped"}
            return all((*run, reason) in got for run, reason in runs.items())

        self.stack.wait_for(f"skips recorded for {sorted(runs)[:5]}", done, timeout)

    def wait_indexed(self, timeout: float = 60) -> None:
        """Until the scheduler's indexer has reached the head as it is now and no store row of
        this deployment is pending (the executors' reports are merged); another chain's rows on
        the same store are that chain's business."""
        target = int(self.stack.w3.eth.block_number)
        dep = self.stack.dep
        name = f"indexer:{dep.chain_id}:{dep.address}"

        def read(store: Store) -> bool:
            with store.session() as s:
                cp = s.get(Checkpoint, (dep.chain_id, name))
                pending = s.scalar(
                    select(func.count())
                    .select_from(Execution)
                    .where(
                        Execution.chain_id == dep.chain_id,
                        Execution.contract == dep.address,
                        Execution.status == "pending",
                    )
                )
                return cp is not None and int(cp.block_number) >= target and not pending

        def caught_up() -> bool:
            return read_store(self.stack.database_url, read)

        self.stack.wait_for("the indexer to catch up", caught_up, timeout)

    def settle(self, timeout: float = 60) -> None:
        """Every due run not expected to be skipped is on the chain; the pools are empty; the
        indexer caught up."""
        runs = {wid for wid, _ in self.due if (wid, 0) not in self.expect_skipped}
        self.stack.wait_executed(sorted(runs), timeout)
        if self.expect_skipped:
            self.wait_skipped(self.expect_skipped, timeout)
        self.stack.wait_for("empty transaction pools", lambda: _pool_empty(self.stack), timeout)
        self.wait_indexed(timeout)

    def audit(self, extra_accounts: Iterable[str] = ()) -> AuditReport:
        accounts = [*(dev_account(i).address for i in range(10)), *extra_accounts]
        return audit(
            self.stack.w3,
            self.stack.dep.address,
            self.stack.dep.block,
            self.stack.database_url,
            self.due,
            accounts=accounts,
            expect_skipped=self.expect_skipped,
        )


def pending_runs(stack: Stack) -> set[Run]:
    """The runs in executeBatch transactions waiting in the pool (any sender)."""
    from autometa.chain.contracts import autometa

    core = autometa(stack.w3, stack.dep.address)
    pool: Any = stack.w3.provider.make_request("txpool_content", [])  # type: ignore[arg-type]
    runs: set[Run] = set()
    for txs in pool["result"].get("pending", {}).values():
        for tx in txs.values():
            if (tx.get("to") or "").lower() != stack.dep.address.lower():
                continue
            fn, args = core.decode_function_input(tx["input"])
            if fn.fn_name == "executeBatch":
                runs.update((packed >> 96, (packed >> 64) & 0xFFFFFFFF) for packed in args["runs"])
    return runs


def _pool_empty(stack: Stack) -> bool:
    status: Any = stack.w3.provider.make_request("txpool_status", [])  # type: ignore[arg-type]
    result = status["result"]
    return int(result["pending"], 16) == 0 and int(result["queued"], 16) == 0


def wait_until(what: str, check: Any, timeout: float, stack: Stack | None = None, step: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if stack is not None:
            stack.check_alive()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}" + (f"\n{stack.log_tails()}" if stack else ""))
        time.sleep(step)
