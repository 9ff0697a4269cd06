"""Typed workflows in the seed's JSON shape (`trigger_type` + `trigger_data`, `action_type` +
`action_data`) and their exact ABI encoding as the contract's `WorkflowSpec` tuple."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, WithJsonSchema, model_validator

from autometa.domain.assets import asset_from_bytes32, asset_to_bytes32, validate_asset
from autometa.domain.kinds import (
    MAX_CALLDATA,
    MAX_GAS_LIMIT,
    MIN_GAS_LIMIT,
    UINT24_MAX,
    UINT32_MAX,
    UINT40_MAX,
    UINT80_MAX,
    UINT96_MAX,
    ActionType,
    Comparator,
    TriggerType,
)
from autometa.domain.types import Address, HexBytes, PriceUsd, Wei, price_from_int, price_to_int

# The names a workflow's JSON may use instead of the numbers (`"trigger_type": "price"`).
TRIGGER_NAMES = {"time": TriggerType.TIME, "interval": TriggerType.INTERVAL, "price": TriggerType.PRICE}
ACTION_NAMES = {
    "native": ActionType.NATIVE_TRANSFER, "native_transfer": ActionType.NATIVE_TRANSFER,
    "erc20": ActionType.ERC20_TRANSFER, "erc20_transfer": ActionType.ERC20_TRANSFER,
    "call": ActionType.CONTRACT_CALL, "contract_call": ActionType.CONTRACT_CALL,
}  # fmt: skip
COMPARATOR_NAMES = {"below": Comparator.BELOW, "above": Comparator.ABOVE}


def _by_name(names: dict[str, Any]) -> Any:
    """A validator that turns a known name into its number and leaves anything else to the enum."""

    def convert(value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in names:
            return int(names[value.strip().lower()])
        return value

    return convert


def _either(enum: type, names: dict[str, Any], description: str) -> WithJsonSchema:
    """The schema of an IntEnum field that also takes its names: both, exactly."""
    numbers = [int(m) for m in enum]  # type: ignore[attr-defined]
    return WithJsonSchema({
        "anyOf": [{"type": "integer", "enum": numbers}, {"type": "string", "enum": sorted(names)}],
        "description": description,
    })  # fmt: skip


TriggerTypeField = Annotated[
    TriggerType, BeforeValidator(_by_name(TRIGGER_NAMES)),
    _either(TriggerType, TRIGGER_NAMES, "0 = time, 1 = interval, 2 = price (the number or the name)"),
]  # fmt: skip
ActionTypeField = Annotated[
    ActionType, BeforeValidator(_by_name(ACTION_NAMES)),
    _either(ActionType, ACTION_NAMES, "0 = native transfer, 1 = ERC-20 transfer, 2 = contract call (number or name)"),
]  # fmt: skip
ComparatorField = Annotated[
    Comparator, BeforeValidator(_by_name(COMPARATOR_NAMES)),
    _either(Comparator, COMPARATOR_NAMES, "0 = below, 1 = above (the number or the name)"),
]  # fmt: skip

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
UnixTime = Annotated[int, Field(ge=0, le=UINT40_MAX, description="unix seconds")]

DEFAULT_GAS_LIMIT = {
    ActionType.NATIVE_TRANSFER: 30_000,
    ActionType.ERC20_TRANSFER: 80_000,
    ActionType.CONTRACT_CALL: 200_000,
}
DEFAULT_MAX_FEE_PER_RUN_WEI = 10**16


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind_: str | None = Field(default=None, alias="_kind", exclude=True, repr=False)


class TimeTriggerData(_Data):
    """Fire once, at or after `at`."""

    at: UnixTime = Field(gt=0, examples=[1767225600])


class IntervalTriggerData(_Data):
    """Fire every `interval` seconds from `start` (0 = at once) until `end` (none = never)."""

    interval: int = Field(ge=1, le=UINT32_MAX, examples=[3600])
    start: UnixTime = 0
    end: UnixTime | None = None

    @model_validator(mode="after")
    def _end_after_start(self) -> IntervalTriggerData:
        if self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class PriceTriggerData(_Data):
    """Fire when `token`'s USD price is below (comparator 0) or above (1) `price_usd`."""

    token: str = Field(examples=["ethereum"], description="CoinGecko id of the asset")
    comparator: ComparatorField = Field(examples=[0])
    price_usd: PriceUsd = Field(examples=[3200.0])
    cooldown: int = Field(default=0, ge=0, le=UINT24_MAX, description="seconds between runs (at most 2**24-1)")
    not_before: UnixTime = 0
    not_after: UnixTime | None = None

    @model_validator(mode="after")
    def _check(self) -> PriceTriggerData:
        validate_asset(self.token)
        if self.not_after is not None and self.not_after <= self.not_before:
            raise ValueError("not_after must be after not_before")
        return self


