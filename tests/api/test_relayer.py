"""Signed workflow creation and status changes through the relayer, on the real dev chain."""

from __future__ import annotations

from typing import Any

from eth_account import Account

from autometa.chain.accounts import dev_account
from autometa.chain.contracts import autometa
from autometa.chain.deploy import transact
from autometa.domain.eip712 import create_typed_data, sign_typed_data
from autometa.domain.workflow import WorkflowSpec
from tests.api.conftest import RELAYER, USER, Api, chain_now, deposit, escrow_of, seed_body

ESCROW = 5 * 10**18


def _relayer_state(api: Api) -> tuple[int, int]:
    w3 = api.chain.w3
    return w3.eth.get_transaction_count(RELAYER.address), w3.eth.get_balance(RELAYER.address)


def _signed(
    api: Api, account: Any, body: dict[str, Any], *, nonce: int = 0, deadline: int | None = None, fee: int = 10**15
) -> dict[str, Any]:
    """A create request signed locally (no prepare), for intents the relayer must refuse."""
    spec = WorkflowSpec.model_validate({k: v for k, v in body.items() if k != "user_address"})
    deadline = deadline if deadline is not None else chain_now(api.chain) + 600
    typed = create_typed_data(spec, body["user_address"], nonce, deadline, fee, 31337, api.chain.deployment.address)
    return {
        **body,
        "signature": sign_typed_data(account, typed),
        "nonce": nonce,
        "deadline": deadline,
        "max_relayer_fee_wei": str(fee),
    }


async def test_seed_body_without_signature_is_refused_with_guidance(api_embedded: Api) -> None:
    before = _relayer_state(api_embedded)
    reply = await api_embedded.client.post("/api/workflow/create", json=seed_body())
    assert reply.status_code == 401
    body = reply.json()
    assert body["error"] == "signature_required" and body["field"] == "signature"
    assert "/api/workflow/prepare" in body["message"] and "eth_signTypedData_v4" in body["message"]
    assert _relayer_state(api_embedded) == before


async def test_prepare_sign_create_credits_the_relayer(api: Api) -> None:
    deposit(api.chain, USER, ESCROW)
    relayer_escrow = escrow_of(api.chain, RELAYER.address)
    prepared = (await api.client.post("/api/workflow/prepare", json=seed_body())).json()
    typed = prepared["typed_data"]
    assert typed["primaryType"] == "CreateWorkflow" and typed["message"]["owner"] == USER.address
    assert 0 < int(prepared["max_relayer_fee_wei"]) <= api.settings.MAX_RELAYER_FEE_WEI
    assert prepared["deadline"] > chain_now(api.chain)
    reply = await api.client.post(
        "/api/workflow/create",
        json={
            **seed_body(),
            "signature": sign_typed_data(USER, typed),
            "nonce": prepared["nonce"],
            "deadline": prepared["deadline"],
            "max_relayer_fee_wei": prepared["max_relayer_fee_wei"],
        },
    )
    assert reply.status_code == 200, reply.text
    out = reply.json()
    assert out["workflow_id"] >= 1 and out["tx_hash"].startswith("0x") and len(out["tx_hash"]) == 66
    fee = int(out["relayer_fee_wei"])
    assert 0 < fee <= int(prepared["max_relayer_fee_wei"])
    assert escrow_of(api.chain, RELAYER.address) == relayer_escrow + fee
    assert escrow_of(api.chain, USER.address) == ESCROW - fee
    core = autometa(api.chain.w3, api.chain.deployment.address)
    assert core.functions.getWorkflow(out["workflow_id"]).call()[1] == USER.address
    # the workflow is readable at once (from the chain until the indexer catches up)
    shown = (await api.client.get(f"/api/workflow/{out['workflow_id']}")).json()
    assert shown["owner"] == USER.address and shown["status"] == "active"
    assert shown["escrow"]["runway_runs"] == (ESCROW - fee) // (10**16 + 10**18)


