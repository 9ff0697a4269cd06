"""The one registry of trigger kinds. Each kind is a module of this package that registers a
`TriggerKind`: its data model, how it fills the contract's trigger slots (ABI and EIP-712 alike),
and when its next run is due. Everything that branches on a kind asks the registry, so a kind
nobody registered is an error everywhere instead of silently passing for another one."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

ZERO_BYTES32 = b"\0" * 32


class KindData(BaseModel):
    """Base of the trigger and action data models (strict, immutable; `_kind` routes a union)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind_: str | None = Field(default=None, alias="_kind", exclude=True, repr=False)


class UnknownTriggerKind(ValueError):
    """A trigger kind no module registered (a name, a number, or a data model)."""

    def __init__(self, kind: object) -> None:
        super().__init__(f"unknown trigger kind {kind!r}; known: {', '.join(known_names())}")


@dataclass(frozen=True)
class TriggerSlots:
    """The trigger's part of the contract's `WorkflowSpec` (the same values go into the ABI
    tuple and the EIP-712 message, so a kind cannot encode one differently from the other)."""

    comparator: int = 0
    start_time: int = 0
    end_time: int = 0
    interval: int = 0
    price_usd: int = 0
    asset: bytes = ZERO_BYTES32
    trigger_data: bytes = b""  # STATE / CRON / LOG: the kind's packed data (contracts/src/TriggerSpecs.sol)


D = TypeVar("D", bound=KindData)


class TriggerKind(ABC, Generic[D]):
    """One trigger kind. `code` is the contract's `triggerKind` number (never reused)."""

    name: ClassVar[str]
    code: ClassVar[int]
    label: ClassVar[str]  # what a person picks in a form
    form_rank: ClassVar[int] = 100  # where forms list it (lowest first: the default choice)
    data_model: ClassVar[type[KindData]]
    slots: ClassVar[tuple[str, ...]]  # the EIP-712 `WorkflowSpec` fields it sets (others stay 0)
    unlimited_runs: ClassVar[bool] = False  # default max_runs: unlimited (else 1)
    single_run: ClassVar[bool] = False  # max_runs must be 1
    needs_contract: ClassVar[str | None] = None  # set while the deployed contract cannot store it
    needs_proof: ClassVar[bool] = False  # runs go through executeWithProof (executeBatch skips them: BAD_PROOF)

    @abstractmethod
    def encode(self, data: D) -> TriggerSlots:
        """The contract's trigger slots for `data`."""

    @abstractmethod
    def decode(self, slots: TriggerSlots) -> dict[str, Any]:
        """The data model's fields from the contract's trigger slots."""

    @abstractmethod
    def next_due(self, data: D, run_count: int, last_run: int) -> int:
        """Earliest unix time the next run may happen by time alone (the contract's rule)."""

    def end_time(self, data: D) -> int | None:
        """After this unix time the trigger never fires (None: no end)."""
        return None

    def check_times(self, data: D, now: int) -> None:
        """Refuse times already past where that makes the workflow pointless."""

    @abstractmethod
    def describe(self, data: D) -> str:
        """One line for people (CLI, logs)."""


_BY_CODE: dict[int, TriggerKind[Any]] = {}
_BY_NAME: dict[str, TriggerKind[Any]] = {}
_BY_MODEL: dict[type, TriggerKind[Any]] = {}


def register(kind: TriggerKind[Any]) -> TriggerKind[Any]:
    """Add a kind; a second kind with the same name, number or data model is a programming error."""
    if kind.code in _BY_CODE or kind.name in _BY_NAME or kind.data_model in _BY_MODEL:
        raise RuntimeError(f"trigger kind {kind.name} ({kind.code}) registered twice")
    _BY_CODE[kind.code], _BY_NAME[kind.name], _BY_MODEL[kind.data_model] = kind, kind, kind
    return kind


def known_names() -> list[str]:
    return [k.name for k in all_kinds()]


def all_kinds() -> list[TriggerKind[Any]]:
    """Every registered kind, by contract number."""
    return [_BY_CODE[c] for c in sorted(_BY_CODE)]


def creatable_kinds() -> list[TriggerKind[Any]]:
    """The kinds a user may create on the deployed contract, in the forms' order."""
    return sorted((k for k in all_kinds() if k.needs_contract is None), key=lambda k: (k.form_rank, k.code))


def get_kind(kind: object) -> TriggerKind[Any]:
    """The kind named by a number (int or decimal string) or a name (any case)."""
    if isinstance(kind, bool):
        raise UnknownTriggerKind(kind)
    if isinstance(kind, int) and kind in _BY_CODE:
        return _BY_CODE[int(kind)]
    if isinstance(kind, str):
        text = kind.strip().lower()
        if text in _BY_NAME:
            return _BY_NAME[text]
        if text.isascii() and text.isdigit() and int(text) in _BY_CODE:
            return _BY_CODE[int(text)]
    raise UnknownTriggerKind(kind)


def kind_of_data(data: object) -> TriggerKind[Any]:
    """The kind whose data model `data` is."""
    kind = _BY_MODEL.get(type(data))
    if kind is None:
        raise UnknownTriggerKind(type(data).__name__)
    return kind


def parse_code(value: object) -> int:
    """A `trigger_type` as given by a user (name or number) → the contract's number."""
    return get_kind(value).code
