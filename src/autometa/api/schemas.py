"""Request and response models of the HTTP API, shared by the server and `autometa.client`.

No FastAPI import here: the client imports this module, and a client install should not need
the server's stack. Wei amounts travel as decimal strings (they exceed what JSON numbers hold).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from autometa.domain.kinds import UINT256_MAX
from autometa.domain.types import Address, Wei
from autometa.domain.workflow import WorkflowSpec

MAX_SIGNATURE_BYTES = 2048  # ECDSA is 65; ERC-1271 wallets may send more, never this much
MAX_WORKFLOW_ID = 2**63 - 1  # the store's BIGINT key


def _check_signature(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) % 2:
        raise ValueError("must be 0x-prefixed hex with an even number of digits")
    try:
        raw = bytes.fromhex(value[2:])
    except ValueError:
        raise ValueError("must be 0x-prefixed hex") from None
    if not 1 <= len(raw) <= MAX_SIGNATURE_BYTES:
        raise ValueError(f"must be 1-{MAX_SIGNATURE_BYTES} bytes (an ECDSA signature is 65)")
    return "0x" + raw.hex()


Signature = Annotated[str, BeforeValidator(_check_signature)]
Uint256Int = Annotated[int, BeforeValidator(lambda v: _uint(v))]

SEED_CREATE_BODY: dict[str, Any] = {
    "user_address": "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
    "trigger_type": 2,
    "trigger_data": {"token": "ethereum", "comparator": 0, "price_usd": 3200},
    "action_type": 0,
    "action_data": {"to": "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65", "amount_wei": "1000000000000000000"},
    "max_fee_per_run_wei": "10000000000000000",
}
_SIG_EXAMPLE = "0x" + "ab" * 65


def _uint(value: Any) -> int:
    from autometa.domain.types import check_uint256

    return check_uint256(value)


def _refuse_booleans(value: Any, path: str = "") -> Any:
    """No field of a request is a boolean, but pydantic's lax mode reads `true` as 1 for an
    integer (`"max_runs": true`, `"comparator": true`): refuse them, naming where."""
    if isinstance(value, bool):
        # `path` (within the field) is appended to the error's field by api.errors.validation_details
        raise PydanticCustomError("bool_type", "must be a number or a string, not a boolean", {"path": path})
    if isinstance(value, dict):
        for key, item in value.items():
            _refuse_booleans(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _refuse_booleans(item, f"{path}[{i}]" if path else f"[{i}]")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------- requests


class WorkflowCreateBody(WorkflowSpec):
    """The seed's create body: the owner plus the workflow."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"examples": [SEED_CREATE_BODY]})

    user_address: Address = Field(description="the owner, whose escrow pays for the workflow")

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans(cls, value: Any) -> Any:
        return _refuse_booleans(value)

    def spec(self) -> WorkflowSpec:
        return WorkflowSpec.model_validate({name: getattr(self, name) for name in WorkflowSpec.model_fields})


class SignedIntent(BaseModel):
    """What a signature authorises, echoed back from the prepared typed data."""

    signature: Signature | None = Field(default=None, description="eth_signTypedData_v4 of the prepared typed_data")
    nonce: Uint256Int | None = Field(default=None, description="the typed data's nonce")
    deadline: Uint256Int | None = Field(default=None, description="the typed data's deadline (unix seconds)")
    max_relayer_fee_wei: Wei | None = Field(default=None, description="the typed data's maxRelayerFee")


class WorkflowCreateRequest(WorkflowCreateBody, SignedIntent):
    """The create body plus the owner's signature over the prepared `CreateWorkflow` data."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    **SEED_CREATE_BODY,
                    "signature": _SIG_EXAMPLE,
                    "nonce": 0,
                    "deadline": 1893456000,
                    "max_relayer_fee_wei": "1000000000000000",
                }
            ]
        },
    )


class StatusPrepareRequest(_Model):
    """Who asks to pause / resume / cancel (the workflow's owner)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"user_address": SEED_CREATE_BODY["user_address"]}]}
    )

    user_address: Address


class StatusChangeRequest(StatusPrepareRequest, SignedIntent):
    """The owner's signature over the prepared Pause/Resume/CancelWorkflow data."""


# ---------------------------------------------------------------------------- responses


class ErrorOut(BaseModel):
    """Every 4xx/5xx body: a stable code, a sentence, and the offending field where there is one."""

    error: str = Field(examples=["validation_error"])
    message: str
    field: str | None = None
    details: list[dict[str, Any]] | dict[str, Any] | None = None


class HealthComponent(BaseModel):
    ok: bool
    detail: str | None = None


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    chain_id: int | None = None
    latest_block: int | None = None
    contract: str | None = None
    chain: HealthComponent
    database: HealthComponent
    redis: HealthComponent


class ContractsOut(BaseModel):
    """The seed's three contract names; all are the one Autometa contract."""

    WorkflowRegistry: str
    ActionExecutor: str
    FeeEscrow: str
    chain_id: int


class PendingChangeOut(BaseModel):
    """One admin change waiting in the contract's timelock."""

    id: int
    kind: str  # executor | feed | premium | max_tip | chain_module
    description: str
    eta: int  # unix time from which the admin may apply it
    ready: bool
    seconds_left: int
    executor: str | None = None
    asset: str | None = None
    feed: str | None = None
    max_age_s: int | None = None
    premium_bps: int | None = None
    max_tip_wei: int | None = None
    chain_module: str | None = None


class AdminPendingOut(BaseModel):
    """Queued admin changes and the deployment's fee parameters, so owners see changes coming."""

    timelock_seconds: int
    premium_bps: int
    max_tip_wei: int
    changes: list[PendingChangeOut]


