"""Workflows: signed creation and status changes through the relayer, and reads from the store."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from autometa.api.deps import ChainDep, RelayerDep, RelayerGuard, StoreDep
from autometa.api.errors import ApiError, dependency_failure
from autometa.api.schemas import (
    MAX_WORKFLOW_ID,
    SEED_CREATE_BODY,
    ErrorOut,
    EscrowOut,
    PreparedIntent,
    RelayedTxOut,
    StatusChangedOut,
    StatusChangeRequest,
    StatusPrepareRequest,
    WorkflowCreateBody,
    WorkflowCreatedOut,
    WorkflowCreateRequest,
    WorkflowListOut,
    WorkflowOut,
)
from autometa.api.views import escrow_view, state_of, workflow_view
from autometa.chain.revert import revert_data_from_exception
from autometa.domain.kinds import StatusOp
from autometa.domain.state import WorkflowState
from autometa.domain.types import Address
from autometa.store import Store

router = APIRouter(prefix="/api/workflow", tags=["workflow"])

WorkflowId = Annotated[int, Path(ge=1, le=MAX_WORKFLOW_ID, description="on-chain workflow id")]
_REFUSALS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 402, 403, 404, 409, 413, 422, 429, 503)
}
_SUBMITTED: dict[int | str, dict[str, Any]] = {
    **_REFUSALS,
    202: {
        "model": RelayedTxOut,
        "description": "Sent, not mined within the wait (or the chain node did not "
        "answer after the broadcast): the transaction hash and `status_url` to poll. Never a failure.",
    },
}
TxHash = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$", description="a hash a relayer answer named")]


def _answer(result: Any) -> Any:
    """A pending transaction is a 202 with its status URL; a mined one is the 200 result."""
    if isinstance(result, RelayedTxOut):
        return JSONResponse(result.model_dump(mode="json"), status_code=202, headers={"Location": result.status_url})
    return result


class Op(StrEnum):
    pause = "pause"
    resume = "resume"
    cancel = "cancel"

    @property
    def status_op(self) -> StatusOp:
        return StatusOp[self.name.upper()]


@router.post("/prepare", response_model=PreparedIntent, dependencies=[RelayerGuard], responses=_REFUSALS)
async def prepare_create(
    body: Annotated[WorkflowCreateBody, Body(openapi_examples={"seed": {"value": SEED_CREATE_BODY}})],
    relayer: RelayerDep,
) -> PreparedIntent:
    """The EIP-712 `CreateWorkflow` typed data for `user_address` to sign (eth_signTypedData_v4),
    with the nonce, the deadline and the relayer fee (≤ MAX_RELAYER_FEE_WEI) it commits to."""
    return await relayer.prepare_create(body)


@router.post("/create", response_model=WorkflowCreatedOut, dependencies=[RelayerGuard], responses=_SUBMITTED)
async def create(body: WorkflowCreateRequest, relayer: RelayerDep) -> Any:
    """Submit a signed workflow: 200 once mined, or 202 with the transaction hash and a status URL
    to poll when it is sent but not mined yet. Without a signature: 401 saying how to get the typed
    data."""
    return _answer(await relayer.create(body, body))


@router.get("/tx/{tx_hash}", response_model=RelayedTxOut, responses={c: {"model": ErrorOut} for c in (404, 422, 503)})
async def relayed_tx(tx_hash: TxHash, store: StoreDep, relayer: RelayerDep) -> RelayedTxOut:
    """A relayed transaction's state (the `status_url` of a 202): pending, mined (with the workflow
    id, and its status for pause / resume / cancel), reverted or dropped."""
    row = await run_in_threadpool(store.sent_transactions.get, tx_hash)
    if row is None or not str(row.purpose).startswith("relay-"):
        raise ApiError(404, "not_found", f"tx_hash: {tx_hash} is not a transaction this relayer sent", field="tx_hash")
    attempts = await run_in_threadpool(store.sent_transactions.by_nonce, row.chain_id, row.sender, row.nonce)
    return await relayer.tx_status(tx_hash, attempts or [row])


@router.post(
    "/{workflow_id:int}/{op}/prepare", response_model=PreparedIntent, dependencies=[RelayerGuard], responses=_REFUSALS
)
async def prepare_status(
    workflow_id: WorkflowId, op: Op, body: StatusPrepareRequest, relayer: RelayerDep
) -> PreparedIntent:
    """Typed data for the owner to sign to pause, resume or cancel a workflow."""
    return await relayer.prepare_status(op.status_op, workflow_id, body.user_address)


@router.post(
    "/{workflow_id:int}/{op}", response_model=StatusChangedOut, dependencies=[RelayerGuard], responses=_SUBMITTED
)
async def change_status(workflow_id: WorkflowId, op: Op, body: StatusChangeRequest, relayer: RelayerDep) -> Any:
    """Submit the owner's signed pause / resume / cancel: 200 once mined, 202 (status URL) if not yet."""
    return _answer(await relayer.change_status(op.status_op, workflow_id, body.user_address, body))


async def _escrow(store: Store, chain: ChainDep, state: WorkflowState, chain_id: int | None) -> EscrowOut | None:
    """The owner's escrow from the chain (authoritative), else from the indexed ledger."""
    try:
        return escrow_view(state, await chain.balance_of(state.owner), "chain")
    except Exception as exc:
        if dependency_failure(exc) is None and revert_data_from_exception(exc) is None:
            raise
    if chain_id is None:
        return None
    balance = await run_in_threadpool(store.escrow.balance, chain_id, state.owner)
    return escrow_view(state, balance, "store")


@router.get("/user/{address}", response_model=WorkflowListOut, responses={422: {"model": ErrorOut}})
async def by_user(
    address: Annotated[Address, Path(description="the owner (checksummed or all-lowercase)")],
    store: StoreDep,
    chain: ChainDep,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> WorkflowListOut:
    """An owner's workflows from the indexed store, newest first, with status, runs, next due
    time and how many more runs the owner's escrow pays for."""
    page = await run_in_threadpool(store.workflows.list_by_owner, address, offset, limit)
    states = [(row, state_of(row)) for row in page.items]
    balance: tuple[int, str] | None = None  # one owner, one balance
    if states:
        first = await _escrow(store, chain, states[0][1], states[0][0].chain_id)
        balance = (first.balance_wei, first.source) if first is not None else None
    views = [
        workflow_view(state, row=row, escrow=escrow_view(state, *balance) if balance is not None else None)
        for row, state in states
    ]
    return WorkflowListOut(owner=address, workflows=views, total=page.total, offset=page.offset, limit=page.limit)


@router.get("/{workflow_id:int}", response_model=WorkflowOut, responses={404: {"model": ErrorOut}})
async def get_workflow(workflow_id: WorkflowId, store: StoreDep, chain: ChainDep) -> WorkflowOut:
    """One workflow: from the store, or straight from the chain if the indexer has not seen it yet."""
    row = await run_in_threadpool(store.workflows.get, workflow_id)
    if row is not None:
        state = state_of(row)
        return workflow_view(state, row=row, escrow=await _escrow(store, chain, state, row.chain_id))
    try:
        view = await chain.get_workflow(workflow_id)
    except ApiError:
        raise
    except Exception as exc:
        if revert_data_from_exception(exc) is None:
            raise
        raise ApiError(404, "not_found", f"workflow {workflow_id} does not exist") from None
    state = WorkflowState.from_view(view)
    return workflow_view(state, escrow=await _escrow(store, chain, state, None))
