"""An owner's escrow account: balance, runway at the active workflows' worst case, and the call a
wallet sends to deposit. The workflow routes show escrow per workflow only once one exists; a new
user needs the balance (and a way to fund it) before creating anything."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from starlette.concurrency import run_in_threadpool

from autometa.api.dashboard.schemas import DepositCall, EscrowAccountOut
from autometa.api.deps import ChainDep, StoreDep
from autometa.api.errors import Unavailable, dependency_failure
from autometa.api.schemas import ErrorOut
from autometa.api.views import per_run_cost, state_of
from autometa.domain.kinds import Status
from autometa.domain.types import Address
from autometa.store import Store

router = APIRouter(prefix="/api/escrow", tags=["workflow"])
MAX_ACTIVE_COUNTED = 500  # an owner with more active workflows than this gets a conservative runway


def _active_per_run(store: Store, owner: str) -> tuple[int, int]:
    """(number of active workflows, sum of their per-run worst cases) from the indexed store."""
    page = store.workflows.list_by_owner(owner, 0, MAX_ACTIVE_COUNTED)
    states = [state_of(row) for row in page.items]
    active = [s for s in states if s.status is Status.ACTIVE]
    return len(active), sum(per_run_cost(s) for s in active)


@router.get(
    "/{address}", response_model=EscrowAccountOut, responses={422: {"model": ErrorOut}, 503: {"model": ErrorOut}}
)
async def escrow_account(
    address: Annotated[Address, Path(description="the owner (checksummed or all-lowercase)")],
    store: StoreDep,
    chain: ChainDep,
) -> EscrowAccountOut:
    """Balance from the chain (authoritative), else the indexed ledger; runway = how many more runs
    of every active workflow at its fee cap the balance pays for."""
    active, per_run = await run_in_threadpool(_active_per_run, store, address)
    deposit: DepositCall | None = None
    try:
        info = await chain.info()
        balance, source = await chain.balance_of(address), "chain"
        data = (await chain.core()).encode_abi("deposit", args=[])
        deposit = DepositCall(to=info.contract, data=data, chain_id=info.chain_id)
    except Exception as exc:
        if dependency_failure(exc) is None and not isinstance(exc, Unavailable):
            raise
        chain_id = await run_in_threadpool(_any_chain_id, store, address)
        if chain_id is None:
            raise Unavailable(
                "chain",
                "the chain node is unreachable and the store knows no workflow of this "
                "owner to read the escrow ledger for",
            ) from None
        balance, source = await run_in_threadpool(store.escrow.balance, chain_id, address), "store"
    runway = balance // per_run if per_run else None
    return EscrowAccountOut(
        address=address,
        balance_wei=balance,
        source=source,  # type: ignore[arg-type]
        active_workflows=active,  # type: ignore[arg-type]
        per_run_wei=per_run,
        runway_runs=runway,
        deposit=deposit,
    )


def _any_chain_id(store: Store, owner: str) -> int | None:
    page = store.workflows.list_by_owner(owner, 0, 1)
    return page.items[0].chain_id if page.items else None
