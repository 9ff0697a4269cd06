"""The chains this API serves: what the `chain` parameter of the other routes takes, and what the
dashboard matches the wallet's chain against."""

from __future__ import annotations

from fastapi import APIRouter

from autometa.api.deps import ServicesDep
from autometa.api.schemas import ChainOut

router = APIRouter(prefix="/api", tags=["chains"])


@router.get("/chains", response_model=list[ChainOut])
async def chains(services: ServicesDep) -> list[ChainOut]:
    """Every served chain in configuration order; the first is the default (no `chain` given).
    The contract is the configured one, or the node's once a request resolved it (None before)."""
    out = []
    for i, served in enumerate(services.served):
        found = served.gateway.resolved
        contract = served.config.contract or (found.contract if found is not None else None)
        out.append(
            ChainOut(
                name=served.label,
                chain_id=served.config.id,
                network=served.config.preset.name if served.config.preset is not None else None,
                contract=contract,
                default=i == 0,
                relayer=served.relayer is not None,
            )
        )
    return out
