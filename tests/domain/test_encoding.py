"""The ABI encoding is exact and lossless; invalid input names the field."""

from __future__ import annotations

import pytest
from eth_abi import decode, encode
from hypothesis import given, settings
from pydantic import ValidationError

from autometa.domain.eip712 import SPEC_FIELDS
from autometa.domain.workflow import WorkflowSpec

from .strategies import spec_bodies

SPEC_ABI = "(" + ",".join(f["type"] for f in SPEC_FIELDS) + ")"


@given(spec_bodies())
@settings(max_examples=300)
def test_abi_roundtrip(body: dict) -> None:  # type: ignore[type-arg]
    spec = WorkflowSpec.model_validate(body)
    raw = encode([SPEC_ABI], [spec.to_abi()])
    (decoded,) = decode([SPEC_ABI], raw)
    assert WorkflowSpec.from_abi(decoded) == spec.resolved()


@given(spec_bodies())
@settings(max_examples=100)
def test_json_roundtrip(body: dict) -> None:  # type: ignore[type-arg]
    spec = WorkflowSpec.model_validate(body)
    assert WorkflowSpec.model_validate_json(spec.model_dump_json()) == spec


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"trigger_data": {"token": "ethereum", "comparator": 0, "price_usd": 0}}, "price_usd"),
        ({"trigger_data": {"token": "Ethereum!", "comparator": 0, "price_usd": 1}}, "trigger_data"),
        ({"trigger_data": {"token": "ethereum", "comparator": 7, "price_usd": 1}}, "comparator"),
        ({"action_data": {"to": "0x70997970c51812dc3a010c7d01b50e0d17dc79C8", "amount_wei": "1"}}, "to"),
        (
            {"action_data": {"to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "amount_wei": "-1"}},
            "amount_wei",
        ),
        (
            {"action_data": {"to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "amount_wei": str(2**256)}},
            "amount_wei",
        ),
        ({"trigger_type": 9}, "trigger_type"),
        ({"gas_limit": 1}, "gas_limit"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_input_names_the_field(patch: dict, field: str) -> None:  # type: ignore[type-arg]
    body = {
        "trigger_type": 2,
        "trigger_data": {"token": "ethereum", "comparator": 0, "price_usd": 3200.0},
        "action_type": 0,
        "action_data": {
            "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
            "amount_wei": "1000000000000000000",
        },
        **patch,
    }
    with pytest.raises(ValidationError) as err:
        WorkflowSpec.model_validate(body)
    assert field in str(err.value)
