"""TransactionSender against a real anvil: nonces under concurrency, replacement of stuck and
dropped transactions, recovery from an outside sender and from a restart, decoded reverts."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import encode
from eth_utils import function_signature_to_4byte_selector
from structlog.testing import capture_logs
from web3 import AsyncWeb3

from autometa.chain.accounts import dev_account
from autometa.chain.anvil import Anvil
from autometa.chain.contracts import autometa_async
from autometa.chain.fees import GWEI, FeePolicy, Fees
from autometa.chain.heads import NewHeads, ws_url_for
from autometa.chain.journal import (
    FAILED,
    MINED,
    PENDING,
    REPLACED,
    InMemoryJournal,
    JournalEntry,
    StoreJournal,
)
from autometa.chain.nonces import BroadcastErrorKind, classify_broadcast_error
from autometa.chain.revert import TransactionReverted, decode_revert
from autometa.chain.sender import FeeCapBelowBaseFee, RawReceipt, SenderConfig, TransactionSender
from autometa.chain.web3 import connect_async
from tests.support.rpc_proxy import RpcProxy
from tests.support.services import PrivatePostgres

FAST = SenderConfig(poll_interval=0.05, replace_after_blocks=3, fee_bump_percent=15)
SINK = "0x000000000000000000000000000000000000dEaD"


def transfer(value: int = 1) -> dict[str, Any]:
    return {"to": SINK, "value": value, "gas": 21_000}


@pytest.fixture
def anvil() -> Iterator[Anvil]:
    """A private anvil: these tests change mining mode, base fee and gas limit."""
    with Anvil(accounts=3) as node:
        yield node


@pytest.fixture
async def connect() -> AsyncIterator[Any]:
    """`connect_async`, with every provider's HTTP session closed after the test."""
    made: list[AsyncWeb3[Any]] = []

    def make(url: str) -> AsyncWeb3[Any]:
        made.append(connect_async(url))
        return made[-1]

    yield make
    for w3 in made:
        await w3.provider.disconnect()  # type: ignore[attr-defined]


async def rpc(w3: AsyncWeb3[Any], method: str, *params: Any) -> Any:
    reply = await w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in reply, reply
    return reply.get("result")


async def until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Wait for `check` (bounded: a sender that never acts fails the test by name)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out after {timeout} s waiting for {what}"
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def miner(w3: AsyncWeb3[Any], every: float = 0.1) -> AsyncIterator[None]:
    """Mine a block every `every` seconds while inside."""

    async def loop() -> None:
        while True:
            await rpc(w3, "evm_mine")
            await asyncio.sleep(every)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# ----------------------------------------------------------------------------- nonces


async def test_100_transactions_from_10_tasks_get_contiguous_nonces(anvil: Anvil, connect: Any) -> None:
    w3 = connect(anvil.url)
    journal = InMemoryJournal()
    sender = TransactionSender(w3, dev_account(1), journal=journal, config=FAST)

    async def worker(task: int) -> list[Any]:
        return [await sender.send(transfer(task * 10 + i + 1), f"t{task}-{i}") for i in range(10)]

    batches = await asyncio.gather(*(worker(t) for t in range(10)))
    sent = [s for batch in batches for s in batch]
    assert sorted(s.nonce for s in sent) == list(range(100))
    receipts = await asyncio.gather(*(sender.wait(s) for s in sent))
    assert all(r["status"] == 1 for r in receipts)
    assert len({r["transactionHash"] for r in receipts}) == 100
    assert await w3.eth.get_transaction_count(dev_account(1).address) == 100
    entries = journal.all()
    assert len(entries) == 100 and {e.status for e in entries} == {MINED}
    assert sender.in_flight() == []


async def test_nonce_recovered_after_a_transaction_sent_outside_the_sender(anvil: Anvil, connect: Any) -> None:
    w3 = connect(anvil.url)
    account = dev_account(1)
    journal = InMemoryJournal()
    sender = TransactionSender(w3, account, journal=journal, config=FAST)
    first = await sender.send_and_wait(transfer(), "first")
    assert first["status"] == 1

    # The same key sends behind the sender's back: nonce 1 is used.
    outside = account.sign_transaction(
        {**transfer(7), "nonce": 1, "chainId": 31337, "maxFeePerGas": 10 * GWEI, "maxPriorityFeePerGas": GWEI}
    )
    await w3.eth.send_raw_transaction(outside.raw_transaction)

    sent = await sender.send(transfer(2), "second")
    assert sent.nonce == 2
    assert (await sender.wait(sent))["status"] == 1
    statuses = sorted((e.nonce, e.status) for e in journal.all())
    assert statuses == [(0, MINED), (1, FAILED), (2, MINED)]  # the refused broadcast is marked, not left open
    # and the next one follows on without a gap
    assert (await sender.send(transfer(3), "third")).nonce == 3


