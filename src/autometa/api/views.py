"""Store rows and chain views as API models."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from autometa.api.schemas import EscrowOut, ExecutionOut, WorkerOut, WorkflowOut
from autometa.chain.indexer import state_from_row
from autometa.domain.state import WorkflowState
from autometa.domain.triggers.cron import CRON_CODE, CronTriggerData, next_tick
from autometa.domain.workflow import ContractCallData, NativeTransferData
from autometa.store import Execution, Heartbeat
from autometa.store import Workflow as WorkflowRow


def per_run_cost(state: WorkflowState) -> int:
    """The most one run can take from escrow: the fee cap plus any native value it sends."""
    action = state.spec.action_data
    amount = 0
    if isinstance(action, NativeTransferData):
        amount = action.amount_wei
    elif isinstance(action, ContractCallData):
        amount = action.value_wei
    return state.spec.resolved_max_fee + amount


def escrow_view(state: WorkflowState, balance: int, source: str) -> EscrowOut:
    per_run = per_run_cost(state)
    runs = balance // per_run if per_run else 0
    return EscrowOut(balance_wei=balance, per_run_wei=per_run, runway_runs=runs, source=source)  # type: ignore[arg-type]


def shown_due_time(state: WorkflowState, now: float | None = None) -> int | None:
    """`next_due_time`, except for a CRON workflow that has not run: the spec alone knows no floor
    (the contract's is the creation time, which the view does not hold), so its first tick after
    1970 would show. It is due at the spec's next tick from now (or, if one passed while no worker
    ran, at once — that run names the latest tick)."""
    due = state.next_due_time()
    if due is None or state.trigger_type != CRON_CODE or state.run_count:
        return due
    data = state.spec.trigger_data
    assert isinstance(data, CronTriggerData)
    at = int(time.time() if now is None else now)
    if due >= at:
        return due
    due = next_tick(data.spec, at - 1)
    end = state.spec.end_time()
    return None if end is not None and due > end else due


def workflow_view(
    state: WorkflowState,
    *,
    row: WorkflowRow | None = None,
    escrow: EscrowOut | None = None,
    chain: str | None = None,
    chain_id: int | None = None,
) -> WorkflowOut:
    max_runs = state.spec.resolved_max_runs
    return WorkflowOut(
        id=state.id,
        chain_id=int(row.chain_id) if row is not None else chain_id,
        chain=chain,
        contract=str(row.contract) if row is not None else None,
        owner=state.owner,
        status=state.status.label,
        status_code=int(state.status),
        spec=state.spec.model_dump(mode="json"),
        run_count=state.run_count,
        max_runs=max_runs,
        runs_left=max(0, max_runs - state.run_count),
        failures=state.failures,
        last_run=state.last_run or None,
        next_due_time=shown_due_time(state),
        created_block=row.created_block if row is not None else None,
        created_tx=row.created_tx if row is not None else None,
        escrow=escrow,
        indexed=row is not None,
    )


def state_of(row: WorkflowRow) -> WorkflowState:
    return state_from_row(row)


def execution_view(row: Execution) -> ExecutionOut:
    return ExecutionOut(
        id=row.id,
        chain_id=row.chain_id,
        workflow_id=row.workflow_id,
        run_index=row.run_index,
        status=row.status,
        skip_reason=row.skip_reason,
        tx_hash=row.tx_hash,
        block_number=row.block_number,
        gas_used=row.gas_used,
        gas_price_wei=row.gas_price,
        fee_wei=row.fee,
        price_source=row.price_source,
        executor=row.executor,
        revert_reason=row.revert_reason,
        triggered_at=row.triggered_at,
        included_at=row.included_at,
        latency_s=row.latency_s,
        occurred_at=row.occurred_at,
    )


def worker_view(row: Heartbeat, now: datetime | None = None) -> WorkerOut:
    now = now or datetime.now(UTC)
    extra = row.extra if isinstance(row.extra, dict) else {}
    return WorkerOut(
        worker_id=row.worker_id,
        role=row.role,
        address=row.address,
        version=row.version,
        host=row.host,
        pid=row.pid,
        started_at=row.started_at,
        last_seen=row.last_seen,
        age_s=max(0.0, (now - row.last_seen).total_seconds()),
        chain_id=int(row.chain_id) if row.chain_id else None,  # 0: a process of no chain
        active=bool(extra["active"]) if row.role == "scheduler" and "active" in extra else None,
    )
