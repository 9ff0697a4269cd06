"""GET /api/utils/admin/pending: the admin's changes waiting in the contract's timelock."""

from __future__ import annotations

from web3.logs import DISCARD

from autometa.chain.accounts import dev_role
from autometa.chain.contracts import autometa
from autometa.chain.deploy import DEV_TIMELOCK_SECONDS, transact
from autometa.domain.workflow import WorkflowSpec
from tests.api.conftest import USER, Api, deposit, seed_body


async def test_pending_admin_changes_are_listed_with_their_eta(api_embedded: Api) -> None:
    api = api_embedded
    w3, core = api.chain.w3, autometa(api.chain.w3, api.chain.deployment.address)
    reply = await api.client.get("/api/utils/admin/pending")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["changes"] == [] and body["timelock_seconds"] == DEV_TIMELOCK_SECONDS
    assert body["max_tip_wei"] == 2 * 10**9 and body["premium_bps"] == 1_000

    deposit(api.chain, USER, 10**18)  # a workflow exists: raises now wait in the timelock
    spec = WorkflowSpec.model_validate({k: v for k, v in seed_body().items() if k != "user_address"})
    transact(w3, USER, core.functions.createWorkflow(spec.to_abi()))
    receipt = transact(w3, dev_role("admin"), core.functions.setPremium(2_500))
    (queued,) = core.events.ChangeQueued().process_receipt(receipt, errors=DISCARD)

    reply = await api.client.get("/api/utils/admin/pending")
    (change,) = reply.json()["changes"]
    assert change["id"] == queued.args.changeId and change["kind"] == "premium" and change["premium_bps"] == 2_500
    assert change["eta"] == queued.args.eta and change["ready"] is False
    assert 0 < change["seconds_left"] <= DEV_TIMELOCK_SECONDS
    assert reply.json()["premium_bps"] == 1_000  # not applied yet


async def test_a_queued_chain_module_change_is_listed(api_embedded: Api) -> None:
    """Replacing the chain module can raise every fee: owners see it coming, with the new module."""
    from autometa.chain.deploy import deploy_chain_module
    from autometa.networks import ChainModule

    api = api_embedded
    w3, core = api.chain.w3, autometa(api.chain.w3, api.chain.deployment.address)
    deposit(api.chain, USER, 10**18)
    spec = WorkflowSpec.model_validate({k: v for k, v in seed_body().items() if k != "user_address"})
    transact(w3, USER, core.functions.createWorkflow(spec.to_abi()))
    module = deploy_chain_module(w3, dev_role("admin"), ChainModule.NONE)
    transact(w3, dev_role("admin"), core.functions.setChainModule(module))
    reply = await api.client.get("/api/utils/admin/pending")
    (change,) = reply.json()["changes"]
    assert change["kind"] == "chain_module" and change["chain_module"] == module, change
    assert module in change["description"] and change["ready"] is False
