"""An owner's escrow account: balance, runway at the active workflows' worst case, and the call a
wallet sends to deposit. The workflow routes show escrow per workflow only once one exists; a new
user needs the balance (and a way to fund it) before creating anything."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from starlette.concurrency import run_in_threadpool

from autometa.api.dashboard.schemas import DepositCall, EscrowAccountOut
from autometa.api.deps import ServedDep, StoreDep
from autometa.api.errors import Unavailable, dependency_failure
from autometa.api.schemas import ErrorOut
from autometa.api.views import per_run_cost, state_of
from autometa.domain.kinds import Status
from autometa.domain.types import Address
from autometa.store import Store

router = APIRouter(prefix="/api/escrow", tags=["workflow"])
MAX_ACTIVE_COUNTED = 500  # an owner with more active workflows than this gets a conservative runway


def _active_per_run(store: Store, owner: str, key: tuple[int, str] | None) -> tuple[int, int]:
    """(number of active workflows, sum of their per-run worst cases) in one deployment
    (chain id, contract), from the indexed store; none known without ``key``."""
    if key is None:
        return 0, 0
    page = store.workflows.list_by_owner(owner, 0, MAX_ACTIVE_COUNTED, chain_id=key[0], contract=key[1])
    states = [state_of(row) for row in page.items]
    active = [s for s in states if s.status is Status.ACTIVE]
    return len(active), sum(per_run_cost(s) for s in active)


@router.get("/{address}", response_model=EscrowAccountOut, responses={c: {"model": ErrorOut} for c in (404, 422, 503)})
async def escrow_account(
    address: Annotated[Address, Path(description="the owner (checksummed or all-lowercase)")],
    store: StoreDep,
    served: ServedDep,
) -> EscrowAccountOut:
    """The owner's escrow on the chain `chain` (default: the first served): balance from the
    chain (authoritative), else the indexed ledger; runway = how many more runs of every active
    workflow at its fee cap the balance pays for."""
    chain = served.gateway
    try:
        key: tuple[int, str] | None = await served.key()
    except Exception as exc:
        if dependency_failure(exc) is None and not isinstance(exc, Unavailable):
            raise
        key = None
    active, per_run = await run_in_threadpool(_active_per_run, store, address, key)
    deposit: DepositCall | None = None
    try:
        info = await chain.info()
        balance, source = await chain.balance_of(address), "chain"
        data = (await chain.core()).encode_abi("deposit", args=[])
        deposit = DepositCall(to=info.contract, data=data, chain_id=info.chain_id)
    except Exception as exc:
        if dependency_failure(exc) is None and not isinstance(exc, Unavailable):
            raise
        known = key is not None and await run_in_threadpool(
            lambda: store.escrow.list(key[0], key[1], account=address, limit=1).total > 0
        )
        if key is None or not known:
            raise Unavailable(
                "chain",
                f"the node of chain {served.label} is unreachable and the indexed ledger holds no escrow "
                "movement of this owner there to read the balance from",
            ) from None
        balance, source = await run_in_threadpool(store.escrow.balance, key[0], key[1], address), "store"
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