async def test_refused_broadcast_releases_its_nonce(anvil: Anvil, connect: Any) -> None:
    w3 = connect(anvil.url)
    sender = TransactionSender(w3, dev_account(1), journal=InMemoryJournal(), config=FAST)
    too_much = {"to": SINK, "value": 10**30, "gas": 21_000}  # more than the account holds
    with pytest.raises(Exception, match="(?i)insufficient|funds|balance"):
        await sender.send(too_much, "broke")
    sent = await sender.send(transfer(), "fine")
    assert sent.nonce == 0
    assert (await sender.wait(sent))["status"] == 1


# ----------------------------------------------------------------------------- stuck & dropped


async def test_stuck_transaction_is_replaced_with_bumped_fees(anvil: Anvil, connect: Any) -> None:
    """Not included for `replace_after_blocks` blocks (it cannot fit in a block) → replaced with
    the same nonce and ≥ 15 % higher fees; the replacement is mined, the original marked replaced."""
    w3 = connect(anvil.url)
    journal = InMemoryJournal()
    sender = TransactionSender(w3, dev_account(1), journal=journal, config=FAST)
    await rpc(w3, "evm_setAutomine", False)
    sent = await sender.send(transfer(), "stuck")
    # Blocks go by without it: nothing fits under this gas limit (anvil keeps it in the pool).
    await rpc(w3, "evm_setBlockGasLimit", hex(20_000))
    for _ in range(FAST.replace_after_blocks):
        await rpc(w3, "evm_mine")
    assert (await rpc(w3, "eth_getTransactionByHash", sent.tx_hash)) is not None
    # Room again (anvil refuses new transactions above the block gas limit), but no block yet:
    # the sender sees a transaction 3 blocks old and replaces it before anything is mined.
    await rpc(w3, "evm_setBlockGasLimit", hex(30_000_000))
    waiter = asyncio.create_task(sender.wait(sent, timeout=20))
    await until(lambda: sent.replacements > 0, "the sender to replace the stuck transaction")
    async with miner(w3):
        receipt = await waiter
    assert receipt["status"] == 1
    original, replacement = sent.attempts[0], sent.attempts[1]
    assert sent.tx_hash == replacement.tx_hash
    assert replacement.fees.max_fee_per_gas >= original.fees.max_fee_per_gas * 115 // 100  # type: ignore[operator]
    assert replacement.fees.max_priority_fee_per_gas >= original.fees.max_priority_fee_per_gas * 115 // 100  # type: ignore[operator]
    assert replacement.sent_block - original.sent_block >= FAST.replace_after_blocks
    winner = journal.get(sent.tx_hash)
    assert winner is not None and winner.status == MINED
    losers = [journal.get(h) for h in sent.hashes if h != sent.tx_hash]
    assert losers and all(e is not None and e.status == REPLACED and e.replaced_by == sent.tx_hash for e in losers)
    assert await w3.eth.get_transaction_count(dev_account(1).address) == 1


async def test_base_fee_spike_gets_the_transaction_replaced_and_mined(anvil: Anvil, connect: Any) -> None:
    """The base fee jumps far above the transaction's maxFee: anvil evicts it at the next block
    and refuses it back; the sender replaces it at market fees (under the cap) and it is mined."""
    w3 = connect(anvil.url)
    journal = InMemoryJournal()
    sender = TransactionSender(w3, dev_account(1), journal=journal, config=FAST)
    await rpc(w3, "evm_setAutomine", False)
    sent = await sender.send(transfer(), "spiked")
    original = sent.attempts[0].fees
    assert original.max_fee_per_gas is not None and original.max_fee_per_gas < 10 * GWEI
    await rpc(w3, "anvil_setNextBlockBaseFeePerGas", hex(60 * GWEI))
    async with miner(w3):
        receipt = await sender.wait(sent, timeout=20)
    assert receipt["status"] == 1
    assert sent.replacements >= 1 and receipt["transactionHash"].to_0x_hex() == sent.attempts[-1].tx_hash
    fees = sent.attempts[-1].fees
    assert fees.max_fee_per_gas is not None and fees.max_priority_fee_per_gas is not None
    assert fees.max_fee_per_gas >= original.max_fee_per_gas * 115 // 100
    assert fees.max_priority_fee_per_gas >= original.max_priority_fee_per_gas * 115 // 100  # type: ignore[operator]
    assert fees.max_fee_per_gas <= FAST.max_fee_per_gas_wei
    block = await w3.eth.get_block(receipt["blockNumber"])
    assert fees.max_fee_per_gas >= block["baseFeePerGas"]
    assert journal.get(sent.original_hash).status == REPLACED  # type: ignore[union-attr]


