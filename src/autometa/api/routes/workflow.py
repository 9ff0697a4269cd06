"""Workflows: signed creation and status changes through the relayer, and reads from the store."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from autometa.api.chains import ServedChain
from autometa.api.deps import ChainParam, RelayerDep, RelayerGuard, ServedDep, ServicesDep, StoreDep
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
async def relayed_tx(tx_hash: TxHash, services: ServicesDep, chain: ChainParam = None) -> RelayedTxOut:
    """A relayed transaction's state (the `status_url` of a 202): pending, mined (with the workflow
    id, and its status for pause / resume / cancel), reverted or dropped. The hash names its chain
    (the journal knows it), so `chain` is only checked."""
    if chain is not None:
        services.chain_for(chain)  # an unknown chain is a 404 even here
    store = services.store
    row = await run_in_threadpool(store.sent_transactions.get, tx_hash)
    served = services.served.by_id(int(row.chain_id)) if row is not None else None
    if row is None or not str(row.purpose).startswith("relay-") or served is None or served.relayer is None:
        raise ApiError(404, "not_found", f"tx_hash: {tx_hash} is not a transaction this relayer sent", field="tx_hash")
    attempts = await run_in_threadpool(store.sent_transactions.by_nonce, row.chain_id, row.sender, row.nonce)
    return await served.relayer.tx_status(tx_hash, attempts or [row])


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


async def _escrow(
    store: Store, served: ServedChain, state: WorkflowState, key: tuple[int, str] | None
) -> EscrowOut | None:
    """The owner's escrow from the chain (authoritative), else from the indexed ledger of the
    deployment ``key`` (chain id, contract)."""
    try:
        return escrow_view(state, await served.gateway.balance_of(state.owner), "chain")
    except Exception as exc:
        if dependency_failure(exc) is None and revert_data_from_exception(exc) is None:
            raise
    if key is None:
        return None
    balance = await run_in_threadpool(store.escrow.balance, key[0], key[1], state.owner)
    return escrow_view(state, balance, "store")


@router.get("/user/{address}", response_model=WorkflowListOut, responses={c: {"model": ErrorOut} for c in (404, 422)})
async def by_user(
    address: Annotated[Address, Path(description="the owner (checksummed or all-lowercase)")],
    services: ServicesDep,
    chain: Annotated[
        str | None,
        Query(max_length=64, description="only this chain (name or id); default: every chain this API serves"),
    ] = None,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> WorkflowListOut:
    """An owner's workflows from the indexed store (on every served chain, or on `chain`), by
    chain then newest first, each naming its chain, with status, runs, next due time and how many
    more runs the owner's escrow on that chain pays for."""
    store = services.store
    only: tuple[int, str] | None = await services.chain_for(chain).key() if chain is not None else None
    page = await run_in_threadpool(
        lambda: store.workflows.list_by_owner(
            address,
            offset,
            limit,
            chain_id=only[0] if only else None,
            contract=only[1] if only else None,
        )
    )
    balances: dict[tuple[int, str], tuple[int, str] | None] = {}  # one balance per owner and deployment
    views = []
    for row in page.items:
        state = state_of(row)
        key = (int(row.chain_id), str(row.contract))
        served = services.served.by_key(*key)
        if key not in balances:
            found = await _escrow(store, served, state, key) if served is not None else None
            balances[key] = (found.balance_wei, found.source) if found is not None else None
        balance = balances[key]
        views.append(
            workflow_view(
                state,
                row=row,
                escrow=escrow_view(state, *balance) if balance is not None else None,
                chain=served.label if served is not None else None,
            )
        )
    return WorkflowListOut(owner=address, workflows=views, total=page.total, offset=page.offset, limit=page.limit)


@router.get("/{workflow_id:int}", response_model=WorkflowOut, responses={c: {"model": ErrorOut} for c in (404,)})
async def get_workflow(workflow_id: WorkflowId, store: StoreDep, served: ServedDep) -> WorkflowOut:
    """One workflow of the chain `chain` (default: the first served): from the store, or straight
    from the chain if the indexer has not seen it yet."""
    key = await served.key()
    row = await run_in_threadpool(store.workflows.get, key[0], key[1], workflow_id)
    if row is not None:
        state = state_of(row)
        return workflow_view(state, row=row, escrow=await _escrow(store, served, state, key), chain=served.label)
    try:
        view = await served.gateway.get_workflow(workflow_id)
    except ApiError:
        raise
    except Exception as exc:
        if revert_data_from_exception(exc) is None:
            raise
        raise ApiError(404, "not_found", f"workflow {workflow_id} does not exist") from None
    state = WorkflowState.from_view(view)
    return workflow_view(state, escrow=await _escrow(store, served, state, None), chain=served.label, chain_id=key[0])
