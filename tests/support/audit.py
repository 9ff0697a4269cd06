"""One audit of a finished scenario: the chain's logs and state against the due runs, the store
and the escrow arithmetic. Used by the fault tests and `bench/chaos.py`.

* Runs: every due run (workflow id, run index) executed successfully exactly once, or skipped
  with a reason recorded (in the store, or as a RunSkipped log); `duplicates` counts extra
  successful executions of one run (the contract should make them impossible), `missed` due runs
  with neither, `unexpected` successful runs that were not due.
* Store = chain: every RunExecuted/RunSkipped log has its store row (same tx, log index, status,
  fee) and no store row names a log the chain does not have; every workflow's status, run count,
  last run and failures equal `getWorkflow`; the store's escrow ledger equals the chain's
  movements. Simulated skips (the executor's marker hash, no transaction) are not chain facts
  and are not compared. Each difference counts once in `store_mismatches` (details kept).
* Escrow, to the wei: each account's balance rebuilt from the logs (deposits − withdrawals −
  fees paid + fees earned − native amounts sent − relayer reimbursements paid + received) equals
  `balanceOf`; Σ deposits − Σ withdrawals − Σ native amounts sent equals Σ balances; and the
  contract holds at least Σ balances. `escrow_error_wei` sums the absolute differences.

Call it once the workers are stopped (or idle) and the indexer caught up, so nothing moves.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from eth_utils import event_abi_to_log_topic, to_checksum_address
from sqlalchemy import select
from web3 import Web3

from autometa.chain.contracts import autometa
from autometa.domain.kinds import ActionType, SkipReason
from autometa.domain.state import WorkflowState
from autometa.domain.workflow import WorkflowSpec
from autometa.store import Store
from autometa.store.models import Checkpoint, EscrowEvent, Execution
from autometa.store.models import Workflow as WorkflowRow

from .store_reads import read_store

Run = tuple[int, int]
MARKER_PREFIX = "0x" + "0" * 16  # the executor's simulated-skip rows carry no real transaction


@dataclass
class AuditReport:
    workflows: int = 0
    due_runs: int = 0
    executed: int = 0
    skipped_with_reason: int = 0
    duplicates: int = 0
    missed: int = 0
    unexpected: int = 0
    store_mismatches: int = 0
    escrow_error_wei: int = 0
    details: list[str] = field(default_factory=list)
    skip_reasons: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return not (self.duplicates or self.missed or self.unexpected or self.store_mismatches or self.escrow_error_wei)

    def summary(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("details")
        out["skip_reasons"] = dict(self.skip_reasons)
        return out

    def explain(self, limit: int = 40) -> str:
        return f"{self.summary()}\n" + "\n".join(self.details[:limit])

    def assert_ok(self) -> None:
        assert self.ok, self.explain()


@dataclass
class ChainFacts:
    created: dict[int, tuple[str, WorkflowSpec]] = field(default_factory=dict)  # id -> (owner, spec)
    executed: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    deposits: list[dict[str, Any]] = field(default_factory=list)
    withdrawals: list[dict[str, Any]] = field(default_factory=list)
    reimbursed: list[dict[str, Any]] = field(default_factory=list)
    last_block: int = 0


def _hex(value: Any) -> str:
    return "0x" + bytes(value).hex()


def chain_facts(w3: Web3, address: str, from_block: int, to_block: int | None = None, step: int = 5000) -> ChainFacts:
    core = autometa(w3, address)
    names = {event_abi_to_log_topic(abi): abi["name"] for abi in core.abi if abi["type"] == "event"}
    last = int(w3.eth.block_number) if to_block is None else to_block
    facts = ChainFacts(last_block=last)
    for start in range(from_block, last + 1, step):
        logs = w3.eth.get_logs({"address": core.address, "fromBlock": start, "toBlock": min(last, start + step - 1)})
        for raw in sorted(logs, key=lambda item: (item["blockNumber"], item["logIndex"])):
            name = names.get(bytes(raw["topics"][0])) if raw["topics"] else None
            if name is None:
                continue
            ev = core.events[name]().process_log(raw)
            a = ev.args
            where = {"tx": _hex(ev.transactionHash), "log_index": int(ev.logIndex), "block": int(ev.blockNumber)}
            if name == "WorkflowCreated":
                facts.created[int(a.workflowId)] = (to_checksum_address(a.owner), WorkflowSpec.from_abi(a.spec))
            elif name == "RunExecuted":
                facts.executed.append(
                    {
                        **where,
                        "run": (int(a.workflowId), int(a.runIndex)),
                        "success": bool(a.success),
                        "fee": int(a.fee),
                        "executor": to_checksum_address(a.executor),
                    }
                )
            elif name == "RunSkipped":
                facts.skipped.append(
                    {**where, "run": (int(a.workflowId), int(a.runIndex)), "reason": SkipReason(a.reason).label}
                )
            elif name == "Deposited":
                facts.deposits.append({**where, "account": to_checksum_address(a.user), "amount": int(a.amount)})
            elif name == "Withdrawn":
                facts.withdrawals.append({**where, "account": to_checksum_address(a.user), "amount": int(a.amount)})
            elif name == "RelayerReimbursed":
                owner, relayer = to_checksum_address(a.owner), to_checksum_address(a.relayer)
                facts.reimbursed.append({**where, "account": owner, "relayer": relayer, "amount": int(a.amount)})
    return facts


def _native_value(spec: WorkflowSpec) -> int:
    if int(spec.action_type) == ActionType.ERC20_TRANSFER:
        return 0
    return int(getattr(spec.action_data, "amount_wei", 0) or getattr(spec.action_data, "value_wei", 0) or 0)


def _ledger(facts: ChainFacts) -> list[tuple[str, str, int, str, str | None, int]]:
    """The escrow movements the chain's logs imply: (tx, kind, log index, account, counterparty, amount)."""
    rows: list[tuple[str, str, int, str, str | None, int]] = []
    for d in facts.deposits:
        rows.append((d["tx"], "deposit", d["log_index"], d["account"], None, d["amount"]))
    for w in facts.withdrawals:
        rows.append((w["tx"], "withdraw", w["log_index"], w["account"], None, w["amount"]))
    for r in facts.reimbursed:
        rows.append((r["tx"], "reimburse", r["log_index"], r["account"], r["relayer"], r["amount"]))
    for e in facts.executed:
        owner, spec = facts.created[e["run"][0]]
        if e["fee"]:
            rows.append((e["tx"], "fee", e["log_index"], owner, e["executor"], e["fee"]))
        value = _native_value(spec)
        if e["success"] and value:
            rows.append((e["tx"], "payout", e["log_index"], owner, None, value))
    return rows


