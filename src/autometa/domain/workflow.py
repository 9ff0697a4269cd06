"""Typed workflows in the seed's JSON shape (`trigger_type` + `trigger_data`, `action_type` +
`action_data`) and their exact ABI encoding as the contract's `WorkflowSpec` tuple."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, WithJsonSchema, model_validator

from autometa.domain.kinds import (
    MAX_CALLDATA,
    MAX_GAS_LIMIT,
    MIN_GAS_LIMIT,
    UINT32_MAX,
    UINT80_MAX,
    UINT96_MAX,
    ActionType,
)
from autometa.domain.names import ACTION_NAMES, ActionTypeField, by_name
from autometa.domain.triggers import (
    KindData,
    TriggerKind,
    TriggerSlots,
    UnknownTriggerKind,
    all_kinds,
    creatable_kinds,
    get_kind,
    parse_code,
)
from autometa.domain.triggers.interval import IntervalTriggerData
from autometa.domain.triggers.price import PriceTriggerData
from autometa.domain.triggers.state import StateTriggerData
from autometa.domain.triggers.time import TimeTriggerData
from autometa.domain.triggers.values import UnixTime
from autometa.domain.types import Address, HexBytes, Wei

__all__ = ["IntervalTriggerData", "PriceTriggerData", "StateTriggerData", "TimeTriggerData", "UnixTime"]

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
TriggerCode = Annotated[
    int,
    BeforeValidator(parse_code),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "enum": sorted(k.code for k in creatable_kinds())},
                {"type": "string", "enum": sorted(k.name for k in creatable_kinds())},
            ],
            "description": "the trigger kind, by number or name: "
            + ", ".join(f"{k.code} = {k.name}" for k in creatable_kinds()),
        }
    ),
]

DEFAULT_GAS_LIMIT = {
    ActionType.NATIVE_TRANSFER: 30_000,
    ActionType.ERC20_TRANSFER: 80_000,
    ActionType.CONTRACT_CALL: 200_000,
}
DEFAULT_MAX_FEE_PER_RUN_WEI = 10**16


class NativeTransferData(KindData):
    """Send `amount_wei` of the native coin from the owner's escrow to `to`."""

    to: Address = Field(examples=["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"])
    amount_wei: Wei = Field(examples=["1000000000000000000"])

    @model_validator(mode="after")
    def _check(self) -> NativeTransferData:
        if not 0 < self.amount_wei <= UINT96_MAX:
            raise ValueError("amount_wei must be between 1 and 2**96-1")
        return self


class Erc20TransferData(KindData):
    """`token.transferFrom(owner, to, amount)` through the allowance the owner gave the contract."""

    token: Address
    to: Address
    amount: Wei

    @model_validator(mode="after")
    def _check(self) -> Erc20TransferData:
        if self.amount == 0:
            raise ValueError("amount must be positive")
        return self


class ContractCallData(KindData):
    """Call `target` with `data` (and `value_wei` from the owner's escrow) from the owner's proxy."""

    target: Address
    data: HexBytes = "0x"
    value_wei: Wei = 0

    @model_validator(mode="after")
    def _check(self) -> ContractCallData:
        if self.value_wei > UINT96_MAX:
            raise ValueError("value_wei must be at most 2**96-1")
        if (len(self.data) - 2) // 2 > MAX_CALLDATA:
            raise ValueError(f"data must be at most {MAX_CALLDATA} bytes")
        return self


def _tag(value: Any) -> str | None:
    """Which data model a trigger_data/action_data value is (see WorkflowSpec._tag_data)."""
    if isinstance(value, dict):
        tag = value.get("_kind")
        return tag if isinstance(tag, str) else None
    return _TAG_OF.get(type(value))


_TAG_OF: dict[type, str] = {
    **{k.data_model: k.name for k in all_kinds()},
    NativeTransferData: "native",
    Erc20TransferData: "erc20",
    ContractCallData: "call",
}

if TYPE_CHECKING:
    TriggerData = KindData
else:  # the union of every registered kind's data model, tagged by the kind's name
    TriggerData = Annotated[
        Union[tuple(Annotated[k.data_model, Tag(k.name)] for k in all_kinds())],  # noqa: UP007
        Discriminator(_tag),
    ]
