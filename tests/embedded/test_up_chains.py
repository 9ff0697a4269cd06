"""`autometa up --chains 2` (issue 16): two dev chains with the contracts on each, one store,
one API serving both (GET /api/chains), the worker on both — and the seed flow passes on each
chain: deposit, create through the API with `?chain=`, the price trigger fires, and the
execution shows on that chain only."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from web3 import Web3

from autometa.chain.accounts import dev_role
from autometa.chain.contracts import autometa
from autometa.chain.deploy import Deployment, set_dev_price, transact
from autometa.embedded.devchain import rpc_url_file
from tests.embedded.test_up_and_demo import Up, wait_for

CHAIN_IDS = (31337, 31338)


@pytest.fixture
def up2(tmp_path: Path) -> Iterator[Up]:
    runner = Up(tmp_path / "data", "--chains", "2", ready_s=90, check_log=False)
    yield runner
    if runner.proc is not None:
        runner.proc.kill()
        runner.proc.wait()


def test_the_seed_flow_passes_on_each_chain_of_up_chains_2(up2: Up) -> None:
    user, recipient = dev_role("user"), dev_role("recipient")
    up2.start()
    served = {c.chain_id: c for c in up2.client.chains()}
    assert sorted(served) == list(CHAIN_IDS)
    w3s, deps = {}, {}
    for chain_id in CHAIN_IDS:
        w3s[chain_id] = Web3(Web3.HTTPProvider(rpc_url_file(up2.data_dir, chain_id).read_text().strip()))
        assert w3s[chain_id].eth.chain_id == chain_id
        dep = Deployment.load(up2.data_dir, chain_id)
        assert dep is not None and served[chain_id].contract == dep.address
        deps[chain_id] = dep
        transact(w3s[chain_id], user, autometa(w3s[chain_id], dep.address).functions.deposit(), value=2 * 10**18)
    seed = {
        "user_address": user.address,
        "trigger_type": 2,
        "trigger_data": {"token": "ethereum", "comparator": 0, "price_usd": 3200},
        "action_type": 0,
        "action_data": {"to": recipient.address, "amount_wei": "1000000000000000000"},
    }
    created = {cid: up2.client.on(cid).create_signed(user, seed).workflow_id for cid in CHAIN_IDS}
    done: set[int] = set()
    for chain_id in CHAIN_IDS:  # the price falls on one chain at a time
        w3, dep, api = w3s[chain_id], deps[chain_id], up2.client.on(chain_id)
        before = w3.eth.get_balance(recipient.address)
        set_dev_price(w3, dev_role("admin"), dep.feeds["ethereum"], Decimal("3198.15"))
        runs = wait_for(
            lambda api=api, wid=created[chain_id]: [
                e for e in api.executions(workflow_id=wid).items if e.status == "success"
            ],
            timeout=60,
        )
        assert len(runs) == 1
        assert w3.eth.get_transaction_receipt(runs[0].tx_hash).status == 1  # mined on this chain
        assert w3.eth.get_balance(recipient.address) - before == 10**18
        assert autometa(w3, dep.address).functions.getWorkflow(created[chain_id]).call()[3] == 1
        done.add(chain_id)
        for other in set(CHAIN_IDS) - done:  # the other chain's workflow has not run
            rows = up2.client.on(other).executions(workflow_id=created[other]).items
            assert [e for e in rows if e.status == "success"] == []
            assert autometa(w3s[other], deps[other].address).functions.getWorkflow(created[other]).call()[3] == 0
    out = up2.stop()
    assert "(chain id 31337)" in out and "(chain id 31338)" in out