class AssetsOut(BaseModel):
    assets: list[str]


class PriceOut(BaseModel):
    """What `BackendClient.get_price` reads (the seed's shape)."""

    symbol: str = Field(examples=["ethereum"])
    usd: float = Field(examples=[3198.15])
    source: str = Field(examples=["backend-redis"])
    age_s: float = Field(examples=[4.2])
    fetched_at: float


class PreparedIntent(BaseModel):
    """EIP-712 typed data to sign, and what it commits to."""

    typed_data: dict[str, Any]
    nonce: int
    deadline: int
    max_relayer_fee_wei: Wei
    chain_id: int
    contract: str
    relayer: str


class WorkflowCreatedOut(BaseModel):
    workflow_id: int
    tx_hash: str
    block_number: int
    relayer: str
    relayer_fee_wei: Wei = 0


class StatusChangedOut(BaseModel):
    workflow_id: int
    status: str
    tx_hash: str
    block_number: int
    relayer: str
    relayer_fee_wei: Wei = 0


class EscrowOut(BaseModel):
    balance_wei: Wei
    per_run_wei: Wei = Field(description="most one run can take: max fee per run + native amount")
    runway_runs: int = Field(description="runs the balance still pays for: balance // per_run")
    source: Literal["chain", "store"]


class ChainOut(BaseModel):
    """A chain this API serves."""

    name: str = Field(description="what the `chain` parameter takes (a chain id works too)")
    chain_id: int
    network: str | None = Field(description="the preset it matches, if any")
    contract: str | None = Field(description="the Autometa contract, when configured or already resolved")
    default: bool = Field(description="the chain a request without `chain` means")
    relayer: bool = Field(description="whether signed intents can be relayed on it")


class WorkflowOut(BaseModel):
    id: int
    chain_id: int | None = Field(default=None, description="the chain it lives on")
    chain: str | None = Field(default=None, description="that chain's name in this API (its `chain` parameter)")
    contract: str | None = Field(default=None, description="the Autometa contract it belongs to (when indexed)")
    owner: str
    status: str
    status_code: int
    spec: dict[str, Any]
    run_count: int
    max_runs: int
    runs_left: int
    failures: int
    last_run: int | None
    next_due_time: int | None
    created_block: int | None = None
    created_tx: str | None = None
    escrow: EscrowOut | None = None
    indexed: bool = Field(description="false when read from the chain before the indexer saw it")


class WorkflowListOut(BaseModel):
    owner: str
    workflows: list[WorkflowOut]
    total: int
    offset: int
    limit: int


class ExecutionOut(BaseModel):
    id: int
    chain_id: int | None = Field(default=None, description="the chain the run is on")
    workflow_id: int
    run_index: int
    status: str
    skip_reason: str | None = None
    tx_hash: str | None = None
    block_number: int | None = None
    gas_used: int | None = None
    gas_price_wei: Wei | None = None
    fee_wei: Wei | None = None
    price_source: str | None = None
    executor: str | None = None
    revert_reason: str | None = None
    triggered_at: datetime | None = None
    included_at: datetime | None = None
    latency_s: float | None = None
    occurred_at: datetime


class ExecutionPageOut(BaseModel):
    items: list[ExecutionOut]
    total: int
    offset: int
    limit: int


class StatsOut(BaseModel):
    scope: Literal["global", "user", "workflow"]
    user: str | None = None
    workflow_id: int | None = None
    total: int
    counts: dict[str, int]
    success_rate: float | None
    total_gas_used: int
    avg_gas_per_run: float | None
    total_fees_wei: Wei
    avg_latency_s: float | None = Field(description="trigger-to-inclusion latency")
    p50_latency_s: float | None
    p95_latency_s: float | None
    workflows: int
    active_workflows: int


class WorkerOut(BaseModel):
    worker_id: str
    role: str
    address: str | None
    version: str | None
    host: str | None
    pid: int | None
    started_at: datetime
    last_seen: datetime
    age_s: float
    chain_id: int | None = Field(default=None, description="the chain this process works on")
    active: bool | None = Field(default=None, description="schedulers: holds the lease (the one that schedules)")


class WorkersOut(BaseModel):
    within_s: float
    executors: int
    schedulers: int = Field(description="scheduler processes alive: one active, the others standing by")
    scheduler_active: bool = Field(description="a scheduler holds the lease")
    lease_holder: str | None = Field(description="the worker_id of the scheduler holding the lease")
    workers: list[WorkerOut]


UINT256 = UINT256_MAX


RELAYED_STATES = ("pending", "mined", "reverted", "dropped")


class RelayedTxOut(BaseModel):
    """A transaction the relayer has sent. The create / pause / resume / cancel endpoints answer
    it with 202 when the transaction is not mined within the wait (or the node could not be asked):
    the intent was broadcast, it is not failed. Poll `status_url` until `state` is final."""

    state: Literal["pending", "mined", "reverted", "dropped"] = Field(
        description="pending: broadcast, not mined yet; mined: done (see the result fields); reverted: mined "
        "and refused by the contract (nothing created or changed); dropped: its nonce was used by another "
        "transaction"
    )
    kind: Literal["create", "pause", "resume", "cancel"]
    tx_hash: str = Field(
        description="the transaction to follow (the mined one once mined: a fee bump may replace the first one)"
    )
    status_url: str = Field(description="GET it for the current state")
    owner: str | None = None
    relayer: str
    workflow_id: int | None = Field(default=None, description="once mined")
    workflow_status: str | None = Field(default=None, description="status ops, once mined")
    block_number: int | None = None
    relayer_fee_wei: Wei | None = None
    message: str = ""
