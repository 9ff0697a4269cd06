"""LOG: the packed filter is the contract's, byte for byte; bad filters are refused on both sides."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from web3.exceptions import ContractLogicError

from autometa.chain.accounts import dev_account
from autometa.chain.contracts import autometa
from autometa.domain.triggers import get_kind
from autometa.domain.triggers.log import LogTriggerData, decode_data, encode_data
from autometa.domain.workflow import ZERO_ADDRESS, SpecTuple

EMITTER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
TRANSFER = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
topics = st.one_of(st.none(), st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex()))


@given(st.tuples(topics, topics, topics))
@settings(max_examples=100)
def test_packed_filter_round_trips(filters: tuple[str | None, str | None, str | None]) -> None:
    data = LogTriggerData(emitter=EMITTER, topic0=TRANSFER, topics=filters)
    raw = encode_data(data)
    assert len(raw) == 53 + 32 * sum(t is not None for t in filters)
    assert LogTriggerData.model_validate(decode_data(raw)) == data
    kind = get_kind("log")
    assert LogTriggerData.model_validate(kind.decode(kind.encode(data))) == data


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"topic0": "0x" + "00" * 32}, "topic0"),
        ({"topic0": "0x12"}, "64 hex digits"),
        ({"topics": [None, None, None, None]}, "at most three"),
        ({"emitter": "0x12"}, "address"),
    ],
)
def test_bad_filters_are_refused(patch: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        LogTriggerData.model_validate({"emitter": EMITTER, "topic0": TRANSFER, **patch})


def test_bad_packed_data_is_refused() -> None:
    with pytest.raises(ValueError, match="mask"):
        decode_data(bytes.fromhex(EMITTER[2:]) + bytes.fromhex(TRANSFER[2:]) + b"\x01")


def test_contract_accepts_python_filters_and_refuses_a_bad_mask(dev_chain) -> None:  # type: ignore[no-untyped-def]
    core = autometa(dev_chain.w3, dev_chain.deployment.address)
    data = LogTriggerData(emitter=EMITTER, topic0=TRANSFER, topics=(None, "0x" + "11" * 32, None))
    spec = SpecTuple(
        5, 0, 0, 0, 0, 0, b"\0" * 32, 0, dev_account(6).address, ZERO_ADDRESS, 1, b"", 3, 50_000, 10**16, b""
    )
    sender = {"from": dev_account(5).address}
    assert core.functions.createWorkflow(spec._replace(triggerData=encode_data(data))).call(sender) >= 1
    bad = bytearray(encode_data(data))
    bad[52] = 3  # says two topics follow, one does
    with pytest.raises(ContractLogicError):
        core.functions.createWorkflow(spec._replace(triggerData=bytes(bad))).call(sender)
