"""STATE: any view function, re-checked on-chain — `target.staticcall{gas: view_gas}(calldata)`,
the return word at `word`, read as `read_as`, compared with `threshold`.

The contract stores only the hash of the packed `triggerData` (`encode_data`); the executor
supplies the data with each run (`executeWithProof`) and the contract re-runs the view, so the
run happens only if the condition holds in the very block it executes in. A view that reverts,
runs out of `view_gas` or answers too few words makes the run "not due" (skipped, free).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from eth_utils import to_checksum_address
from pydantic import Field, model_validator

from autometa.domain.kinds import MAX_CALLDATA, UINT32_MAX, UINT256_MAX
from autometa.domain.triggers.registry import KindData, TriggerKind, TriggerSlots, register
from autometa.domain.triggers.values import UnixTime
from autometa.domain.types import Address, HexBytes, check_address

STATE_CODE = 3  # the contract's TRIGGER_STATE
MAX_WORD_INDEX = 63
MIN_VIEW_GAS = 10_000
MAX_VIEW_GAS = 1_000_000
HEAD = 59  # bytes before the calldata in the packed data (TriggerSpecs.STATE_HEAD)
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
    view_gas: int = Field(default=100_000, ge=MIN_VIEW_GAS, le=MAX_VIEW_GAS, description="gas cap of the view call")
    cooldown: int = Field(default=0, ge=0, le=UINT32_MAX, description="seconds between runs")
    not_before: UnixTime = 0
    not_after: UnixTime | None = None

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
        if self.not_after is not None and self.not_after <= self.not_before:
            raise ValueError("not_after must be after not_before")
        return self


READ_CODES = {r: i for i, r in enumerate(ReadAs)}  # the contract's READ_* numbers
COMPARATOR_CODES = {c: i for i, c in enumerate(StateComparator)}  # the contract's CMP_* numbers


def encode_data(data: StateTriggerData) -> bytes:
    """The packed triggerData: target | word | readAs | comparator | viewGas (4) | threshold | calldata."""
    t = data.threshold
    threshold = int(t, 16) if isinstance(t, str) else t % 2**256  # int256 as two's complement
    return (
        bytes.fromhex(data.target[2:])
        + bytes([data.word, READ_CODES[data.read_as], COMPARATOR_CODES[data.comparator]])
        + data.view_gas.to_bytes(4, "big")
        + threshold.to_bytes(32, "big")
        + bytes.fromhex(data.calldata[2:])
    )


def decode_data(raw: bytes) -> dict[str, Any]:
    """The data model's STATE fields from the packed triggerData (see `encode_data`)."""
    if len(raw) < HEAD:
        raise ValueError(f"STATE triggerData must be at least {HEAD} bytes, got {len(raw)}")
    read_as = list(ReadAs)[raw[21]]
    word = int.from_bytes(raw[27:59], "big")
    threshold: int | str = word
    if read_as is ReadAs.INT256 and word >= 2**255:
        threshold = word - 2**256
    elif read_as is ReadAs.ADDRESS:
        threshold = to_checksum_address(word.to_bytes(32, "big")[12:])
    return {
        "target": to_checksum_address(raw[:20]),
        "word": raw[20],
        "read_as": read_as,
        "comparator": list(StateComparator)[raw[22]],
        "view_gas": int.from_bytes(raw[23:27], "big"),
        "threshold": threshold,
        "calldata": "0x" + raw[HEAD:].hex(),
    }


class StateKind(TriggerKind[StateTriggerData]):
    name, code, label = "state", STATE_CODE, "a contract's state"
    data_model = StateTriggerData
    needs_proof = True  # its signed triggerData goes with each run (executeWithProof)
    slots = ("startTime", "endTime", "interval", "triggerData")
    unlimited_runs = False

    def encode(self, data: StateTriggerData) -> TriggerSlots:
        return TriggerSlots(
            start_time=data.not_before,
            end_time=data.not_after or 0,
            interval=data.cooldown,
            trigger_data=encode_data(data),
        )

    def decode(self, slots: TriggerSlots) -> dict[str, Any]:
        return {
            **decode_data(bytes(slots.trigger_data)),
            "cooldown": slots.interval,
            "not_before": slots.start_time,
            "not_after": slots.end_time or None,
        }

    def next_due(self, data: StateTriggerData, run_count: int, last_run: int) -> int:
        # by time alone (the contract's rule); the condition is checked every block on top
        return data.not_before if run_count == 0 else last_run + data.cooldown

    def end_time(self, data: StateTriggerData) -> int | None:
        return data.not_after

    def describe(self, data: StateTriggerData) -> str:
        return f"{data.target} {data.calldata[:10]}[{data.word}] as {data.read_as} {data.comparator} {data.threshold}"


register(StateKind())
