"""CRON: the grammar is Chainlink's (what one refuses the other refuses), the encoding is the
contract's, and croniter's ticks are Chainlink's own `Cron.nextTick` on the chain for many specs
and times."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError
from web3.exceptions import ContractLogicError

from autometa.chain.contracts import autometa, bind
from autometa.domain.triggers import get_kind
from autometa.domain.triggers.cron import CronTriggerData, last_tick, next_tick, parse

GOOD = [
    "* * * * *",
    "0 9 * * *",
    "*/15 * * * *",
    "30 8 * * 1",
    "0 0 1 * *",
    "5,35 */6 * * *",
    "0 12 * 1-6 *",
    "0 9-17 * * 1-5",
    "15 10 13 * 5",
    "0 0 29 2 *",
    "45 23 31 * *",
    "0 6,18 * 3,6,9,12 0",
]
BAD = ["", "0 9 * *", "61 * * * *", "a * * * *", "0 9 * * 7", "0 9 31 2 *", "0 9 * */2 *", "0 9 */5 * *", "5-5 * * * *"]


@pytest.mark.parametrize("spec", BAD)
def test_python_refuses_what_it_cannot_run_exactly(spec: str) -> None:
    with pytest.raises(ValidationError):
        CronTriggerData(spec=spec)


def test_spaces_are_normalised_and_encoding_round_trips() -> None:
    data = CronTriggerData(spec="  0  9 * *  1-5 ", not_before=100, not_after=10_000)
    assert data.spec == "0 9 * * 1-5"
    kind = get_kind("cron")
    slots = kind.encode(data)
    assert slots.trigger_data == b"0 9 * * 1-5" and (slots.start_time, slots.end_time) == (100, 10_000)
    assert CronTriggerData.model_validate(kind.decode(slots)) == data


def test_ticks_once_per_tick_and_missed_ticks_once() -> None:
    t0 = 1_700_000_000  # 2023-11-14 22:13:20 UTC, a Tuesday
    assert next_tick("0 9 * * *", t0) == 1_700_038_800  # Wednesday 09:00
    assert last_tick("0 9 * * *", t0 + 3 * 86_400) == 1_700_038_800 + 2 * 86_400  # the latest only
    data = CronTriggerData(spec="0 9 * * *")
    assert get_kind("cron").next_due(data, 1, 1_700_038_800 + 5) == 1_700_038_800 + 86_400


def _chain_time(w3, t: int) -> None:  # type: ignore[no-untyped-def]
    w3.provider.make_request("evm_setNextBlockTimestamp", [t])
    w3.provider.make_request("evm_mine", [])


def test_contract_refuses_what_python_refuses(dev_chain) -> None:  # type: ignore[no-untyped-def]
    core = autometa(dev_chain.w3, dev_chain.deployment.address)
    specs = bind(dev_chain.w3, "TriggerSpecs", core.functions.triggerSpecs().call())
    for spec in GOOD:
        assert specs.functions.cronBits(spec).call() != 0
        parse(spec)
    for spec in ["", "0 9 * *", "61 * * * *", "0 9 * * 7", "0 9 31 2 *"]:
        with pytest.raises(ContractLogicError):
            specs.functions.cronBits(spec).call()


def test_croniter_agrees_with_chainlinks_next_tick(dev_chain) -> None:  # type: ignore[no-untyped-def]
    """Chainlink's nextTick counts the current minute; croniter's next is strictly after its start."""
    w3 = dev_chain.w3
    core = autometa(w3, dev_chain.deployment.address)
    specs = bind(w3, "TriggerSpecs", core.functions.triggerSpecs().call())
    rng = random.Random(15)
    now = int(w3.eth.get_block("latest")["timestamp"])
    checked = 0
    for _ in range(12):
        now += rng.randrange(3_600, 40 * 86_400)
        _chain_time(w3, now)
        block_time = int(w3.eth.get_block("latest")["timestamp"])
        for spec in GOOD:
            chainlink = specs.functions.cronNextTick(spec).call()
            ours = next_tick(spec, block_time // 60 * 60 - 1)
            assert chainlink == ours, (spec, block_time)
            checked += 1
    assert checked == 12 * len(GOOD)
