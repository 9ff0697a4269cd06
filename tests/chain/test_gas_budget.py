"""Issue 12's gas budget for a batch, on a real anvil: a steady-state `executeBatch` of 50
oracle-verified PRICE runs (50 distinct owners, 50 distinct existing recipients, native action:
bench/gas.py's worst case) costs at most 32,000 gas per workflow, and what the runs are charged
(Σ RunExecuted.gasUsed) matches the receipt: the overhead constants are calibrated to the code."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from web3 import Web3
from web3.logs import DISCARD

from autometa.chain.accounts import dev_account, dev_role
from autometa.chain.anvil import Anvil
from autometa.chain.contracts import autometa
from autometa.chain.deploy import transact
from autometa.chain.devnet import setup_dev_stack
from autometa.chain.web3 import connect
from autometa.domain.workflow import WorkflowSpec
from autometa.worker.batch import batch_gas
from tests.worker.helpers import create, deposit

BATCH = 50
BUDGET_PER_WORKFLOW = 32_000  # issue 12 (bench/gas.py's batch50_native_gas_per_wf target)
MAX_RESIDUAL_PER_RUN = 20  # |receipt − Σ charged gas| / runs: the calibration's residual is ~0
GAS_LIMIT = 50_000
OWNERS = 10  # dev accounts 10..59 own the workflows, 60..109 receive
RECIPIENTS = OWNERS + BATCH


@pytest.fixture(scope="module")
def batch_chain() -> Iterator[tuple[Web3, str, list[int]]]:
    """A dev stack with ETH's feed and 50 repeating PRICE workflows that fire (ETH $3,250 > $3,000)."""
    with Anvil(accounts=RECIPIENTS + BATCH) as anvil:
        w3 = connect(anvil.url)
        address = setup_dev_stack(w3, assets=["ethereum"]).address
        ids = []
        for i in range(BATCH):
            owner = dev_account(OWNERS + i)
            spec = WorkflowSpec.model_validate(
                {
                    "trigger_type": 2,
                    "trigger_data": {"token": "ethereum", "comparator": 1, "price_usd": 3000},
                    "action_type": 0,
                    "action_data": {"to": dev_account(RECIPIENTS + i).address, "amount_wei": 10**12},
                    "max_runs": 1_000,
                    "gas_limit": GAS_LIMIT,
                    "max_fee_per_run_wei": 10**16,
                }
            )
            deposit(w3, address, owner, 10**18)
            ids.append(create(w3, address, owner, spec))
        yield w3, address, ids


def _batch(w3: Web3, address: str, ids: list[int], run_index: int) -> Any:
    core = autometa(w3, address)
    runs = [wf << 96 | run_index << 64 for wf in ids]
    gas = batch_gas(100_000 * len(runs), [GAS_LIMIT] * len(runs))
    return transact(w3, dev_role("executor"), core.functions.executeBatch(runs), gas=gas)


def test_a_batch_of_50_stays_within_the_gas_budget_and_is_charged_what_it_used(
    batch_chain: tuple[Web3, str, list[int]],
) -> None:
    w3, address, ids = batch_chain
    core = autometa(w3, address)
    _batch(w3, address, ids, 0)  # first runs: the executor's fee balance and the feed warm up
    receipt = _batch(w3, address, ids, 1)

    executed = core.events.RunExecuted().process_receipt(receipt, errors=DISCARD)
    assert len(executed) == BATCH and all(e.args.success for e in executed), "every run executed"
    assert not core.events.RunSkipped().process_receipt(receipt, errors=DISCARD)
    per_workflow = receipt["gasUsed"] / BATCH
    assert per_workflow <= BUDGET_PER_WORKFLOW, f"{per_workflow:.0f} gas per workflow"
    residual = receipt["gasUsed"] - sum(int(e.args.gasUsed) for e in executed)
    assert abs(residual) <= MAX_RESIDUAL_PER_RUN * BATCH, f"charged gas off the receipt by {residual}"