async def _spiked_fees(w3: AsyncWeb3[Any], sender: TransactionSender) -> tuple[Fees, int]:
    """Fees priced from the latest base fee (as the executor prices a job), then a block whose
    base fee is far above them; returns the stale fees and the spiked base fee."""
    base = int((await w3.eth.get_block("latest"))["baseFeePerGas"])
    stale = sender.fee_policy.from_base_fee(base)
    assert stale is not None and stale.max_fee_per_gas is not None
    spike = 20 * stale.max_fee_per_gas
    await rpc(w3, "anvil_setNextBlockBaseFeePerGas", hex(spike))
    await rpc(w3, "evm_mine")
    assert int((await w3.eth.get_block("latest"))["baseFeePerGas"]) == spike
    return stale, spike


async def test_a_send_priced_before_a_base_fee_spike_is_priced_again_and_sent_at_once(
    anvil: Anvil, connect: Any
) -> None:
    """Fees the caller read before a spike are refused below the base fee: the sender reads the
    market again and sends at once, with the same nonce (the refused broadcast used none)."""
    w3 = connect(anvil.url)
    journal = InMemoryJournal()
    sender = TransactionSender(w3, dev_account(1), journal=journal, config=FAST)
    stale, spike = await _spiked_fees(w3, sender)
    with capture_logs() as logs:
        sent = await sender.send(transfer(), "spiked", fees=stale)
    (refused,) = [e for e in logs if e["event"] == "tx.broadcast_refused"]
    assert refused["kind"] == BroadcastErrorKind.BELOW_BASE_FEE.value and refused["nonce"] == 0
    assert sent.nonce == 0 and sent.replacements == 0
    fees = sent.fees
    assert fees.max_fee_per_gas is not None and spike < fees.max_fee_per_gas <= FAST.max_fee_per_gas_wei
    receipt = await sender.wait(sent, timeout=20)  # automine: mined with the broadcast
    assert receipt["status"] == 1
    assert (await sender.send(transfer(2), "next")).nonce == 1  # no gap behind it
    assert await w3.eth.get_transaction_count(dev_account(1).address, "pending") == 2


async def test_a_fee_cap_below_the_base_fee_is_said_once_not_retried(anvil: Anvil, connect: Any) -> None:
    """Above the cap no fee can get it mined: one broadcast, `FeeCapBelowBaseFee` naming the
    base fee and the cap, and the nonce given back for the next transaction."""
    w3 = connect(anvil.url)
    journal = InMemoryJournal()
    probe = TransactionSender(w3, dev_account(1), config=FAST)
    stale, spike = await _spiked_fees(w3, probe)
    cap = spike // 2  # above the stale fees, below the base fee
    assert stale.max_fee_per_gas is not None and stale.max_fee_per_gas < cap
    config = SenderConfig(poll_interval=0.05, max_fee_per_gas_wei=cap)
    sender = TransactionSender(w3, dev_account(1), journal=journal, config=config)
    with capture_logs() as logs:
        with pytest.raises(FeeCapBelowBaseFee, match="MAX_FEE_PER_GAS_GWEI") as refused:
            await sender.send(transfer(), "capped", fees=stale)
    assert refused.value.cap_wei == cap and refused.value.base_fee_wei >= spike * 7 // 8  # the next block's
    assert len([e for e in logs if e["event"] == "tx.broadcast_refused"]) == 1  # one broadcast, no loop
    assert [e for e in journal._entries.values() if e.status != FAILED] == []
    sender.fee_policy = FeePolicy(cap_wei=4 * spike, priority_fee_wei=GWEI)  # the operator raises the cap
    sent = await sender.send(transfer(), "raised")
    assert sent.nonce == 0 and (await sender.wait(sent, timeout=20))["status"] == 1