ActionData = Annotated[
    Annotated[NativeTransferData, Tag("native")]
    | Annotated[Erc20TransferData, Tag("erc20")]
    | Annotated[ContractCallData, Tag("call")],
    Discriminator(_tag),
]
_ACTION_TAGS = {
    ActionType.NATIVE_TRANSFER: "native",
    ActionType.ERC20_TRANSFER: "erc20",
    ActionType.CONTRACT_CALL: "call",
}


class SpecTuple(NamedTuple):
    """The contract's `WorkflowSpec` struct, by its field names (AutometaTypes.sol), in its order:
    what web3 encodes for a call and what the EIP-712 message lists."""

    triggerKind: int
    comparator: int
    startTime: int
    endTime: int
    interval: int
    priceUsd: int
    asset: bytes
    actionKind: int
    target: str
    token: str
    amount: int
    data: bytes
    maxRuns: int
    gasLimit: int
    maxFeePerRun: int
    triggerData: bytes


class WorkflowSpec(BaseModel):
    """What a user asks for: one trigger, one action and the limits of what it may cost."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trigger_type: TriggerCode = Field(examples=[2])
    trigger_data: TriggerData
    action_type: ActionTypeField = Field(examples=[0])
    action_data: ActionData
    max_runs: int | None = Field(
        default=None,
        ge=1,
        le=UINT32_MAX,
        description="default: 1 for time and price triggers, unlimited for interval",
    )
    gas_limit: int | None = Field(default=None, ge=MIN_GAS_LIMIT, le=MAX_GAS_LIMIT, description="gas the action gets")
    max_fee_per_run_wei: Wei | None = Field(default=None, description="the most one run may charge (wei)")

    @model_validator(mode="before")
    @classmethod
    def _tag_data(cls, data: Any) -> Any:
        # Route trigger_data/action_data to the model their *_type names, so errors name the field.
        if isinstance(data, dict):
            data = dict(data)
            kind, payload = data.get("trigger_type"), data.get("trigger_data")
            if isinstance(payload, dict):
                with contextlib.suppress(UnknownTriggerKind):  # the trigger_type field reports it
                    data["trigger_data"] = {**payload, "_kind": get_kind(kind).name}
            kind, payload = data.get("action_type"), data.get("action_data")
            if isinstance(payload, dict) and not isinstance(kind, bool):
                with contextlib.suppress(ValueError, TypeError, KeyError):  # the action_type field reports it
                    data["action_data"] = {**payload, "_kind": _ACTION_TAGS[ActionType(by_name(ACTION_NAMES)(kind))]}
        return data

    @model_validator(mode="after")
    def _check(self) -> WorkflowSpec:
        kind = self.trigger_kind
        if kind.name != _tag(self.trigger_data):
            raise ValueError("trigger_data does not match trigger_type")
        if kind.needs_contract is not None:
            raise ValueError(f"{kind.name.upper()} triggers need {kind.needs_contract}")
        if _ACTION_TAGS[self.action_type] != _tag(self.action_data):
            raise ValueError("action_data does not match action_type")
        if kind.single_run and self.max_runs not in (None, 1):
            raise ValueError(f"max_runs must be 1 for a {kind.name} trigger")
        if self.max_fee_per_run_wei is not None and not 0 < self.max_fee_per_run_wei <= UINT80_MAX:
            raise ValueError("max_fee_per_run_wei must be between 1 and 2**80-1")
        return self

    @property
    def trigger_kind(self) -> TriggerKind[Any]:
        """The registered kind of this spec's trigger."""
        return get_kind(self.trigger_type)

    # -------------------------------------------------------------- resolved limits

    @property
    def resolved_max_runs(self) -> int:
        if self.max_runs is not None:
            return self.max_runs
        return UINT32_MAX if self.trigger_kind.unlimited_runs else 1

    @property
    def resolved_gas_limit(self) -> int:
        return self.gas_limit if self.gas_limit is not None else DEFAULT_GAS_LIMIT[self.action_type]

    @property
    def resolved_max_fee(self) -> int:
        return self.max_fee_per_run_wei if self.max_fee_per_run_wei is not None else DEFAULT_MAX_FEE_PER_RUN_WEI

    def resolved(self) -> WorkflowSpec:
        """The same spec with every default made explicit (what the contract stores)."""
        return self.model_copy(
            update={
                "max_runs": self.resolved_max_runs,
                "gas_limit": self.resolved_gas_limit,
                "max_fee_per_run_wei": self.resolved_max_fee,
            }
        )

    def end_time(self) -> int | None:
        return self.trigger_kind.end_time(self.trigger_data)

    def check_times(self, now: int) -> None:
        """Refuse times that are already past where that makes the workflow pointless."""
        self.trigger_kind.check_times(self.trigger_data, now)
        end = self.end_time()
        if end is not None and end <= now:
            raise ValueError("the trigger's end time must be in the future")

    # -------------------------------------------------------------- ABI

    def to_abi(self) -> SpecTuple:
        """The contract's `WorkflowSpec` tuple, field for field (named as the struct's fields)."""
        t, a = self.trigger_data, self.action_data
        tr = self.trigger_kind.encode(t)
        token, data = ZERO_ADDRESS, b""
        if isinstance(a, NativeTransferData):
            target, amount = a.to, a.amount_wei
        elif isinstance(a, Erc20TransferData):
            target, token, amount = a.to, a.token, a.amount
        else:
            target, amount, data = a.target, a.value_wei, bytes.fromhex(a.data[2:])
        return SpecTuple(
            triggerKind=int(self.trigger_type),
            comparator=tr.comparator,
            startTime=tr.start_time,
            endTime=tr.end_time,
            interval=tr.interval,
            priceUsd=tr.price_usd,
            asset=tr.asset,
            actionKind=int(self.action_type),
            target=target,
            token=token,
            amount=amount,
            data=data,
            maxRuns=self.resolved_max_runs,
            gasLimit=self.resolved_gas_limit,
            maxFeePerRun=self.resolved_max_fee,
            triggerData=tr.trigger_data,
        )

    @classmethod
    def from_abi(cls, spec: Any) -> WorkflowSpec:
        """Decode the contract's tuple (or a web3 AttributeDict / dict with the struct's names)."""
        if isinstance(spec, dict) or hasattr(spec, "keys"):
            spec = tuple(spec[n] for n in SpecTuple._fields)
        if len(spec) != len(SpecTuple._fields):
            raise ValueError(f"a WorkflowSpec has {len(SpecTuple._fields)} fields, got {len(spec)}")
        t = SpecTuple(*spec)
        tk = t.triggerKind
        slots = TriggerSlots(
            t.comparator, t.startTime, t.endTime, t.interval, t.priceUsd, bytes(t.asset), bytes(t.triggerData)
        )
        ak, target, token, amount, data = t.actionKind, t.target, t.token, t.amount, t.data
        max_runs, gas_limit, max_fee = t.maxRuns, t.gasLimit, t.maxFeePerRun
        trigger = get_kind(int(tk)).decode(slots)  # an unknown number raises UnknownTriggerKind
        action: dict[str, Any]
        if ak == ActionType.NATIVE_TRANSFER:
            action = {"to": target, "amount_wei": amount}
        elif ak == ActionType.ERC20_TRANSFER:
            action = {"token": token, "to": target, "amount": amount}
        else:
            action = {"target": target, "data": "0x" + bytes(data).hex(), "value_wei": amount}
        return cls.model_validate(
            {
                "trigger_type": tk,
                "trigger_data": trigger,
                "action_type": ak,
                "action_data": action,
                "max_runs": max_runs,
                "gas_limit": gas_limit,
                "max_fee_per_run_wei": max_fee,
            }
        )


def unsupported_token(spec: WorkflowSpec, supported: tuple[str, ...] | list[str]) -> str | None:
    """Why a price trigger's token cannot be served here (no price for it: it would never fire),
    or None. The one check every path runs: relayer, dashboard, CLI."""
    t = spec.trigger_data
    if isinstance(t, PriceTriggerData) and t.token not in supported:
        return f"unknown token {t.token!r}; supported: {', '.join(supported)}"
    return None


def price_threshold(spec: WorkflowSpec) -> Decimal | None:
    t = spec.trigger_data
    return t.price_usd if isinstance(t, PriceTriggerData) else None
