"""STATE: the packed triggerData is the contract's, byte for byte — what Python encodes the
contract accepts, stores and returns, and decodes back to the same fields; what either side
refuses the other refuses too; and the contract's run-time check agrees with the condition."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from autometa.chain.accounts import dev_account
from autometa.chain.contracts import autometa
from autometa.chain.deploy import transact
from autometa.domain.kinds import SkipReason
from autometa.domain.triggers import get_kind
from autometa.domain.triggers.state import ReadAs, StateComparator, StateTriggerData, decode_data, encode_data
from autometa.domain.workflow import ZERO_ADDRESS, SpecTuple

TOKEN_TARGET = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def _data(**patch: Any) -> StateTriggerData:
    base = {"target": TOKEN_TARGET, "calldata": "0x18160ddd", "comparator": ">=", "threshold": 1}
    return StateTriggerData.model_validate({**base, **patch})


@st.composite
def state_data(draw: st.DrawFn) -> StateTriggerData:
    read_as = draw(st.sampled_from(list(ReadAs)))
    equality = [StateComparator.EQ, StateComparator.NE]
    comparator = draw(st.sampled_from(equality if read_as in (ReadAs.BOOL, ReadAs.ADDRESS) else list(StateComparator)))
    threshold: int | str = {
        ReadAs.UINT256: draw(st.integers(0, 2**256 - 1)),
        ReadAs.INT256: draw(st.integers(-(2**255), 2**255 - 1)),
        ReadAs.BOOL: draw(st.integers(0, 1)),
        ReadAs.ADDRESS: TOKEN_TARGET,
    }[read_as]
    return _data(
        calldata="0x" + draw(st.binary(max_size=100)).hex(),
        word=draw(st.integers(0, 63)),
        read_as=read_as,
        comparator=comparator,
        threshold=threshold,
        view_gas=draw(st.integers(10_000, 1_000_000)),
    )


@given(state_data())
@settings(max_examples=200)
def test_packed_data_round_trips(data: StateTriggerData) -> None:
    raw = encode_data(data)
    assert len(raw) == 59 + (len(data.calldata) - 2) // 2
    assert StateTriggerData.model_validate(decode_data(raw)) == data


def test_kind_slots_carry_window_cooldown_and_data() -> None:
    data = _data(cooldown=600, not_before=100, not_after=10_000)
    kind = get_kind("state")
    slots = kind.encode(data)
    assert (slots.start_time, slots.end_time, slots.interval) == (100, 10_000, 600)
    assert StateTriggerData.model_validate(kind.decode(slots)) == data
    assert kind.next_due(data, 0, 0) == 100 and kind.next_due(data, 1, 5_000) == 5_600


def test_short_data_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 59 bytes"):
        decode_data(b"\x01" * 58)
    with pytest.raises(ValidationError, match="not_after must be after not_before"):
        _data(not_before=10, not_after=10)


def _spec(data: StateTriggerData, recipient: str) -> SpecTuple:
    slots = get_kind("state").encode(data)
    return SpecTuple(
        triggerKind=3,
        comparator=0,
        startTime=slots.start_time,
        endTime=slots.end_time,
        interval=slots.interval,
        priceUsd=0,
        asset=b"\0" * 32,
        actionKind=0,
        target=recipient,
        token=ZERO_ADDRESS,
        amount=10**12,
        data=b"",
        maxRuns=5,
        gasLimit=50_000,
        maxFeePerRun=10**16,
        triggerData=slots.trigger_data,
    )


def _balance_of(owner: str) -> str:
    return "0x70a08231" + bytes.fromhex(owner[2:]).rjust(32, b"\0").hex()


def test_contract_stores_what_python_encodes_and_runs_on_it(dev_chain) -> None:  # type: ignore[no-untyped-def]
    w3, dep = dev_chain.w3, dev_chain.deployment
    core = autometa(w3, dep.address)
    owner, executor, recipient = dev_account(5), dev_account(2), dev_account(6).address
    data = _data(target=dep.token, calldata=_balance_of(owner.address), comparator=">=", threshold=10**18)
    transact(w3, owner, core.functions.deposit(), value=10**18)
    receipt = transact(w3, owner, core.functions.createWorkflow(_spec(data, recipient)))
    (created,) = core.events.WorkflowCreated().process_receipt(receipt, errors=DISCARD)
    wid = int(created["args"]["workflowId"])
    stored = bytes(core.functions.getWorkflow(wid).call()[6][15])
    assert stored == bytes(created["args"]["spec"]["triggerData"]) == encode_data(data)
    assert StateTriggerData.model_validate(decode_data(stored)) == data

    def run() -> dict[str, Any]:
        receipt = transact(w3, executor, core.functions.executeWithProof(wid, 0, 0, encode_data(data)))
        skipped = core.events.RunSkipped().process_receipt(receipt, errors=DISCARD)
        executed = core.events.RunExecuted().process_receipt(receipt, errors=DISCARD)
        return {"skipped": [SkipReason(e["args"]["reason"]) for e in skipped], "executed": len(executed)}

    # the owner holds none of the dev token: the condition is false on-chain, the run is free
    assert run() == {"skipped": [SkipReason.CONDITION_FALSE], "executed": 0}
    token = w3.eth.contract(
        address=dep.token,
        abi=[
            {
                "name": "mint",
                "type": "function",
                "stateMutability": "nonpayable",
                "inputs": [{"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"}],
                "outputs": [],
            }
        ],
    )
    transact(w3, dev_account(0), token.functions.mint(owner.address, 10**18))
    assert run() == {"skipped": [], "executed": 1}


@pytest.mark.parametrize(
    "patch",
    [
        {"view_gas": 9_999},
        {"word": 64},
        {"read_as": "bool", "comparator": "<", "threshold": 1},
        {"read_as": "bool", "comparator": "==", "threshold": 2},
    ],
)
def test_what_python_refuses_the_contract_refuses(dev_chain, patch: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    """Built past the model's validation (model_construct + a hand-made byte), the contract
    still refuses it: the model is not the only gate."""
    w3, dep = dev_chain.w3, dev_chain.deployment
    core = autometa(w3, dep.address)
    with pytest.raises(ValidationError):
        _data(target=dep.token, **patch)
    good = encode_data(_data(target=dep.token))
    raw = bytearray(good)
    if "view_gas" in patch:
        raw[23:27] = patch["view_gas"].to_bytes(4, "big")
    if "word" in patch:
        raw[20] = patch["word"]
    if "read_as" in patch:
        raw[21] = 2
        raw[22] = list(StateComparator).index(StateComparator(patch["comparator"]))
        raw[27:59] = int(patch["threshold"]).to_bytes(32, "big")
    spec = _spec(_data(target=dep.token), dev_account(6).address)._replace(triggerData=bytes(raw))
    with pytest.raises(ContractLogicError):
        core.functions.createWorkflow(spec).call({"from": dev_account(5).address})