async def test_dropped_transaction_is_rebroadcast_once_and_mined(anvil: Anvil, connect: Any) -> None:
    w3 = connect(anvil.url)
    journal = InMemoryJournal()
    sender = TransactionSender(w3, dev_account(1), journal=journal, config=FAST)
    await rpc(w3, "evm_setAutomine", False)
    sent = await sender.send(transfer(), "dropped")
    await rpc(w3, "anvil_dropTransaction", sent.tx_hash)
    assert (await rpc(w3, "eth_getTransactionByHash", sent.tx_hash)) is None
    waiter = asyncio.create_task(sender.wait(sent, timeout=20))
    await until(lambda: sent.rebroadcasts > 0, "the sender to rebroadcast the dropped transaction")
    async with miner(w3):
        receipt = await waiter
    assert receipt["status"] == 1
    assert sent.rebroadcasts == 1 and sent.replacements == 0
    assert receipt["transactionHash"].to_0x_hex() == sent.original_hash  # the same signed bytes
    assert await w3.eth.get_transaction_count(dev_account(1).address) == 1


async def test_a_nonce_freed_by_a_reorg_is_filled_so_the_next_transaction_is_mined(anvil: Anvil, connect: Any) -> None:
    """A mined transaction of ours is reorged out (its nonce is free again, but its SentTx is
    settled and nobody sends that nonce again): the next transaction waits in the node's queue
    behind the hole forever unless the sender fills the hole."""
    w3 = connect(anvil.url)
    sender = TransactionSender(w3, dev_account(1), config=FAST)
    first = await sender.send(transfer(), "first")
    await sender.wait(first, timeout=20)
    await rpc(w3, "anvil_reorg", 1, [])  # the block with the first transaction is replaced
    assert await w3.eth.get_transaction_count(dev_account(1).address) == 0
    await rpc(w3, "evm_setAutomine", False)
    second = await sender.send(transfer(2), "second")
    assert second.nonce == 1  # the sender still believes nonce 0 is used
    async with miner(w3):
        receipt = await sender.wait(second, timeout=20)
    assert receipt["status"] == 1
    assert await w3.eth.get_transaction_count(dev_account(1).address) == 2


class _JournalDown(InMemoryJournal):
    """A journal whose database is down for the first `failures` writes."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def add(self, entry: JournalEntry) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the database is restarting")
        super().add(entry)


async def test_a_failed_journal_write_gives_the_nonce_back(anvil: Anvil, connect: Any) -> None:
    """The write-ahead journal write fails (PostgreSQL restarting): nothing was broadcast, so
    the nonce must be free for the next send, or that send waits behind a hole."""
    w3 = connect(anvil.url)
    sender = TransactionSender(w3, dev_account(1), journal=_JournalDown(1), config=FAST)
    with pytest.raises(ConnectionError):
        await sender.send(transfer(), "first")
    sent = await sender.send(transfer(), "second")
    assert sent.nonce == 0
    receipt = await sender.wait(sent, timeout=10)
    assert receipt["status"] == 1


async def test_a_replacement_the_journal_cannot_take_is_tried_again_not_abandoned(anvil: Anvil, connect: Any) -> None:
    """Seen in `bench/chaos.py --chains 2`: a base-fee spike evicts the transaction and the node
    refuses it back, so the sender replaces it — while PostgreSQL (the journal) restarts. The
    failed write-ahead write must not end the follow: it raised out of `wait`, the nonce stayed
    in flight with nobody following it, and every later transaction of the key waited behind
    that hole in the node's queue for good. The replacement is made once the store is back."""
    with PrivatePostgres() as pg:
        journal = StoreJournal.open(pg.url)
        w3 = connect(anvil.url)
        sender = TransactionSender(w3, dev_account(1), journal=journal, config=FAST)
        await rpc(w3, "evm_setAutomine", False)
        sent = await sender.send(transfer(), "spiked")
        await asyncio.to_thread(pg.stop)
        await rpc(w3, "anvil_setNextBlockBaseFeePerGas", hex(60 * GWEI))
        with capture_logs() as logs:
            async with miner(w3):
                waiter = asyncio.create_task(sender.wait(sent, timeout=120))
                tried = lambda: any(e["event"] == "tx.replace_unjournaled" for e in logs)  # noqa: E731
                await until(lambda: waiter.done() or tried(), "a replacement tried with the store down", 60)
                assert not waiter.done(), f"the follow ended with the store down: {waiter.exception()!r}"
                assert sent.replacements == 0  # nothing broadcast without its journal entry
                await asyncio.to_thread(pg.start)
                receipt = await waiter
    assert receipt["status"] == 1
    assert sent.replacements >= 1 and receipt["transactionHash"].to_0x_hex() == sent.attempts[-1].tx_hash
    assert await w3.eth.get_transaction_count(dev_account(1).address) == 1


# ----------------------------------------------------------------------------- restart