def audit(
    w3: Web3,
    address: str,
    from_block: int,
    database_url: str | None,
    due: Iterable[Run],
    *,
    accounts: Iterable[str] = (),
    expect_skipped: Mapping[Run, str] | None = None,
) -> AuditReport:
    """Audit the deployment at `address` (events from `from_block`) against `due` runs and the
    store at `database_url` (None: chain-only checks). `accounts`: extra addresses whose escrow
    balance to check (every address in the logs is checked anyway). `expect_skipped`: runs that
    must end skipped with that reason (label, e.g. "insufficient_escrow"), not executed."""
    core = autometa(w3, address)
    facts = chain_facts(w3, address, from_block)
    report = AuditReport(workflows=len(facts.created))
    due_set = set(due)
    expect_skipped = dict(expect_skipped or {})
    report.due_runs = len(due_set)
    details = report.details

    # ---- runs
    ok_runs = Counter(e["run"] for e in facts.executed if e["success"])
    report.duplicates = sum(n - 1 for n in ok_runs.values() if n > 1)
    for run, n in ok_runs.items():
        if n > 1:
            details.append(f"duplicate: run {run} executed {n} times")
    store_rows: list[Execution] = []
    store_workflows: dict[int, WorkflowRow] = {}
    store_escrow: list[EscrowEvent] = []
    checkpoint: int | None = None
    if database_url is not None:
        chain_id = int(w3.eth.chain_id)

        def read(store: Store) -> tuple[list[Execution], dict[int, WorkflowRow], list[EscrowEvent], int | None]:
            with store.session() as s:
                contract = core.address
                rows = list(
                    s.scalars(select(Execution).where(Execution.chain_id == chain_id, Execution.contract == contract))
                )
                wf_rows = s.scalars(
                    select(WorkflowRow).where(WorkflowRow.chain_id == chain_id, WorkflowRow.contract == contract)
                )
                workflows = {int(r.id): r for r in wf_rows}
                escrow = list(
                    s.scalars(
                        select(EscrowEvent).where(EscrowEvent.chain_id == chain_id, EscrowEvent.contract == contract)
                    )
                )
                name = f"indexer:{chain_id}:{core.address}"
                cp = s.get(Checkpoint, (chain_id, name))
                return rows, workflows, escrow, (int(cp.block_number) if cp is not None else None)

        store_rows, store_workflows, store_escrow, checkpoint = read_store(database_url, read)
    # Every reason a run was skipped for: a retryable skip (say not_due, when a reorg rewound the
    # chain's clock under a run already queued) may come before the one the scenario expects.
    reasons_by_run: dict[Run, set[str]] = {}
    for row in store_rows:
        if row.status == "skipped" and row.skip_reason:
            reasons_by_run.setdefault((int(row.workflow_id), int(row.run_index)), set()).add(row.skip_reason)
    for sk in facts.skipped:
        if sk["reason"] not in ("run_done", "bad_run_index"):
            reasons_by_run.setdefault(sk["run"], set()).add(sk["reason"])
    for run in sorted(due_set):
        if run in expect_skipped:
            if ok_runs[run]:
                report.unexpected += 1
                details.append(f"unexpected: run {run} executed, expected skipped ({expect_skipped[run]})")
            elif expect_skipped[run] in reasons_by_run.get(run, set()):
                report.skipped_with_reason += 1
                report.skip_reasons[expect_skipped[run]] += 1
            else:
                report.missed += 1
                got = sorted(reasons_by_run.get(run, set()))
                details.append(f"missed: run {run} not skipped as {expect_skipped[run]} (got {got})")
        elif ok_runs[run]:
            report.executed += 1
        elif run in reasons_by_run:
            report.skipped_with_reason += 1
            report.skip_reasons.update(reasons_by_run[run])
        else:
            report.missed += 1
            details.append(f"missed: run {run} neither executed nor skipped with a reason")
    for run in ok_runs:
        if run not in due_set:
            report.unexpected += 1
            details.append(f"unexpected: run {run} executed but was not due")

    # ---- store = chain
    if database_url is not None:
        mismatches = 0

        def differ(message: str) -> None:
            nonlocal mismatches
            mismatches += 1
            details.append("store: " + message)

        if checkpoint is None or checkpoint < max([e["block"] for e in facts.executed + facts.skipped] or [0]):
            differ(f"indexer checkpoint {checkpoint} behind the last run log")
        indexed = {
            (r.tx_hash, int(r.log_index)): r
            for r in store_rows
            if r.log_index is not None and not (r.tx_hash or "").startswith(MARKER_PREFIX)
        }
        seen: set[tuple[str, int]] = set()
        for e in facts.executed:
            key = (e["tx"], e["log_index"])
            seen.add(key)
            row = indexed.get(key)
            want = "success" if e["success"] else "failed"
            if row is None:
                differ(f"no row for RunExecuted {e['run']} in {e['tx']}:{e['log_index']}")
            elif (row.status, int(row.fee or 0), (int(row.workflow_id), int(row.run_index))) != (
                want,
                e["fee"],
                e["run"],
            ):
                differ(f"row for {e['run']} in {e['tx']} says {row.status}/{row.fee}, chain {want}/{e['fee']}")
        for sk in facts.skipped:
            key = (sk["tx"], sk["log_index"])
            seen.add(key)
            row = indexed.get(key)
            if row is None or row.status != "skipped" or row.skip_reason != sk["reason"]:
                differ(f"no skipped row for RunSkipped {sk['run']} ({sk['reason']}) in {sk['tx']}")
        for key, row in indexed.items():
            if key not in seen:
                differ(f"row {row.workflow_id}/{row.run_index} {row.status} in {key[0]} has no log on the chain")
        for row in store_rows:
            if int(row.workflow_id) not in facts.created:
                differ(f"row {row.workflow_id}/{row.run_index} {row.status} for a workflow the chain does not have")
            if row.status == "pending":
                differ(f"row {row.workflow_id}/{row.run_index} still pending in {row.tx_hash}")
        for wid in sorted(facts.created):
            state = WorkflowState.from_view(core.functions.getWorkflow(wid).call())
            srow = store_workflows.get(wid)
            if srow is None:
                differ(f"workflow {wid} missing")
                continue
            got = (int(srow.status), int(srow.run_count), int(srow.last_run), int(srow.failures), srow.owner)
            want_wf = (int(state.status), state.run_count, state.last_run, state.failures, state.owner)
            if got != want_wf:
                differ(f"workflow {wid}: store {got} != chain {want_wf}")
        for wid in store_workflows:
            if wid not in facts.created:
                differ(f"workflow {wid} in the store was never created on the chain")
        chain_ledger = Counter(_ledger(facts))
        store_ledger = Counter(
            (
                e.tx_hash,
                e.kind,
                int(e.log_index),
                e.account,
                e.counterparty if e.kind in ("fee", "reimburse") else None,
                int(e.amount),
            )
            for e in store_escrow
        )
        for item in (chain_ledger - store_ledger).elements():
            differ(f"escrow movement missing from the store: {item}")
        for item in (store_ledger - chain_ledger).elements():
            differ(f"escrow movement in the store not on the chain: {item}")
        report.store_mismatches = mismatches

    # ---- escrow, to the wei
    balance: defaultdict[str, int] = defaultdict(int)
    total_in = total_out = 0
    for _tx, kind, _i, account, counterparty, amount in _ledger(facts):
        if kind == "deposit":
            balance[account] += amount
            total_in += amount
        elif kind in ("withdraw", "payout"):
            balance[account] -= amount
            total_out += amount
        else:  # fee, reimburse: escrow to escrow
            balance[account] -= amount
            assert counterparty is not None
            balance[counterparty] += amount
    for extra in accounts:
        balance[to_checksum_address(extra)] += 0
    error = 0
    onchain_total = 0
    for account, expected in sorted(balance.items()):
        actual = int(core.functions.balanceOf(account).call())
        onchain_total += actual
        if actual != expected:
            error += abs(actual - expected)
            details.append(f"escrow: {account} holds {actual}, the logs say {expected}")
    if total_in - total_out != onchain_total:
        error += abs(total_in - total_out - onchain_total)
        details.append(f"escrow: deposits - withdrawals - payouts = {total_in - total_out}, balances {onchain_total}")
    held = int(w3.eth.get_balance(core.address))
    if held < onchain_total:
        error += onchain_total - held
        details.append(f"escrow: the contract holds {held} < Σ balances {onchain_total}")
    report.escrow_error_wei = error
    return report
