"""STATE: any view function, re-checked on-chain — `target.call(calldata)`, the return word at
`word`, read as `read_as`, compared with `threshold`.

Defined here (fields, validation, the scheduler's evaluator) but not creatable: the deployed
contract has no STATE trigger yet, so `needs_contract` makes every create path refuse it."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field, model_validator

from autometa.domain.kinds import MAX_CALLDATA, UINT256_MAX
from autometa.domain.triggers.registry import KindData, TriggerKind, TriggerSlots, register
from autometa.domain.types import Address, HexBytes, check_address

STATE_CODE = 3  # the contract's next triggerKind number (issue 15)
MAX_WORD_INDEX = 63
MAX_VIEW_GAS = 1_000_000
INT256_MIN, INT256_MAX = -(2**255), 2**255 - 1


class ReadAs(StrEnum):
    """How the return word is read."""

    UINT256 = "uint256"
    INT256 = "int256"
    BOOL = "bool"
    ADDRESS = "address"


class StateComparator(StrEnum):
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    EQ = "=="
    NE = "!="


class StateTriggerData(KindData):
    """Fire when `read_as(word #word of target.call(calldata)) <comparator> threshold` holds."""

    target: Address
    calldata: HexBytes = Field(examples=["0x18160ddd"])
    word: int = Field(default=0, ge=0, le=MAX_WORD_INDEX, description="which 32-byte return word")
    read_as: ReadAs = ReadAs.UINT256
    comparator: StateComparator
    threshold: int | str = Field(description="integer (uint256/int256/bool as 0/1) or an address for address")
    view_gas: int = Field(default=100_000, ge=10_000, le=MAX_VIEW_GAS, description="gas cap of the view call")

    @model_validator(mode="before")
    @classmethod
    def _decimal_threshold(cls, data: Any) -> Any:
        # Numbers beyond 2**53 travel as decimal strings in JSON (like wei amounts).
        if isinstance(data, dict) and data.get("read_as", "uint256") != "address":
            t = data.get("threshold")
            if isinstance(t, str) and t.isascii() and t.lstrip("-").isdigit() and len(t) <= 80:
                data = {**data, "threshold": int(t)}
        return data

    @model_validator(mode="after")
    def _check(self) -> StateTriggerData:
        if (len(self.calldata) - 2) // 2 > MAX_CALLDATA:
            raise ValueError(f"calldata must be at most {MAX_CALLDATA} bytes")
        if self.read_as in (ReadAs.BOOL, ReadAs.ADDRESS) and self.comparator not in (
            StateComparator.EQ,
            StateComparator.NE,
        ):
            raise ValueError(f"a {self.read_as} can only be compared with == or !=")
        t = self.threshold
        if self.read_as is ReadAs.ADDRESS:
            if not isinstance(t, str):
                raise ValueError("threshold must be an address")
            check_address(t)  # raises naming what is wrong with it
        elif not isinstance(t, int) or isinstance(t, bool):
            raise ValueError("threshold must be an integer")
        else:
            low, high = {
                ReadAs.UINT256: (0, UINT256_MAX),
                ReadAs.INT256: (INT256_MIN, INT256_MAX),
                ReadAs.BOOL: (0, 1),
            }[self.read_as]
            if not low <= t <= high:
                raise ValueError(f"threshold out of range for {self.read_as}")
        return self


class StateKind(TriggerKind[StateTriggerData]):
    name, code, label = "state", STATE_CODE, "a contract's state"
    data_model = StateTriggerData
    slots = ()
    unlimited_runs = False
    needs_contract = (
        "a contract that supports them (issue 15); the deployed Autometa contract "
        "(EIP-712 version 1) has time, interval and price triggers only"
    )

    def encode(self, data: StateTriggerData) -> TriggerSlots:
        raise ValueError(f"STATE triggers need {self.needs_contract}")

    def decode(self, slots: TriggerSlots) -> dict[str, Any]:
        raise ValueError(f"STATE triggers need {self.needs_contract}")

    def next_due(self, data: StateTriggerData, run_count: int, last_run: int) -> int:
        return 0 if run_count == 0 else last_run  # no time gate: checked every block

    def describe(self, data: StateTriggerData) -> str:
        return f"{data.target} {data.calldata[:10]}[{data.word}] as {data.read_as} {data.comparator} {data.threshold}"


register(StateKind())