async def test_restart_follows_the_journaled_transaction_without_sending_twice(
    anvil: Anvil, tmp_path: Path, connect: Any
) -> None:
    """Process A broadcasts and dies; process B (a new sender on the same SQLite journal) finds
    the pending transaction, does not send the same work again and follows it to its receipt."""
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    w3 = connect(anvil.url)
    account = dev_account(1)
    await rpc(w3, "evm_setAutomine", False)

    first = TransactionSender(w3, account, journal=StoreJournal.open(url), config=FAST)
    sent = await first.send(transfer(5), "execute workflow 7 run 0")
    del first  # "killed" right after the broadcast

    second = TransactionSender(w3, account, journal=StoreJournal.open(url), config=FAST)
    recovered = await second.recover()
    assert [(s.nonce, s.tx_hash, s.purpose) for s in recovered] == [(0, sent.tx_hash, sent.purpose)]
    again = await second.send(transfer(5), "execute workflow 7 run 0")  # the same work, re-requested
    assert again is recovered[0]
    async with miner(w3):
        receipt = await second.wait(again, timeout=20)
    assert receipt["transactionHash"].to_0x_hex() == sent.tx_hash
    assert await w3.eth.get_transaction_count(account.address) == 1  # one transaction, not two
    nxt = await second.send(transfer(6), "next")
    assert nxt.nonce == 1
    store_journal = StoreJournal.open(url)
    row = store_journal.repository.get(sent.tx_hash)
    assert row.status == MINED and row.block_number == receipt["blockNumber"]


class CrashAfterJournal(InMemoryJournal):
    """Journals, then "dies" before the broadcast happens."""

    crash = True

    def add(self, entry: JournalEntry) -> None:
        super().add(entry)
        if self.crash:
            raise KeyboardInterrupt("killed between journal and broadcast")


async def test_restart_rebroadcasts_a_journaled_but_never_broadcast_transaction(anvil: Anvil, connect: Any) -> None:
    w3 = connect(anvil.url)
    account = dev_account(1)
    journal = CrashAfterJournal()
    with pytest.raises(KeyboardInterrupt):
        await TransactionSender(w3, account, journal=journal, config=FAST).send(transfer(), "half-sent")
    (entry,) = journal.all()
    assert entry.status == PENDING and (await rpc(w3, "eth_getTransactionByHash", entry.tx_hash)) is None

    journal.crash = False
    sender = TransactionSender(w3, account, journal=journal, config=FAST)
    (recovered,) = await sender.recover()  # rebroadcasts the journaled bytes
    assert recovered.rebroadcasts == 1
    receipt = await sender.wait(recovered, timeout=20)
    assert receipt["transactionHash"].to_0x_hex() == entry.tx_hash
    assert (await sender.send(transfer(), "after")).nonce == 1


# ----------------------------------------------------------------------------- reverts

# Runtime code `CALLDATACOPY(0, 0, CALLDATASIZE); REVERT(0, CALLDATASIZE)`: reverts with its input.
REVERTER_INIT = "0x" + "66" + "365f5f37365ffd" + "5f52" + "6007" + "6019" + "f3"


def error_string(reason: str) -> str:
    return "0x" + (function_signature_to_4byte_selector("Error(string)") + encode(["string"], [reason])).hex()


def panic(code: int) -> str:
    return "0x" + (function_signature_to_4byte_selector("Panic(uint256)") + encode(["uint256"], [code])).hex()


async def test_revert_reasons_error_string_and_panic(anvil: Anvil, connect: Any) -> None:
    w3 = connect(anvil.url)
    sender = TransactionSender(w3, dev_account(1), config=FAST)
    deployed = await sender.send_and_wait({"data": REVERTER_INIT, "gas": 100_000}, "deploy reverter")
    reverter = deployed["contractAddress"]

    with pytest.raises(TransactionReverted) as caught:
        await sender.simulate({"to": reverter, "data": error_string("workflow is paused")})
    assert caught.value.reason.kind == "error" and caught.value.reason.message == "workflow is paused"

    with pytest.raises(TransactionReverted) as caught:
        await sender.simulate({"to": reverter, "data": panic(0x11)})
    assert caught.value.reason.kind == "panic" and caught.value.args_by_name == {"code": 0x11}
    assert "overflow" in str(caught.value)

    # `send` estimates first, so a doomed transaction never takes a nonce …
    with pytest.raises(TransactionReverted):
        await sender.send({"to": reverter, "data": error_string("nope")}, "doomed")
    # … and a mined one that reverts is reported with its replayed reason.
    sent = await sender.send({"to": reverter, "data": error_string("too late"), "gas": 60_000}, "mined revert")
    assert sent.nonce == 1
    with pytest.raises(TransactionReverted) as caught:
        await sender.wait(sent)
    assert caught.value.reason.message == "too late"
    assert caught.value.tx_hash == sent.tx_hash and caught.value.block_number is not None