class NativeTransferData(_Data):
    """Send `amount_wei` of the native coin from the owner's escrow to `to`."""

    to: Address = Field(examples=["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"])
    amount_wei: Wei = Field(examples=["1000000000000000000"])

    @model_validator(mode="after")
    def _check(self) -> NativeTransferData:
        if not 0 < self.amount_wei <= UINT96_MAX:
            raise ValueError("amount_wei must be between 1 and 2**96-1")
        return self


class Erc20TransferData(_Data):
    """`token.transferFrom(owner, to, amount)` through the allowance the owner gave the contract."""

    token: Address
    to: Address
    amount: Wei

    @model_validator(mode="after")
    def _check(self) -> Erc20TransferData:
        if self.amount == 0:
            raise ValueError("amount must be positive")
        return self


class ContractCallData(_Data):
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
    TimeTriggerData: "time",
    IntervalTriggerData: "interval",
    PriceTriggerData: "price",
    NativeTransferData: "native",
    Erc20TransferData: "erc20",
    ContractCallData: "call",
}

TriggerData = Annotated[
    Annotated[TimeTriggerData, Tag("time")]
    | Annotated[IntervalTriggerData, Tag("interval")]
    | Annotated[PriceTriggerData, Tag("price")],
    Discriminator(_tag),
]
ActionData = Annotated[
    Annotated[NativeTransferData, Tag("native")]
    | Annotated[Erc20TransferData, Tag("erc20")]
    | Annotated[ContractCallData, Tag("call")],
    Discriminator(_tag),
]
_TRIGGER_TAGS = {TriggerType.TIME: "time", TriggerType.INTERVAL: "interval", TriggerType.PRICE: "price"}
_ACTION_TAGS = {
    ActionType.NATIVE_TRANSFER: "native",
    ActionType.ERC20_TRANSFER: "erc20",
    ActionType.CONTRACT_CALL: "call",
}


