"""The names a workflow's JSON may use instead of the contract's numbers (`"action_type":
"native"`, `"comparator": "below"`): one validator that turns a known name into its number, and
a schema that lists both exactly. Trigger kinds take their names from the trigger registry."""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

from autometa.domain.kinds import ActionType, Comparator

ACTION_NAMES = {
    "native": ActionType.NATIVE_TRANSFER,
    "native_transfer": ActionType.NATIVE_TRANSFER,
    "erc20": ActionType.ERC20_TRANSFER,
    "erc20_transfer": ActionType.ERC20_TRANSFER,
    "call": ActionType.CONTRACT_CALL,
    "contract_call": ActionType.CONTRACT_CALL,
}
COMPARATOR_NAMES = {"below": Comparator.BELOW, "above": Comparator.ABOVE}


def by_name(names: dict[str, Any]) -> Callable[[Any], Any]:
    """A validator that turns a known name into its number and leaves anything else to the enum."""

    def convert(value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in names:
            return int(names[value.strip().lower()])
        return value

    return convert


def names_schema(enum: type[IntEnum], names: dict[str, Any], description: str) -> WithJsonSchema:
    """The schema of an IntEnum field that also takes its names: both, exactly."""
    return WithJsonSchema(
        {
            "anyOf": [{"type": "integer", "enum": [int(m) for m in enum]}, {"type": "string", "enum": sorted(names)}],
            "description": description,
        }
    )


ActionTypeField = Annotated[
    ActionType,
    BeforeValidator(by_name(ACTION_NAMES)),
    names_schema(ActionType, ACTION_NAMES, "0 = native, 1 = ERC-20 transfer, 2 = contract call (number or name)"),
]
ComparatorField = Annotated[
    Comparator,
    BeforeValidator(by_name(COMPARATOR_NAMES)),
    names_schema(Comparator, COMPARATOR_NAMES, "0 = below, 1 = above (the number or the name)"),
]