async def test_autometa_custom_error_is_decoded(dev_chain: Any, connect: Any) -> None:
    w3 = connect(dev_chain.url)
    nobody = dev_account(7)  # no escrow balance
    sender = TransactionSender(w3, nobody, config=FAST)
    core = autometa_async(w3, dev_chain.deployment.address)
    call = await core.functions.withdraw(1).build_transaction({"from": nobody.address, "gas": 200_000})
    params = {"to": call["to"], "data": call["data"], "gas": 200_000}

    with pytest.raises(TransactionReverted) as caught:
        await sender.simulate(params)
    reason = caught.value.reason
    assert reason.kind == "custom" and reason.name == "InsufficientEscrow"
    assert reason.args == {"user": nobody.address, "balance": 0, "needed": 1}
    assert "InsufficientEscrow(" in str(caught.value)

    sent = await sender.send(params, "withdraw 1")
    with pytest.raises(TransactionReverted) as caught:
        await sender.wait(sent)
    assert caught.value.error_name == "InsufficientEscrow" and caught.value.purpose == "withdraw 1"
    receipt = await sender.wait(sent, raise_on_revert=False)
    assert receipt["status"] == 0


# ----------------------------------------------------------------------------- pure units


def test_fee_bump_respects_percent_market_and_cap() -> None:
    policy = FeePolicy(cap_wei=100 * GWEI, bump_percent=15)
    old = Fees(max_fee_per_gas=10 * GWEI, max_priority_fee_per_gas=GWEI)
    quiet = Fees(max_fee_per_gas=3 * GWEI, max_priority_fee_per_gas=GWEI)
    bumped = policy.bump(old, quiet)
    assert bumped == Fees(max_fee_per_gas=int(11.5 * GWEI), max_priority_fee_per_gas=int(1.15 * GWEI))
    busy = Fees(max_fee_per_gas=50 * GWEI, max_priority_fee_per_gas=2 * GWEI)
    assert policy.bump(old, busy) == Fees(max_fee_per_gas=50 * GWEI, max_priority_fee_per_gas=2 * GWEI)
    capped = policy.bump(Fees(max_fee_per_gas=95 * GWEI, max_priority_fee_per_gas=GWEI), busy)
    assert capped is None  # +10 % would pass the cap: a node would refuse the replacement
    legacy = policy.bump(Fees(gas_price=10 * GWEI), Fees(gas_price=5 * GWEI))
    assert legacy == Fees(gas_price=int(11.5 * GWEI))


def test_broadcast_errors_are_classified() -> None:
    cases = {
        "nonce too low": BroadcastErrorKind.NONCE_TOO_LOW,
        "nonce too high": BroadcastErrorKind.NONCE_TOO_HIGH,
        "replacement transaction underpriced": BroadcastErrorKind.REPLACEMENT_UNDERPRICED,
        "transaction already imported": BroadcastErrorKind.ALREADY_KNOWN,
        "already known": BroadcastErrorKind.ALREADY_KNOWN,
        # geth, reth and anvil (their FeeCapTooLow), and Hardhat's two forms, with the code around
        # them as web3 raises them
        "max fee per gas less than block base fee": BroadcastErrorKind.BELOW_BASE_FEE,
        "{'code': -32003, 'message': 'max fee per gas less than block base fee'}": BroadcastErrorKind.BELOW_BASE_FEE,
        "Transaction maxFeePerGas (2000000000) is too low for the next block, which has a baseFeePerGas of "
        "60000000000": BroadcastErrorKind.BELOW_BASE_FEE,
        "Transaction gasPrice (1) is too low for the next block, which has a baseFeePerGas of 10000": (
            BroadcastErrorKind.BELOW_BASE_FEE
        ),
        "transaction underpriced": BroadcastErrorKind.FEE_TOO_LOW,
        "insufficient funds for gas * price + value": BroadcastErrorKind.INSUFFICIENT_FUNDS,
        "something else": BroadcastErrorKind.OTHER,
    }
    for message, kind in cases.items():
        assert classify_broadcast_error(Exception(message)) is kind, message


def test_unknown_revert_data_is_reported_raw() -> None:
    assert decode_revert(b"").kind == "empty"
    odd = decode_revert(bytes.fromhex("deadbeef01"))
    assert odd.kind == "unknown" and "deadbeef01" in odd.message