class WorkflowSpec(BaseModel):
    """What a user asks for: one trigger, one action and the limits of what it may cost."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trigger_type: TriggerTypeField = Field(examples=[2])
    trigger_data: TriggerData
    action_type: ActionTypeField = Field(examples=[0])
    action_data: ActionData
    max_runs: int | None = Field(
        default=None,
        ge=1,
        le=UINT32_MAX,
        description="default: 1 for time and price triggers, unlimited for interval",
    )
    gas_limit: int | None = Field(
        default=None, ge=MIN_GAS_LIMIT, le=MAX_GAS_LIMIT, description="gas the action gets"
    )
    max_fee_per_run_wei: Wei | None = Field(default=None, description="the most one run may charge (wei)")

    @model_validator(mode="before")
    @classmethod
    def _tag_data(cls, data: Any) -> Any:
        # Route trigger_data/action_data to the model their *_type names, so errors name the field.
        if isinstance(data, dict):
            data = dict(data)
            for key, tags, enum, names in (
                ("trigger", _TRIGGER_TAGS, TriggerType, TRIGGER_NAMES),
                ("action", _ACTION_TAGS, ActionType, ACTION_NAMES),
            ):
                kind, payload = _by_name(names)(data.get(f"{key}_type")), data.get(f"{key}_data")
                if isinstance(payload, dict) and not isinstance(kind, bool):
                    try:
                        data[f"{key}_data"] = {**payload, "_kind": tags[enum(kind)]}  # type: ignore[index]
                    except (ValueError, TypeError, KeyError):
                        pass  # the *_type field's own validation reports it
        return data

    @model_validator(mode="after")
    def _check(self) -> WorkflowSpec:
        if _TRIGGER_TAGS[self.trigger_type] != _tag(self.trigger_data):
            raise ValueError("trigger_data does not match trigger_type")
        if _ACTION_TAGS[self.action_type] != _tag(self.action_data):
            raise ValueError("action_data does not match action_type")
        if self.trigger_type is TriggerType.TIME and self.max_runs not in (None, 1):
            raise ValueError("max_runs must be 1 for a time trigger")
        if self.max_fee_per_run_wei is not None and not 0 < self.max_fee_per_run_wei <= UINT80_MAX:
            raise ValueError("max_fee_per_run_wei must be between 1 and 2**80-1")
        return self

    # -------------------------------------------------------------- resolved limits

    @property
    def resolved_max_runs(self) -> int:
        if self.max_runs is not None:
            return self.max_runs
        return UINT32_MAX if self.trigger_type is TriggerType.INTERVAL else 1

    @property
    def resolved_gas_limit(self) -> int:
        return self.gas_limit if self.gas_limit is not None else DEFAULT_GAS_LIMIT[self.action_type]

    @property
    def resolved_max_fee(self) -> int:
        return (
            self.max_fee_per_run_wei if self.max_fee_per_run_wei is not None else DEFAULT_MAX_FEE_PER_RUN_WEI
        )

    def resolved(self) -> WorkflowSpec:
        """The same spec with every default made explicit (what the contract stores)."""
        return self.model_copy(update={
            "max_runs": self.resolved_max_runs, "gas_limit": self.resolved_gas_limit,
            "max_fee_per_run_wei": self.resolved_max_fee,
        })  # fmt: skip

    def end_time(self) -> int | None:
        t = self.trigger_data
        if isinstance(t, IntervalTriggerData):
            return t.end
        if isinstance(t, PriceTriggerData):
            return t.not_after
        return None

    def check_times(self, now: int) -> None:
        """Refuse times that are already past where that makes the workflow pointless."""
        t = self.trigger_data
        if isinstance(t, TimeTriggerData) and t.at <= now:
            raise ValueError("trigger_data.at must be in the future")
        end = self.end_time()
        if end is not None and end <= now:
            raise ValueError("the trigger's end time must be in the future")

    # -------------------------------------------------------------- ABI

    def to_abi(self) -> tuple[Any, ...]:
        """The contract's `WorkflowSpec` tuple, field for field."""
        t, a = self.trigger_data, self.action_data
        comparator, price, asset = 0, 0, b"\0" * 32
        if isinstance(t, TimeTriggerData):
            start, end, interval = t.at, 0, 0
        elif isinstance(t, IntervalTriggerData):
            start, end, interval = t.start, t.end or 0, t.interval
        else:
            start, end, interval = t.not_before, t.not_after or 0, t.cooldown
            comparator, price, asset = int(t.comparator), price_to_int(t.price_usd), asset_to_bytes32(t.token)
        token, data = ZERO_ADDRESS, b""
        if isinstance(a, NativeTransferData):
            target, amount = a.to, a.amount_wei
        elif isinstance(a, Erc20TransferData):
            target, token, amount = a.to, a.token, a.amount
        else:
            target, amount, data = a.target, a.value_wei, bytes.fromhex(a.data[2:])
        return (
            int(self.trigger_type), comparator, start, end, interval, price, asset,
            int(self.action_type), target, token, amount, data,
            self.resolved_max_runs, self.resolved_gas_limit, self.resolved_max_fee,
        )  # fmt: skip

    @classmethod
    def from_abi(cls, spec: Any) -> WorkflowSpec:
        """Decode the contract's tuple (or a web3 AttributeDict / dict with the struct's names)."""
        if isinstance(spec, dict) or hasattr(spec, "keys"):
            names = (
                "triggerKind",
                "comparator",
                "startTime",
                "endTime",
                "interval",
                "priceUsd",
                "asset",
                "actionKind",
                "target",
                "token",
                "amount",
                "data",
                "maxRuns",
                "gasLimit",
                "maxFeePerRun",
            )
            spec = tuple(spec[n] for n in names)
        (tk, comparator, start, end, interval, price, asset, ak, target, token, amount, data,
         max_runs, gas_limit, max_fee) = spec  # fmt: skip
        trigger: dict[str, Any]
        if tk == TriggerType.TIME:
            trigger = {"at": start}
        elif tk == TriggerType.INTERVAL:
            trigger = {"interval": interval, "start": start, "end": end or None}
        else:
            trigger = {
                "token": asset_from_bytes32(bytes(asset)), "comparator": comparator,
                "price_usd": price_from_int(price), "cooldown": interval,
                "not_before": start, "not_after": end or None,
            }  # fmt: skip
        action: dict[str, Any]
        if ak == ActionType.NATIVE_TRANSFER:
            action = {"to": target, "amount_wei": amount}
        elif ak == ActionType.ERC20_TRANSFER:
            action = {"token": token, "to": target, "amount": amount}
        else:
            action = {"target": target, "data": "0x" + bytes(data).hex(), "value_wei": amount}
        return cls.model_validate({
            "trigger_type": tk, "trigger_data": trigger, "action_type": ak, "action_data": action,
            "max_runs": max_runs, "gas_limit": gas_limit, "max_fee_per_run_wei": max_fee,
        })  # fmt: skip


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
