"""The transaction sender with each signer, on a real anvil: 100 transactions exactly once; a
stuck transaction replaced; KMS outages (30 s mid-burst, longer than the retry window, a key
disabled mid-run) leave no half-sent transaction and no burnt nonce."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from web3 import AsyncWeb3

from autometa.chain.journal import MINED, InMemoryJournal
from autometa.chain.sender import SenderConfig, SigningFailed, TransactionSender
from autometa.chain.signers import AwsKmsSigner, Signer
from tests.signers.conftest import KINDS, fund
from tests.support.kms import KmsProxy

FAST = SenderConfig(poll_interval=0.05, replace_after_blocks=3, fee_bump_percent=15)
SINK = "0x000000000000000000000000000000000000dEaD"


def transfer(value: int = 1) -> dict[str, Any]:
    return {"to": SINK, "value": value, "gas": 21_000}


async def rpc(w3: AsyncWeb3[Any], method: str, *params: Any) -> Any:
    reply = await w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in reply, reply
    return reply.get("result")


async def assert_exactly_once(
    w3: AsyncWeb3[Any], sender: TransactionSender, journal: InMemoryJournal, signer: Signer, sent: list[Any]
) -> None:
    """Nonces 0..n-1 with no gap, each mined once, every journal entry mined, nothing else sent."""
    n = len(sent)
    assert sorted(s.nonce for s in sent) == list(range(n))
    receipts = await asyncio.gather(*(sender.wait(s, timeout=120) for s in sent))
    assert all(r["status"] == 1 for r in receipts)
    assert len({r["transactionHash"] for r in receipts}) == n
    assert await w3.eth.get_transaction_count(signer.address) == n  # type: ignore[arg-type]
    entries = journal.all()
    assert len(entries) == n and {e.status for e in entries} == {MINED}
    assert not [e for e in entries if e.purpose == "nonce-gap"]
    assert sender.in_flight() == []
    # Every transfer is on chain exactly once: the values (1..n) sum up.
    assert await w3.eth.get_balance(SINK) == n * (n + 1) // 2  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", KINDS)
async def test_100_transactions_from_10_tasks_exactly_once(
    kind: str, make_signer: Callable[..., Signer], w3: AsyncWeb3[Any]
) -> None:
    signer = make_signer(kind)
    await fund(w3, signer.address)
    journal = InMemoryJournal()
    sender = TransactionSender(w3, signer, journal=journal, config=FAST)
    assert sender.addresses == [signer.address]

    async def worker(task: int) -> list[Any]:
        return [await sender.send(transfer(task * 10 + i + 1), f"t{task}-{i}") for i in range(10)]

    batches = await asyncio.gather(*(worker(t) for t in range(10)))
    await assert_exactly_once(w3, sender, journal, signer, [s for b in batches for s in b])


@pytest.mark.parametrize("kind", KINDS)
async def test_stuck_transaction_is_replaced_by_each_signer(
    kind: str, make_signer: Callable[..., Signer], w3: AsyncWeb3[Any]
) -> None:
    signer = make_signer(kind)
    await fund(w3, signer.address)
    sender = TransactionSender(w3, signer, journal=InMemoryJournal(), config=FAST)
    await rpc(w3, "evm_setAutomine", False)
    sent = await sender.send(transfer(), "spiked")
    await rpc(w3, "anvil_setNextBlockBaseFeePerGas", hex(60 * 10**9))  # evicts it; a replacement is needed
    waiter = asyncio.create_task(sender.wait(sent, timeout=30))
    while not waiter.done():
        await rpc(w3, "evm_mine")
        await asyncio.sleep(0.1)
    receipt = await waiter
    assert receipt["status"] == 1 and sent.replacements >= 1
    assert receipt["transactionHash"].to_0x_hex() == sent.attempts[-1].tx_hash
    assert await w3.eth.get_transaction_count(signer.address) == 1  # type: ignore[arg-type]


@pytest.mark.slow
async def test_kms_outage_of_30_s_mid_burst(
    make_signer: Callable[..., Signer], kms_proxy: KmsProxy, w3: AsyncWeb3[Any]
) -> None:
    """KMS unreachable for 30 s while 10 tasks send 60 transactions: signing waits it out (with
    backoff, holding the key's lock, so no nonce is taken meanwhile); nothing is broadcast during
    the outage; afterwards every transaction is mined once with contiguous nonces."""
    signer = make_signer("kms", retry_for=60, backoff=(0.25, 4.0))
    await fund(w3, signer.address)
    journal = InMemoryJournal()
    sender = TransactionSender(w3, signer, journal=journal, config=FAST)
    sent: list[Any] = []

    async def worker(task: int) -> None:
        for i in range(6):
            sent.append(await sender.send(transfer(task * 6 + i + 1), f"t{task}-{i}"))

    burst = asyncio.gather(*(worker(t) for t in range(10)))
    while len(sent) < 20:
        await asyncio.sleep(0.02)
    kms_proxy.down()
    await asyncio.sleep(1.0)  # the sign in progress (if any) finishes or starts retrying
    count_at_outage = await w3.eth.get_transaction_count(signer.address, "pending")  # type: ignore[arg-type]
    t0 = time.monotonic()
    await asyncio.sleep(29.0)
    assert await w3.eth.get_transaction_count(signer.address, "pending") == count_at_outage  # type: ignore[arg-type]
    assert len(journal.all()) == count_at_outage  # nothing half-sent: no signature, no journal row
    kms_proxy.up()
    await asyncio.wait_for(burst, 120)
    assert time.monotonic() - t0 >= 29.0
    assert sum(n for (op, kind), n in kms_proxy.injected.items() if op == "Sign" and kind == "down") >= 3
    await assert_exactly_once(w3, sender, journal, signer, sent)


async def test_kms_throttling_mid_burst_is_waited_out(
    make_signer: Callable[..., Signer], kms_proxy: KmsProxy, w3: AsyncWeb3[Any]
) -> None:
    """KMS answers ThrottlingException to 40 calls in a row while 8 tasks send 40 transactions:
    every signature is retried with backoff and every transaction is mined once, no gap."""
    signer = make_signer("kms", retry_for=60, backoff=(0.05, 0.5))
    await fund(w3, signer.address)
    journal = InMemoryJournal()
    sender = TransactionSender(w3, signer, journal=journal, config=FAST)
    sent: list[Any] = []

    async def worker(task: int) -> None:
        for i in range(5):
            sent.append(await sender.send(transfer(task * 5 + i + 1), f"t{task}-{i}"))

    burst = asyncio.gather(*(worker(t) for t in range(8)))
    while len(sent) < 5:
        await asyncio.sleep(0.01)
    kms_proxy.throttle(40)
    await asyncio.wait_for(burst, 120)
    assert kms_proxy.injected[("Sign", "throttle")] == 40
    await assert_exactly_once(w3, sender, journal, signer, sent)


async def test_kms_down_past_the_retry_window_fails_sends_without_burning_nonces(
    make_signer: Callable[..., Signer], kms_proxy: KmsProxy, w3: AsyncWeb3[Any]
) -> None:
    signer = make_signer("kms", retry_for=1.0, backoff=(0.1, 0.3))
    await fund(w3, signer.address)
    journal = InMemoryJournal()
    sender = TransactionSender(w3, signer, journal=journal, config=FAST)
    sent = [await sender.send(transfer(i + 1), f"before-{i}") for i in range(5)]
    kms_proxy.down()
    outcomes = await asyncio.gather(
        *(sender.send(transfer(100), f"during-{i}") for i in range(4)), return_exceptions=True
    )
    assert all(isinstance(o, SigningFailed) for o in outcomes), outcomes
    assert "unavailable for 1 s" in str(outcomes[0])
    assert len(journal.all()) == 5  # the failed ones left nothing behind
    kms_proxy.up()
    sent += [await sender.send(transfer(i + 6), f"after-{i}") for i in range(5)]
    await assert_exactly_once(w3, sender, journal, signer, sent)


async def test_kms_key_disabled_mid_run_then_enabled_leaves_no_gap(
    make_signer: Callable[..., Signer], kms_admin: Any, w3: AsyncWeb3[Any]
) -> None:
    signer = make_signer("kms")
    assert isinstance(signer, AwsKmsSigner)
    await fund(w3, signer.address)
    journal = InMemoryJournal()
    sender = TransactionSender(w3, signer, journal=journal, config=FAST)
    sent = [await sender.send(transfer(i + 1), f"a{i}") for i in range(3)]
    key_id = signer.key_id.rsplit("/", 1)[-1]
    kms_admin.disable_key(KeyId=key_id)
    with pytest.raises(SigningFailed, match="DisabledException"):
        await sender.send(transfer(50), "while disabled")
    kms_admin.enable_key(KeyId=key_id)
    sent += [await sender.send(transfer(i + 4), f"b{i}") for i in range(3)]
    await assert_exactly_once(w3, sender, journal, signer, sent)


async def test_replacement_waits_for_kms_while_the_original_stands(
    make_signer: Callable[..., Signer], kms_proxy: KmsProxy, w3: AsyncWeb3[Any]
) -> None:
    """A stuck transaction whose replacement cannot be signed (KMS down): the original stays the
    transaction of its nonce; once KMS is back the replacement goes out and is mined once."""
    signer = make_signer("kms", retry_for=0.5, backoff=(0.1, 0.2))
    await fund(w3, signer.address)
    journal = InMemoryJournal()
    sender = TransactionSender(w3, signer, journal=journal, config=FAST)
    await rpc(w3, "evm_setAutomine", False)
    sent = await sender.send(transfer(), "stuck")
    await rpc(w3, "anvil_setNextBlockBaseFeePerGas", hex(60 * 10**9))
    kms_proxy.down()
    waiter = asyncio.create_task(sender.wait(sent, timeout=60))
    for _ in range(12):
        await rpc(w3, "evm_mine")
        await asyncio.sleep(0.3)
    assert not waiter.done() and sent.replacements == 0 and len(journal.all()) == 1
    kms_proxy.up()
    while not waiter.done():
        await rpc(w3, "evm_mine")
        await asyncio.sleep(0.1)
    receipt = await waiter
    assert receipt["status"] == 1 and sent.replacements >= 1
    assert await w3.eth.get_transaction_count(signer.address) == 1  # type: ignore[arg-type]