def test_no_key_in_repr(anvil: Anvil) -> None:
    account = dev_account(1)
    sender = TransactionSender(connect_async(anvil.url), account)
    key_hex = account.key.hex()
    assert key_hex not in repr(sender) and key_hex.removeprefix("0x") not in repr(sender)


CHILD = """
import asyncio, sys
from autometa.chain.accounts import dev_account
from autometa.chain.journal import StoreJournal
from autometa.chain.heads import NewHeads, ws_url_for
from autometa.chain.sender import FeeCapBelowBaseFee, RawReceipt, SenderConfig, TransactionSender
from autometa.chain.web3 import connect_async

async def main():
    w3 = connect_async(sys.argv[1])
    sender = TransactionSender(w3, dev_account(1), journal=StoreJournal.open(sys.argv[2]), config=SenderConfig())
    sent = await sender.send({"to": sys.argv[3], "value": 9, "gas": 21000}, "killed mid-flight")
    print("SENT", sent.tx_hash, flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


@pytest.mark.slow
async def test_sigkilled_process_is_finished_by_its_successor(anvil: Anvil, tmp_path: Path, connect: Any) -> None:
    """A real process broadcasts, is SIGKILLed while waiting; the next process finds the journaled
    transaction in SQLite and follows it to its receipt, sending nothing new."""
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    w3 = connect(anvil.url)
    await rpc(w3, "evm_setAutomine", False)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, anvil.url, url, SINK, stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None
    tx_hash = ""
    while not tx_hash:  # structlog writes to stdout too
        line = (await asyncio.wait_for(child.stdout.readline(), timeout=30)).decode()
        assert line, "the child exited before sending"
        if line.startswith("SENT "):
            tx_hash = line.split()[1]
    child.send_signal(signal.SIGKILL)
    await child.wait()
    assert tx_hash.startswith("0x") and (await rpc(w3, "eth_getTransactionByHash", tx_hash)) is not None

    sender = TransactionSender(w3, dev_account(1), journal=StoreJournal.open(url), config=FAST)
    (recovered,) = await sender.recover()
    assert recovered.tx_hash == tx_hash
    assert await sender.send({"to": SINK, "value": 9, "gas": 21_000}, "killed mid-flight") is recovered
    async with miner(w3):
        receipt = await sender.wait(recovered, timeout=20)
    assert receipt["transactionHash"].to_0x_hex() == tx_hash
    assert await w3.eth.get_transaction_count(dev_account(1).address) == 1


async def test_legacy_gas_price_when_configured(anvil: Anvil, connect: Any) -> None:
    w3 = connect(anvil.url)
    sender = TransactionSender(w3, dev_account(2), config=SenderConfig(legacy=True, poll_interval=0.05))
    sent = await sender.send(transfer(), "legacy")
    assert sent.fees.is_legacy and sent.fees.gas_price is not None
    receipt = await sender.wait(sent)
    assert receipt["status"] == 1 and receipt["type"] == 0


async def test_a_fresh_broadcast_is_followed_by_its_receipt_alone_then_checked(anvil: Anvil) -> None:
    """For `quiet_after_send_s` after a broadcast a look costs one request (the receipt); after it
    the lost/stuck checks run again, so a stuck transaction is still replaced."""
    with RpcProxy(anvil.url) as proxy:
        w3 = connect_async(proxy.url)
        config = SenderConfig(poll_interval=0.05, replace_after_blocks=2, quiet_after_send_s=1.0)
        sender = TransactionSender(w3, dev_account(1), journal=InMemoryJournal(), config=config)
        await rpc(w3, "evm_setAutomine", False)
        sent = await sender.send(transfer(), "quiet")
        await rpc(w3, "evm_setBlockGasLimit", hex(20_000))  # it cannot be mined: it will look stuck
        for _ in range(config.replace_after_blocks):
            await rpc(w3, "evm_mine")
        before = Counter(proxy.calls)
        for _ in range(5):
            assert await sender._step(sent) is None
        looked = Counter(proxy.calls)
        looked.subtract(before)
        assert +looked == Counter({"eth_getTransactionReceipt": 5}) and sent.replacements == 0
        await asyncio.sleep(1.0)
        await rpc(w3, "evm_setBlockGasLimit", hex(30_000_000))
        assert await sender._step(sent) is None
        assert sent.replacements == 1  # the checks are back: stuck for 2 blocks, replaced
        await w3.provider.disconnect()  # type: ignore[attr-defined]


def test_fees_from_a_known_base_fee_need_no_request() -> None:
    policy = FeePolicy(cap_wei=100 * GWEI, priority_fee_wei=GWEI)
    assert policy.from_base_fee(10 * GWEI) == Fees(max_fee_per_gas=21 * GWEI, max_priority_fee_per_gas=GWEI)
    assert policy.from_base_fee(60 * GWEI) == Fees(max_fee_per_gas=100 * GWEI, max_priority_fee_per_gas=GWEI)  # capped
    assert policy.from_base_fee(0) is None  # unknown: ask the node
    assert FeePolicy(cap_wei=100 * GWEI, priority_fee_wei=None).from_base_fee(10 * GWEI) is None  # tip from the node
    assert FeePolicy(cap_wei=100 * GWEI, priority_fee_wei=GWEI, legacy=True).from_base_fee(10 * GWEI) is None


async def test_with_a_head_subscription_the_receipt_is_looked_for_right_after_the_block(
    anvil: Anvil, connect: Any
) -> None:
    """`wait(heads=...)`: the look comes with the new head, not on the timed schedule (here 5 s
    before the first look and between looks), and `raw=True` gives the node's receipt with its
    numbers read and its logs left as sent."""
    w3 = connect(anvil.url)
    await rpc(w3, "evm_setAutomine", False)
    slow = SenderConfig(poll_interval=5.0, first_look_s=5.0)
    sender = TransactionSender(w3, dev_account(0), config=slow)
    heads = NewHeads(ws_url_for(anvil.url))
    watching = asyncio.create_task(heads.run())
    try:
        await until(lambda: heads.ready, "the newHeads subscription")
        sent = await sender.send(transfer(), "heads")
        waiting = asyncio.create_task(sender.wait(sent, heads=heads, raw=True))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # nothing mined yet
        started = asyncio.get_running_loop().time()
        await rpc(w3, "evm_mine")
        receipt = await asyncio.wait_for(waiting, 2.0)  # well before the 5 s timed look
        assert asyncio.get_running_loop().time() - started < 2.0
        assert isinstance(receipt, RawReceipt) and receipt["status"] == 1
        assert "0x" + bytes(receipt["transactionHash"]).hex() == sent.tx_hash
        assert receipt["blockNumber"] == int(await w3.eth.block_number) and sent.done
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching


async def test_without_a_subscription_the_wait_falls_back_to_timed_looks(anvil: Anvil, connect: Any) -> None:
    w3 = connect(anvil.url)
    heads = NewHeads(None)  # an endpoint without a websocket
    await heads.run()
    assert not heads.ready and not await heads.beyond(None, 0.1)
    sender = TransactionSender(w3, dev_account(0), config=FAST)
    receipt = await asyncio.wait_for(sender.send_and_wait(transfer(), "no-heads"), 10)
    assert int(receipt["status"]) == 1


async def test_a_transaction_lost_from_the_pool_is_sent_again_after_the_next_block_not_the_quiet_time(
    anvil: Anvil, connect: Any
) -> None:
    """With a head subscription, a block mined without the transaction and a node that no longer
    knows it mean it was lost: the same bytes go out again right away, not once the quiet time
    (here 30 s) is over, so it is mined in the block after (anvil once lost a batch under a
    burst and the run landed 3 blocks late)."""
    w3 = connect(anvil.url)
    await rpc(w3, "evm_setAutomine", False)
    config = SenderConfig(poll_interval=5.0, first_look_s=0.1, quiet_after_send_s=30.0)
    sender = TransactionSender(w3, dev_account(0), journal=InMemoryJournal(), config=config)
    heads = NewHeads(ws_url_for(anvil.url))
    watching = asyncio.create_task(heads.run())
    try:
        await until(lambda: heads.ready, "the newHeads subscription")
        sent = await sender.send(transfer(), "lost")
        waiting = asyncio.create_task(sender.wait(sent, heads=heads, timeout=20))
        await rpc(w3, "anvil_dropTransaction", sent.tx_hash)
        await rpc(w3, "evm_mine")  # a block without it
        await until(lambda: sent.rebroadcasts == 1, "the lost transaction to be sent again", timeout=3.0)
        assert (await rpc(w3, "eth_getTransactionByHash", sent.tx_hash)) is not None
        await rpc(w3, "evm_mine")
        receipt = await asyncio.wait_for(waiting, 3.0)
        assert receipt["status"] == 1 and receipt["transactionHash"].to_0x_hex() == sent.original_hash
        assert sent.replacements == 0
    finally:
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
