"""The trigger-kind registry is the one source of the kinds: every layer asks it, an unknown kind
is an error (never read as a price trigger), STATE is creatable (its data is the contract's
triggerData), and the EIP-712 encoding of the existing kinds is the contract's, byte for byte."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account._utils.encode_typed_data.encoding_and_hashing import encode_type, hash_struct
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from pydantic import ValidationError

from autometa.chain.contracts import autometa
from autometa.domain.eip712 import SPEC_FIELDS, create_typed_data
from autometa.domain.kinds import TriggerType
from autometa.domain.triggers import (
    UnknownTriggerKind,
    all_kinds,
    creatable_kinds,
    get_kind,
    kind_of_data,
)
from autometa.domain.triggers.state import StateTriggerData
from autometa.domain.workflow import WorkflowSpec

from .strategies import spec_bodies

ACTION = {"action_type": 0, "action_data": {"to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "amount_wei": "1"}}
PRICE = {"token": "ethereum", "comparator": 0, "price_usd": "3200"}
STATE = {
    "target": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "calldata": "0x18160ddd",
    "comparator": ">",
    "threshold": 10**18,
}


def test_every_contract_kind_is_registered_once_by_its_number() -> None:
    codes = [k.code for k in all_kinds()]
    assert len(set(codes)) == len(codes) and len({k.name for k in all_kinds()}) == len(codes)
    for member in TriggerType:  # the contract's enum: each number has its module
        kind = get_kind(int(member))
        assert kind.name == member.name.lower() and kind.needs_contract is None
    creatable = {k.code for k in creatable_kinds()}
    assert creatable == {k.code for k in all_kinds() if k.needs_contract is None} >= {int(m) for m in TriggerType}
    for kind in all_kinds():
        assert kind_of_data(kind.data_model.model_construct()) is kind


@pytest.mark.parametrize("given_as", [2, "2", "price", "PRICE", " price "])
def test_a_kind_is_named_by_number_or_name(given_as: object) -> None:
    spec = WorkflowSpec.model_validate({"trigger_type": given_as, "trigger_data": PRICE, **ACTION})
    assert spec.trigger_type == 2 and spec.trigger_kind.name == "price"
    assert spec == WorkflowSpec.model_validate({"trigger_type": 2, "trigger_data": PRICE, **ACTION})


@pytest.mark.parametrize("bad", [9, "9", "hourly", "", True, 2.5, None, -1])
def test_an_unknown_kind_is_refused_with_the_known_ones(bad: object) -> None:
    with pytest.raises(UnknownTriggerKind, match="unknown trigger kind"):
        get_kind(bad)
    with pytest.raises(ValidationError) as info:
        WorkflowSpec.model_validate({"trigger_type": bad, "trigger_data": PRICE, **ACTION})
    errors = {e["loc"][0]: e["msg"] for e in info.value.errors()}
    assert "unknown trigger kind" in errors["trigger_type"] and "price" in errors["trigger_type"]


def test_an_unknown_number_from_the_chain_is_an_error_not_a_price_trigger() -> None:
    spec = WorkflowSpec.model_validate({"trigger_type": 2, "trigger_data": PRICE, **ACTION})
    raw = list(spec.to_abi())
    raw[0] = 7  # a kind a newer contract might add
    with pytest.raises(UnknownTriggerKind, match="7"):
        WorkflowSpec.from_abi(tuple(raw))


def test_data_of_another_kind_is_refused() -> None:
    with pytest.raises(ValidationError, match="trigger_data"):
        WorkflowSpec.model_validate({"trigger_type": "time", "trigger_data": PRICE, **ACTION})


def test_state_is_creatable_and_carries_its_packed_trigger_data() -> None:
    data = StateTriggerData.model_validate(STATE)
    assert kind_of_data(data).name == "state" and "state" in {k.name for k in creatable_kinds()}
    for kind in ("state", 3):
        spec = WorkflowSpec.model_validate({"trigger_type": kind, "trigger_data": STATE, **ACTION})
        packed = bytes(spec.to_abi().triggerData)
        assert packed[:20].hex() == STATE["target"][2:].lower() and packed[59:] == bytes.fromhex("18160ddd")
        assert int.from_bytes(packed[27:59], "big") == STATE["threshold"]


def test_state_thresholds_may_be_decimal_strings() -> None:
    big = StateTriggerData.model_validate({**STATE, "threshold": str(2**255)})
    assert big.threshold == 2**255
    signed = StateTriggerData.model_validate({**STATE, "read_as": "int256", "threshold": "-7"})
    assert signed.threshold == -7
    with pytest.raises(ValidationError, match="must be an integer"):
        StateTriggerData.model_validate({**STATE, "threshold": "7.5"})


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"read_as": "bool", "comparator": ">"}, "only be compared with == or !="),
        ({"read_as": "bool", "comparator": "==", "threshold": 2}, "out of range"),
        ({"read_as": "int256", "threshold": -(2**255) - 1}, "out of range"),
        ({"threshold": -1}, "out of range"),
        ({"read_as": "address", "comparator": "==", "threshold": 5}, "must be an address"),
        ({"read_as": "address", "comparator": "==", "threshold": "0x12"}, "20-byte hex address"),
        ({"comparator": "=<"}, "comparator"),
        ({"word": 64}, "word"),
        ({"view_gas": 2_000_000}, "view_gas"),
        ({"calldata": "0x" + "00" * 4097}, "at most 4096 bytes"),
    ],
)
def test_state_data_validation(patch: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        StateTriggerData.model_validate({**STATE, **patch})


def test_spec_type_string_is_the_contracts(dev_chain) -> None:  # type: ignore[no-untyped-def]
    """Signatures made before the registry still verify: the type string is the contract's."""
    core = autometa(dev_chain.w3, dev_chain.deployment.address)
    spec = WorkflowSpec.model_validate({"trigger_type": 2, "trigger_data": PRICE, **ACTION})
    typed = create_typed_data(spec, ACTION["action_data"]["to"], 0, 1, 0, 31337, core.address)
    assert keccak(text=encode_type("WorkflowSpec", typed["types"])) == core.functions.SPEC_TYPEHASH().call()
    assert keccak(text=encode_type("CreateWorkflow", typed["types"])) == core.functions.CREATE_TYPEHASH().call()
    assert [f["name"] for f in SPEC_FIELDS][0] == "triggerKind"


@given(body=spec_bodies())
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_spec_struct_hash_is_the_contracts_for_every_kind(dev_chain, body: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    core = autometa(dev_chain.w3, dev_chain.deployment.address)
    spec = WorkflowSpec.model_validate(body)
    typed = create_typed_data(spec, ACTION["action_data"]["to"], 0, 1, 0, 31337, core.address)
    ours = hash_struct("WorkflowSpec", typed["types"], typed["message"]["spec"])
    assert ours == core.functions.hashSpec(spec.to_abi()).call()