async def test_typed_client_create_pause_resume_cancel(api_embedded: Api) -> None:
    api = api_embedded
    deposit(api.chain, USER, ESCROW)
    created = await api.typed.create_signed(USER, seed_body())
    wid = created.workflow_id
    for op, status in (("pause", "paused"), ("resume", "active"), ("cancel", "cancelled")):
        changed = await api.typed.change_status_signed(USER, wid, op)  # type: ignore[arg-type]
        assert changed.status == status and changed.relayer_fee_wei > 0
    reply = await api.client.post(f"/api/workflow/{wid}/resume/prepare", json={"user_address": USER.address})
    assert reply.status_code == 409  # cancelled for good


async def test_refused_intents_send_nothing(api_embedded: Api) -> None:
    api = api_embedded
    deposit(api.chain, USER, ESCROW)
    stranger = Account.create()
    body = seed_body()
    before = _relayer_state(api)
    cases = {
        "forged": (_signed(api, stranger, body), 401, "signature"),
        "another user's address": (_signed(api, USER, seed_body(dev_account(5).address)), 401, "signature"),
        "expired": (_signed(api, USER, body, deadline=chain_now(api.chain) - 1), 400, "deadline"),
        "future nonce": (_signed(api, USER, body, nonce=7), 409, "nonce"),
        "fee above the cap": (
            _signed(api, USER, body, fee=api.settings.MAX_RELAYER_FEE_WEI + 1),
            422,
            "max_relayer_fee_wei",
        ),
        "zero fee": (_signed(api, USER, body, fee=0), 422, "max_relayer_fee_wei"),
        "fee below the gas": (_signed(api, USER, body, fee=1), 402, "max_relayer_fee_wei"),
    }
    for name, (request, status, field) in cases.items():
        reply = await api.client.post("/api/workflow/create", json=request)
        assert (reply.status_code, reply.json()["field"]) == (status, field), (name, reply.text)
    assert _relayer_state(api) == before


async def test_replayed_nonce_is_refused(api_embedded: Api) -> None:
    api = api_embedded
    deposit(api.chain, USER, ESCROW)
    request = _signed(api, USER, seed_body())
    first = await api.client.post("/api/workflow/create", json=request)
    assert first.status_code == 200, first.text
    before = _relayer_state(api)
    again = await api.client.post("/api/workflow/create", json=request)
    assert again.status_code == 409 and again.json()["field"] == "nonce"
    assert _relayer_state(api) == before


async def test_empty_escrow_is_refused_before_any_gas(api: Api) -> None:
    owner = Account.create()  # a throwaway key: no escrow at all
    before = _relayer_state(api)
    prepared = await api.client.post("/api/workflow/prepare", json=seed_body(owner.address))
    assert prepared.status_code == 402 and prepared.json()["error"] == "insufficient_escrow"
    reply = await api.client.post("/api/workflow/create", json=_signed(api, owner, seed_body(owner.address)))
    assert reply.status_code == 402 and reply.json()["field"] == "max_relayer_fee_wei"
    assert "deposit" in reply.json()["message"]
    assert _relayer_state(api) == before


async def test_status_change_by_someone_else_is_refused(api_embedded: Api) -> None:
    api = api_embedded
    deposit(api.chain, USER, ESCROW)
    wid = (await api.typed.create_signed(USER, seed_body())).workflow_id
    other = dev_account(6)
    reply = await api.client.post(f"/api/workflow/{wid}/pause/prepare", json={"user_address": other.address})
    assert reply.status_code == 403 and reply.json()["field"] == "user_address"
    missing = await api.client.post("/api/workflow/999/pause/prepare", json={"user_address": USER.address})
    assert missing.status_code == 404


async def test_a_signature_the_owner_revoked_is_refused(api_embedded: Api) -> None:
    """Issue 12 item 8: the owner invalidates their outstanding signatures directly on the
    contract; the relayer then refuses the old one (its nonce is stale) and sends nothing."""
    api = api_embedded
    deposit(api.chain, USER, ESCROW)
    request = _signed(api, USER, seed_body())  # nonce 0, not sent yet
    transact(api.chain.w3, USER, autometa(api.chain.w3, api.chain.deployment.address).functions.invalidateNonces())
    before = _relayer_state(api)
    reply = await api.client.post("/api/workflow/create", json=request)
    assert reply.status_code == 409 and reply.json()["field"] == "nonce", reply.text
    assert "already used" in reply.json()["message"]
    assert _relayer_state(api) == before
