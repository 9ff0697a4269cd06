"""What the sync and async clients share: each endpoint as a request description, the decoding
of answers into the API's own models, and errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

import httpx
from eth_account.signers.local import LocalAccount
from pydantic import BaseModel, TypeAdapter

from autometa.api.schemas import (
    AssetsOut,
    ChainOut,
    ContractsOut,
    ExecutionPageOut,
    HealthOut,
    PreparedIntent,
    PriceOut,
    RelayedTxOut,
    StatsOut,
    StatusChangedOut,
    StatusChangeRequest,
    StatusPrepareRequest,
    WorkersOut,
    WorkflowCreateBody,
    WorkflowCreatedOut,
    WorkflowCreateRequest,
    WorkflowListOut,
    WorkflowOut,
)
from autometa.domain.eip712 import sign_typed_data

M = TypeVar("M")
Op = Literal["pause", "resume", "cancel"]
Chain = str | int | None  # a chain's name in the API (GET /api/chains) or its id; None: the API's default


class ApiClientError(Exception):
    """A 4xx/5xx answer: `status`, the API's `error` code, `message` and the offending `field`."""

    def __init__(self, status: int, error: str, message: str, field: str | None = None, details: Any = None):
        super().__init__(f"{status} {error}: {message}")
        self.status, self.error, self.message, self.field, self.details = status, error, message, field, details


class RelayPending(ApiClientError):
    """The relayer sent the transaction (202) and it was not mined within the client's
    `follow_timeout`: not a failure. `pending.tx_hash` / `pending.status_url` tell where to look."""

    def __init__(self, pending: RelayedTxOut, waited_s: float) -> None:
        super().__init__(
            202,
            "pending",
            f"sent as {pending.tx_hash}, not mined after {waited_s:.0f} s; poll {pending.status_url}",
            details=pending.model_dump(mode="json"),
        )
        self.pending = pending


def settled(model: type[M], status: RelayedTxOut) -> M | None:
    """The endpoint's 200 model from a relayed transaction's status once mined; None while
    pending; an `ApiClientError` when reverted or dropped (nothing was created or changed)."""
    if status.state == "pending":
        return None
    if status.state != "mined":
        raise ApiClientError(409, status.state, status.message, details=status.model_dump(mode="json"))
    if model is WorkflowCreatedOut:
        return WorkflowCreatedOut(
            workflow_id=status.workflow_id or 0,
            tx_hash=status.tx_hash,  # type: ignore[return-value]
            block_number=status.block_number or 0,
            relayer=status.relayer,
            relayer_fee_wei=status.relayer_fee_wei or 0,
        )
    return StatusChangedOut(
        workflow_id=status.workflow_id or 0,
        status=status.workflow_status or "",  # type: ignore[return-value]
        tx_hash=status.tx_hash,
        block_number=status.block_number or 0,
        relayer=status.relayer,
        relayer_fee_wei=status.relayer_fee_wei or 0,
    )


@dataclass(frozen=True)
class Call(Generic[M]):
    method: str
    path: str
    model: type[M] | None  # None: the raw text
    json: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    relayed: bool = False  # may answer 202 + a status URL to follow until mined


def submitted(call: Call[Any], response: httpx.Response) -> RelayedTxOut | None:
    """The pending transaction of a relayed call's 202 answer (None for any other answer)."""
    if call.relayed and response.status_code == 202:
        return RelayedTxOut.model_validate_json(response.content)
    return None


def decode(call: Call[M], response: httpx.Response) -> M:
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        message = str(body.get("message", response.text[:200]))
        error = str(body.get("error", "http_error"))
        raise ApiClientError(response.status_code, error, message, body.get("field"), body.get("details"))
    if call.model is None:
        return response.text  # type: ignore[return-value]
    if isinstance(call.model, type) and issubclass(call.model, BaseModel):
        return call.model.model_validate_json(response.content)  # type: ignore[return-value]
    return TypeAdapter(call.model).validate_json(response.content)  # a list of models (GET /api/chains)


def _body(model: type[BaseModel], value: BaseModel | dict[str, Any]) -> Any:
    """Validate locally (same model as the server) and send the JSON form."""
    obj = value if isinstance(value, model) else model.model_validate(value)
    return obj.model_dump(mode="json", exclude_none=True)


def _chain(chain: Chain) -> dict[str, Any]:
    return {"chain": str(chain)} if chain is not None else {}


