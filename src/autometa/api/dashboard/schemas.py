"""Models of the dashboard's own endpoints (escrow account, form validation, the live feed).

Kept beside the dashboard rather than in `api/schemas.py`: the Python client does not use them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from autometa.api.schemas import ExecutionOut
from autometa.domain.types import Wei


class DepositCall(BaseModel):
    """The transaction a wallet sends to deposit (eth_sendTransaction with `value` added)."""

    to: str
    data: str
    chain_id: int


class EscrowAccountOut(BaseModel):
    """An owner's escrow and how long it lasts at the active workflows' worst case."""

    address: str
    balance_wei: Wei
    source: Literal["chain", "store"]
    active_workflows: int
    per_run_wei: Wei = Field(description="sum over active workflows of the most one run can take")
    runway_runs: int | None = Field(description="balance // per_run_wei; none without active workflows")
    deposit: DepositCall | None = Field(default=None, description="how to deposit (none when the chain is down)")


class TriggerKindOut(BaseModel):
    """A trigger kind users may create (from the registry); its form fragment is
    `/static/triggers/<name>.js`."""

    name: str
    code: int = Field(description="the contract's triggerKind number (trigger_type)")
    label: str
    fields: list[str] = Field(description="trigger_data's fields")


class FieldError(BaseModel):
    field: str
    message: str


class ValidationOut(BaseModel):
    """What the create form shows while the user types: every problem, each on its field."""

    ok: bool
    errors: list[FieldError]
    spec: dict[str, object] | None = Field(default=None, description="the spec with its defaults resolved")


class ExecutionEventOut(ExecutionOut):
    """One live-feed event: an execution row as `GET /api/executions` shows it, plus the price."""

    price_usd: str | None = Field(default=None, description="the price the run was checked against (USD)")
