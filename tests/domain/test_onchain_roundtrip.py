"""What the contract stores decodes back to the same model, and our EIP-712 signatures are the
ones the contract accepts."""

from __future__ import annotations

from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, given, settings
from web3.logs import DISCARD

from autometa.chain.accounts import dev_role
from autometa.chain.contracts import autometa
from autometa.chain.deploy import register_assets, transact
from autometa.domain.eip712 import create_typed_data, sign_typed_data, status_typed_data
from autometa.domain.kinds import Status, StatusOp
from autometa.domain.workflow import WorkflowSpec

from .strategies import spec_bodies

SEED_BODY = {
    "trigger_type": 2,
    "trigger_data": {"token": "ethereum", "comparator": 0, "price_usd": 3200.0},
    "action_type": 0,
    "action_data": {"to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "amount_wei": "1000000000000000000"},
}


def _relay_create(chain, owner: LocalAccount, spec: WorkflowSpec) -> int:  # type: ignore[no-untyped-def]
    w3, core = chain.w3, autometa(chain.w3, chain.deployment.address)
    relayer = dev_role("relayer")
    transact(w3, owner, core.functions.deposit(), value=10**18)
    nonce = core.functions.nonces(owner.address).call()
    deadline = w3.eth.get_block("latest")["timestamp"] + 600
    typed = create_typed_data(spec, owner.address, nonce, deadline, 10**16, w3.eth.chain_id, core.address)
    sig = sign_typed_data(owner, typed)
    receipt = transact(
        w3,
        relayer,
        core.functions.createWorkflowFor(owner.address, spec.to_abi(), nonce, deadline, 10**16, sig),
    )
    (event,) = core.events.WorkflowCreated().process_receipt(receipt, errors=DISCARD)
    return int(event.args.workflowId)


def test_seed_workflow_roundtrips_through_the_contract(dev_chain) -> None:  # type: ignore[no-untyped-def]
    spec = WorkflowSpec.model_validate(SEED_BODY)
    owner = dev_role("user")
    core = autometa(dev_chain.w3, dev_chain.deployment.address)
    assert core.functions.hashSpec(spec.to_abi()).call()  # the contract can hash what we encode
    wid = _relay_create(dev_chain, owner, spec)
    view = core.functions.getWorkflow(wid).call()
    assert view[1] == owner.address
    assert view[2] == Status.ACTIVE
    assert WorkflowSpec.from_abi(view[6]) == spec.resolved()


def test_signed_pause_is_accepted(dev_chain) -> None:  # type: ignore[no-untyped-def]
    w3 = dev_chain.w3
    core = autometa(w3, dev_chain.deployment.address)
    owner = dev_role("user")
    wid = _relay_create(dev_chain, owner, WorkflowSpec.model_validate(SEED_BODY))
    nonce = core.functions.nonces(owner.address).call()
    deadline = w3.eth.get_block("latest")["timestamp"] + 600
    typed = status_typed_data(StatusOp.PAUSE, wid, owner.address, nonce, deadline, 0, w3.eth.chain_id, core.address)
    sig = sign_typed_data(owner, typed)
    transact(w3, dev_role("relayer"), core.functions.changeStatusBySig(wid, 0, nonce, deadline, 0, sig))
    assert core.functions.getWorkflow(wid).call()[2] == Status.PAUSED


@given(body=spec_bodies())
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_what_the_contract_stores_decodes_to_the_same_model(dev_chain, body) -> None:  # type: ignore[no-untyped-def]
    """Property: any valid spec, created on-chain, reads back equal (after on-chain defaults)."""
    w3, dep = dev_chain.w3, dev_chain.deployment
    core = autometa(w3, dep.address)
    now = w3.eth.get_block("latest")["timestamp"]
    # Ground the generated spec in this chain: tokens and call targets must be contracts,
    # and end times must lie ahead of the chain's clock.
    if body["action_type"] == 1:
        body["action_data"]["token"] = dep.token
    if body["action_type"] == 2:
        body["action_data"]["target"] = dep.token
    td = body["trigger_data"]
    if body["trigger_type"] == 1 and td.get("end"):
        td["start"], td["end"] = now + 10, now + 10 + (td["end"] - td["start"])
    spec = WorkflowSpec.model_validate(body)
    if body["trigger_type"] == 2:  # only assets the admin registered can be priced (issue 12 item 6)
        register_assets(w3, dev_role("admin"), dep.address, [td["token"]])
    owner = dev_role("user")
    receipt = transact(w3, owner, core.functions.createWorkflow(spec.to_abi()))
    (event,) = core.events.WorkflowCreated().process_receipt(receipt, errors=DISCARD)
    wid = event.args.workflowId
    assert WorkflowSpec.from_abi(event.args.spec) == spec.resolved()
    assert WorkflowSpec.from_abi(core.functions.getWorkflow(wid).call()[6]) == spec.resolved()