def _params(**values: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        out[key] = value.isoformat() if isinstance(value, datetime) else value
    return out


class Endpoints:
    """One method per endpoint, returning the `Call` to make."""

    @staticmethod
    def healthz() -> Call[HealthOut]:
        return Call("GET", "/api/utils/healthz", HealthOut)

    @staticmethod
    def contracts() -> Call[ContractsOut]:
        return Call("GET", "/api/utils/contracts", ContractsOut)

    @staticmethod
    def assets() -> Call[AssetsOut]:
        return Call("GET", "/api/price/assets", AssetsOut)

    @staticmethod
    def price(symbol: str) -> Call[PriceOut]:
        return Call("GET", f"/api/price/{symbol}", PriceOut)

    @staticmethod
    def chains() -> Call[list[ChainOut]]:
        return Call("GET", "/api/chains", list[ChainOut])  # type: ignore[arg-type]

    @staticmethod
    def prepare_create(body: WorkflowCreateBody | dict[str, Any], chain: Chain = None) -> Call[PreparedIntent]:
        return Call(
            "POST", "/api/workflow/prepare", PreparedIntent, _body(WorkflowCreateBody, body), params=_chain(chain)
        )

    @staticmethod
    def create(body: WorkflowCreateRequest | dict[str, Any], chain: Chain = None) -> Call[WorkflowCreatedOut]:
        return Call(
            "POST",
            "/api/workflow/create",
            WorkflowCreatedOut,
            _body(WorkflowCreateRequest, body),
            params=_chain(chain),
            relayed=True,
        )

    @staticmethod
    def prepare_status(workflow_id: int, op: Op, user_address: str, chain: Chain = None) -> Call[PreparedIntent]:
        body = _body(StatusPrepareRequest, {"user_address": user_address})
        return Call("POST", f"/api/workflow/{workflow_id}/{op}/prepare", PreparedIntent, body, params=_chain(chain))

    @staticmethod
    def change_status(
        workflow_id: int, op: Op, body: StatusChangeRequest | dict[str, Any], chain: Chain = None
    ) -> Call[StatusChangedOut]:
        return Call(
            "POST",
            f"/api/workflow/{workflow_id}/{op}",
            StatusChangedOut,
            _body(StatusChangeRequest, body),
            params=_chain(chain),
            relayed=True,
        )

    @staticmethod
    def relayed_tx(tx_hash: str) -> Call[RelayedTxOut]:
        return Call("GET", f"/api/workflow/tx/{tx_hash}", RelayedTxOut)

    @staticmethod
    def workflow(workflow_id: int, chain: Chain = None) -> Call[WorkflowOut]:
        return Call("GET", f"/api/workflow/{workflow_id}", WorkflowOut, params=_chain(chain))

    @staticmethod
    def user_workflows(address: str, offset: int = 0, limit: int = 50, chain: Chain = None) -> Call[WorkflowListOut]:
        """Without `chain`: the owner's workflows on every chain the API serves."""
        params = _params(offset=offset, limit=limit) | _chain(chain)
        return Call("GET", f"/api/workflow/user/{address}", WorkflowListOut, params=params)

    @staticmethod
    def executions(
        *,
        chain: Chain = None,
        workflow_id: int | None = None,
        user: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> Call[ExecutionPageOut]:
        params = _params(
            workflow_id=workflow_id, user=user, status=status, since=since, until=until, offset=offset, limit=limit
        )
        return Call("GET", "/api/executions", ExecutionPageOut, params=params | _chain(chain))

    @staticmethod
    def stats(
        *,
        chain: Chain = None,
        user: str | None = None,
        workflow_id: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Call[StatsOut]:
        params = _params(user=user, workflow_id=workflow_id, since=since, until=until) | _chain(chain)
        return Call("GET", "/api/stats", StatsOut, params=params)

    @staticmethod
    def workers(within_s: float = 60) -> Call[WorkersOut]:
        return Call("GET", "/api/workers", WorkersOut, params={"within_s": within_s})

    @staticmethod
    def metrics() -> Call[str]:
        return Call("GET", "/metrics", None)


def owned_by(body: WorkflowCreateBody | dict[str, Any], account: LocalAccount) -> WorkflowCreateBody | dict[str, Any]:
    """`body` with `user_address` = the signer's address (the signer owns what it signs for);
    a body naming someone else is refused here rather than with a signature error later."""
    named: Any
    if isinstance(body, WorkflowCreateBody):
        named = body.user_address
    else:
        named = body.get("user_address")
        if named is None:
            return {**body, "user_address": account.address}
    if str(named).lower() != account.address.lower():
        raise ValueError(f"user_address {named} is not the signer {account.address}")
    return body


def signed_create(body: WorkflowCreateBody | dict[str, Any], prepared: PreparedIntent, account: LocalAccount) -> Any:
    """The create request for `body`, signed by `account` over the prepared terms."""
    plain = _body(WorkflowCreateBody, body)
    return {**plain, **signed_terms(prepared, account)}


def signed_terms(prepared: PreparedIntent, account: LocalAccount) -> dict[str, Any]:
    return {
        "signature": sign_typed_data(account, prepared.typed_data),
        "nonce": prepared.nonce,
        "deadline": prepared.deadline,
        "max_relayer_fee_wei": str(prepared.max_relayer_fee_wei),
    }
