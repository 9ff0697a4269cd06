"""Several RPC endpoints per chain: two fault-injecting proxies in front of one real anvil. Reads
fail over and a cooled-down endpoint comes back; transactions sent while the first endpoint drops
broadcasts it has acted on, and then dies, are all mined once, with contiguous nonces."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from web3 import AsyncWeb3

from autometa.chain.accounts import dev_account
from autometa.chain.anvil import Anvil
from autometa.chain.journal import MINED, InMemoryJournal
from autometa.chain.sender import SenderConfig, TransactionSender
from autometa.chain.web3 import RetryingHTTPProvider, RpcRetry, connect, connect_async
from autometa.config import ConfigError, load_settings
from tests.support.rpc_proxy import RpcProxy

FAST = SenderConfig(poll_interval=0.05, replace_after_blocks=3, fee_bump_percent=15)
SINK = "0x000000000000000000000000000000000000dEaD"


@pytest.fixture
def anvil() -> Iterator[Anvil]:
    with Anvil(accounts=3) as node:
        yield node


@pytest.fixture
def proxies(anvil: Anvil) -> Iterator[tuple[RpcProxy, RpcProxy]]:
    with RpcProxy(anvil.url) as a, RpcProxy(anvil.url) as b:
        yield a, b


@pytest.fixture
async def pair(proxies: tuple[RpcProxy, RpcProxy]) -> AsyncIterator[AsyncWeb3[Any]]:
    a, b = proxies
    w3 = connect_async(
        f"{a.url},{b.url}", timeout=5, retry=RpcRetry(attempts=4, budget_s=5), failover_after=1, cooldown_s=0.5
    )
    yield w3
    await w3.provider.disconnect()  # type: ignore[attr-defined]


def provider(w3: AsyncWeb3[Any]) -> RetryingHTTPProvider:
    assert isinstance(w3.provider, RetryingHTTPProvider)
    return w3.provider


async def test_reads_fail_over_and_a_cooled_down_endpoint_comes_back(
    proxies: tuple[RpcProxy, RpcProxy], pair: AsyncWeb3[Any]
) -> None:
    a, b = proxies
    head = await pair.eth.block_number
    assert a.calls["eth_blockNumber"] == 1 and b.calls["eth_blockNumber"] == 0  # the first listed is preferred
    a.fault("*", "error", status=503)
    for _ in range(5):
        assert await pair.eth.block_number == head
    health = {h["url"]: h for h in provider(pair).pool.health()}
    assert health[a.url]["available"] is False and health[b.url]["errors"] == 0
    assert b.calls["eth_blockNumber"] == 5  # every read answered, by the second endpoint
    a.clear()
    await asyncio.sleep(0.6)  # the cool-down ends: the first endpoint is usable again
    assert provider(pair).pool.health()[0]["available"] is True
    b.fault("*", "reset")
    before = a.calls["eth_blockNumber"]
    assert await pair.eth.block_number == head
    assert a.calls["eth_blockNumber"] == before + 1


async def test_every_endpoint_down_is_an_error_naming_the_failure(
    proxies: tuple[RpcProxy, RpcProxy], pair: AsyncWeb3[Any]
) -> None:
    for proxy in proxies:
        proxy.fault("*", "error", status=502)
    with pytest.raises(ConnectionError, match="HTTP 502"):
        await pair.eth.block_number


async def test_transactions_survive_an_endpoint_that_drops_broadcasts_then_dies(
    anvil: Anvil, proxies: tuple[RpcProxy, RpcProxy], pair: AsyncWeb3[Any]
) -> None:
    a, b = proxies
    journal = InMemoryJournal()
    account = dev_account(1)
    sender = TransactionSender(pair, account, journal=journal, config=FAST)
    sent = []
    for i in range(30):
        if i == 10:  # the node takes the broadcast, the client never hears back: on to the second
            a.fault("eth_sendRawTransaction", "drop")
        if i == 15:  # the same on the second, once the first is out of its cool-down
            a.clear()
            await asyncio.sleep(0.6)
            b.fault("eth_sendRawTransaction", "drop", times=1)
        if i == 20:
            a.stop()  # the first endpoint is gone for good
        sent.append(await sender.send({"to": SINK, "value": i + 1, "gas": 21_000}, f"tx-{i}"))
    assert a.injected_for("eth_sendRawTransaction", "drop") == 1
    assert b.injected_for("eth_sendRawTransaction", "drop") == 1
    receipts = await asyncio.gather(*(sender.wait(s, timeout=30) for s in sent))
    assert all(r["status"] == 1 for r in receipts)
    assert [s.nonce for s in sent] == list(range(30))  # no gap, no nonce used twice
    assert len({r["transactionHash"] for r in receipts}) == 30
    direct = connect(anvil.url)
    assert direct.eth.get_transaction_count(account.address) == 30  # nothing else was sent
    values = sorted(int(direct.eth.get_transaction(r["transactionHash"])["value"]) for r in receipts)
    assert values == list(range(1, 31))  # each payment exactly once
    assert {e.status for e in journal.all()} == {MINED} and len(journal.all()) == 30


def test_the_sync_connection_fails_reads_over(anvil: Anvil) -> None:
    with RpcProxy(anvil.url) as a, RpcProxy(anvil.url) as b:
        w3 = connect(f"{a.url},{b.url}", timeout=5)
        head = w3.eth.block_number
        a.stop()
        assert w3.eth.block_number == head
        assert b.calls["eth_blockNumber"] == 1


def test_the_setting_takes_a_comma_separated_list() -> None:
    settings = load_settings(_env_file=None, MOONBASE_RPC="https://one.example/v2/k, https://two.example/")
    assert settings.rpc_urls == ["https://one.example/v2/k", "https://two.example"]
    assert load_settings(_env_file=None, RPC_URL="http://127.0.0.1:8545").rpc_urls == ["http://127.0.0.1:8545"]
    for bad, why in (("http://a,ftp://b", "not an http"), ("http://a,http://a", "twice"), (" , ", "no endpoint")):
        with pytest.raises(ConfigError, match=f"MOONBASE_RPC.*{why}"):
            load_settings(_env_file=None, MOONBASE_RPC=bad)


def test_the_sync_connection_waits_out_429_retry_after(anvil: Anvil) -> None:
    """The indexer's connection on a rate-limited endpoint: throttled, never failing."""
    with RpcProxy(anvil.url) as proxy:
        proxy.rate_limit(5, retry_after=1)
        w3 = connect(proxy.url, timeout=5)
        heads = [w3.eth.block_number for _ in range(15)]
        assert len(heads) == 15 and proxy.limited["eth_blockNumber"] > 0
