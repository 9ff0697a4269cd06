"""The API behind a rate-limited or failing RPC endpoint (the counting proxy of tests/support in
front of the dev chain): 429s are retried (Retry-After honoured), a dead node is still a quick
503 with the reason, a broadcast the node did not take gives its nonce back, and a request the
relayer has sent is never answered as failed — 202 with the hash and a status URL instead."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from web3.logs import DISCARD

from autometa.api.chain import ChainGateway
from autometa.chain.contracts import autometa
from autometa.chain.sender import NotBroadcast, TransactionSender
from autometa.chain.web3 import RpcRetry, RpcUnavailable, connect_async
from autometa.client import RelayPending
from autometa.config import Settings
from tests.api.conftest import RECIPIENT, RELAYER, USER, Api, close_api, deposit, open_api, seed_body
from tests.conftest import DevChain
from tests.support.coingecko_stub import CoinGeckoStub
from tests.support.rpc_proxy import RpcProxy


@pytest.fixture
def proxy(dev_chain: DevChain) -> Iterator[RpcProxy]:
    with RpcProxy(dev_chain.url) as p:
        yield p


@pytest.fixture
async def api_via_proxy(
    proxy: RpcProxy, dev_chain: DevChain, coingecko: CoinGeckoStub, tmp_path: Path
) -> AsyncIterator[Api]:
    made, prefix = await open_api("embedded", dev_chain, coingecko, tmp_path, None, MOONBASE_RPC=proxy.url)
    try:
        yield made
    finally:
        await close_api(made, prefix)


async def test_rate_limited_reads_are_retried_after_retry_after(proxy: RpcProxy) -> None:
    proxy.rate_limit(10, retry_after=1)
    w3 = connect_async(proxy.url, retry=RpcRetry(attempts=10, budget_s=20))
    started = time.monotonic()
    numbers = await asyncio.gather(*(w3.eth.block_number for _ in range(40)))
    elapsed = time.monotonic() - started
    await w3.provider.disconnect()  # type: ignore[attr-defined]
    assert len(numbers) == 40 and all(n >= 0 for n in numbers)
    assert proxy.limited["eth_blockNumber"] > 0  # the limit was hit, and every call still succeeded
    assert elapsed >= 2.5  # 40 calls at 10/s: the waits followed Retry-After instead of hammering


async def test_a_long_retry_after_is_cut_to_the_longest_wait(proxy: RpcProxy) -> None:
    proxy.rate_limit(5, retry_after=60)  # a provider asking for a minute: the budget decides instead
    w3 = connect_async(proxy.url, retry=RpcRetry(attempts=10, budget_s=20, max_wait_s=2))
    started = time.monotonic()
    numbers = await asyncio.gather(*(w3.eth.block_number for _ in range(8)))
    await w3.provider.disconnect()  # type: ignore[attr-defined]
    assert len(numbers) == 8 and proxy.limited["eth_blockNumber"] > 0
    assert time.monotonic() - started < 15


async def test_chain_id_is_asked_once(proxy: RpcProxy, dev_chain: DevChain) -> None:
    w3 = connect_async(proxy.url)
    core = autometa(w3, dev_chain.deployment.address)  # type: ignore[arg-type]
    for _ in range(5):
        await core.functions.nonces(USER.address).call()  # web3 validates the chain id before each call
    await w3.provider.disconnect()  # type: ignore[attr-defined]
    assert proxy.calls["eth_call"] == 5 and proxy.calls["eth_chainId"] == 1


async def test_a_dead_node_fails_fast_with_the_reason() -> None:
    w3 = connect_async("http://127.0.0.1:1", retry=RpcRetry(attempts=4, budget_s=3))
    started = time.monotonic()
    with pytest.raises(RpcUnavailable, match="eth_blockNumber"):
        await w3.eth.block_number
    assert time.monotonic() - started < 4


async def test_dead_node_prepare_is_a_quick_503(dev_chain: DevChain, coingecko: CoinGeckoStub, tmp_path: Path) -> None:
    down, prefix = await open_api(
        "embedded", dev_chain, coingecko, tmp_path, None, MOONBASE_RPC="http://127.0.0.1:1", RPC_RETRY_BUDGET_S=2
    )
    try:
        started = time.monotonic()
        reply = await down.client.post("/api/workflow/prepare", json=seed_body())
        assert reply.status_code == 503 and reply.json()["error"] == "chain_unavailable", reply.text
        assert "ClientConnectorError" in reply.json()["message"]
        assert time.monotonic() - started < 5
    finally:
        await close_api(down, prefix)


async def test_a_rate_limited_broadcast_gives_its_nonce_back(proxy: RpcProxy, dev_chain: DevChain) -> None:
    w3 = connect_async(proxy.url, retry=RpcRetry(attempts=2, budget_s=2))
    sender = TransactionSender(w3, RELAYER)
    first = await sender.send({"to": RECIPIENT, "value": 1, "gas": 21_000}, "first")
    proxy.fault("eth_sendRawTransaction", "error", status=429)  # every try refused for 2 s: not sent
    with pytest.raises(NotBroadcast):
        await sender.send({"to": RECIPIENT, "value": 1, "gas": 21_000}, "refused")
    assert proxy.injected_for("eth_sendRawTransaction") >= 2
    proxy.clear()
    again = await sender.send({"to": RECIPIENT, "value": 1, "gas": 21_000}, "after")
    assert again.nonce == first.nonce + 1  # no hole left behind, so nothing to fill
    await sender.wait(again, timeout=30)
    await w3.provider.disconnect()  # type: ignore[attr-defined]


async def test_a_sent_create_is_answered_202_then_followed_to_mined(api_via_proxy: Api) -> None:
    api = api_via_proxy
    deposit(api.chain, USER, 10**18)
    relayer = api.services.relayer
    assert relayer is not None
    relayer.config = replace(relayer.config, wait_timeout_s=1.0)
    api.chain.w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    prepared = await api.typed.prepare_create(seed_body())
    from autometa.client._base import signed_create

    reply = await api.client.post("/api/workflow/create", json=signed_create(seed_body(), prepared, USER))
    assert reply.status_code == 202, reply.text
    pending = reply.json()
    assert pending["state"] == "pending" and pending["tx_hash"].startswith("0x") and pending["kind"] == "create"
    assert reply.headers["Location"] == pending["status_url"] == f"/api/workflow/tx/{pending['tx_hash']}"
    status = (await api.client.get(pending["status_url"])).json()
    assert status["state"] == "pending" and status["owner"] == USER.address
    api.chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    for _ in range(50):
        status = (await api.client.get(pending["status_url"])).json()
        if status["state"] != "pending":
            break
        await asyncio.sleep(0.1)
    receipt = api.chain.w3.eth.get_transaction_receipt(pending["tx_hash"])
    core = autometa(api.chain.w3, api.chain.deployment.address)
    (event,) = core.events.WorkflowCreated().process_receipt(receipt, errors=DISCARD)
    assert status["state"] == "mined" and status["workflow_id"] == int(event.args.workflowId)
    assert int(status["relayer_fee_wei"]) > 0 and status["block_number"] == receipt["blockNumber"]
    unknown = await api.client.get("/api/workflow/tx/0x" + "ab" * 32)
    assert unknown.status_code == 404


async def test_chain_failures_after_the_broadcast_are_a_202_never_a_503(api_via_proxy: Api, proxy: RpcProxy) -> None:
    api = api_via_proxy
    deposit(api.chain, USER, 10**18)
    relayer = api.services.relayer
    assert relayer is not None
    relayer.config = replace(relayer.config, wait_timeout_s=2.0)
    api.typed.poll_interval = 0.2
    api.typed.follow_timeout = 1.0
    # Every receipt read fails (retries included) until cleared: the node has the transaction.
    proxy.fault("eth_getTransactionReceipt", "error", status=503)
    with pytest.raises(RelayPending) as pending:
        await api.typed.create_signed(USER, seed_body())
    tx_hash = pending.value.pending.tx_hash
    assert pending.value.status == 202 and tx_hash.startswith("0x")
    # it was created all along
    assert api.chain.w3.eth.get_transaction_receipt(tx_hash)["status"] == 1  # type: ignore[arg-type]
    proxy.clear()
    status = await api.typed.relayed_tx(tx_hash)
    assert status.state == "mined" and status.workflow_id is not None
    # and a client following the 202 gets the 200 result once the node answers again
    api.typed.follow_timeout = 30
    created = await api.typed.create_signed(USER, seed_body())
    assert created.workflow_id == status.workflow_id + 1


async def test_a_restarted_api_follows_what_it_sent(
    dev_chain: DevChain, coingecko: CoinGeckoStub, tmp_path: Path
) -> None:
    """The API stops with a relayed create in flight and the node forgets it; the next API (same
    journal) resumes following it and rebroadcasts it (nobody else would), so its status URL ends
    mined."""
    deposit(dev_chain, USER, 10**18)
    first, prefix = await open_api("embedded", dev_chain, coingecko, tmp_path, None)
    try:
        assert first.services.relayer is not None
        first.services.relayer.config = replace(first.services.relayer.config, wait_timeout_s=0.5)
        dev_chain.w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
        first.typed.follow_timeout = 0.5
        with pytest.raises(RelayPending) as pending:
            await first.typed.create_signed(USER, seed_body())
    finally:
        await close_api(first, prefix)
    tx_hash = pending.value.pending.tx_hash
    dev_chain.w3.provider.make_request("anvil_dropTransaction", [tx_hash])  # type: ignore[arg-type]
    second, prefix = await open_api("embedded", dev_chain, coingecko, tmp_path, None)
    try:
        status = None
        for _ in range(60):
            dev_chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            status = await second.typed.relayed_tx(tx_hash)
            if status.state != "pending":
                break
            await asyncio.sleep(0.25)
        assert status is not None and status.state == "mined" and status.workflow_id is not None, status
        assert dev_chain.w3.eth.get_transaction_receipt(status.tx_hash)["status"] == 1  # type: ignore[arg-type]
    finally:
        await close_api(second, prefix)


async def test_a_contract_wallet_is_looked_up_once_an_eoa_every_time(proxy: RpcProxy, dev_chain: DevChain) -> None:
    """Issue 21: what does not change is cached — a wallet's code once seen; "no code" never (a
    counterfactual wallet may be deployed at any moment)."""
    settings = Settings(NETWORK="dev", MOONBASE_RPC=proxy.url, REGISTRY_ADDRESS=dev_chain.deployment.address)
    gateway = ChainGateway.from_settings(settings)
    try:
        for _ in range(3):
            assert await gateway.has_code(dev_chain.deployment.address)
        assert proxy.calls["eth_getCode"] == 1
        for _ in range(3):
            assert not await gateway.has_code(USER.address)
        assert proxy.calls["eth_getCode"] == 4
        assert await gateway.has_code(dev_chain.deployment.address, max_age=0)  # expired: asked again
        assert proxy.calls["eth_getCode"] == 5
    finally:
        await gateway.aclose()
