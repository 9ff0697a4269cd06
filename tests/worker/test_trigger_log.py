"""LOG on the scheduler's side, against anvil: a matching log gives one job whose proof the
contract accepts (`executeWithProof`, sent here by the test as the executor role; the executor's
own path is bench/latency.py --kind log), a log that does not match gives none, the confirmation depth is
respected, one eth_getLogs per block serves every LOG workflow, and after a restart the logs
emitted while the scheduler was down are found from the checkpoint, each run once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eth_abi.abi import decode
from eth_utils import keccak
from structlog.testing import capture_logs
from web3 import Web3
from web3.logs import DISCARD

from autometa.chain.accounts import dev_role
from autometa.chain.contracts import autometa, bind
from autometa.chain.deploy import transact
from autometa.chain.web3 import connect_async
from autometa.domain.triggers.log import LOG_CODE
from autometa.store import Store
from autometa.worker.prices import PriceReader
from autometa.worker.queue import InMemoryJobQueue, Job
from autometa.worker.scheduler import Scheduler
from autometa.worker.sources import ChainWorkflowSource
from autometa.worker.triggers.log import LogScanner, StoreLogCursor

from .helpers import create, deposit, spec

TRANSFER = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
APPROVAL = "0x" + keccak(text="Approval(address,address,uint256)").hex()
ALICE, BOB = dev_role("recipient").address, dev_role("admin").address


def _topic(address: str) -> str:
    return "0x" + bytes.fromhex(address[2:].lower()).rjust(32, b"\0").hex()


def _log_workflow(w3: Web3, dep: Any, to: str, topic0: str = TRANSFER) -> int:
    user = dev_role("user")
    return create(
        w3, dep.address, user, spec(LOG_CODE, {"emitter": dep.token, "topic0": topic0, "topics": [None, _topic(to)]})
    )


def _mint(w3: Web3, token: str, to: str, amount: int = 1) -> dict[str, Any]:
    """Mint (a Transfer from 0) and return the receipt's Transfer log."""
    receipt = transact(w3, dev_role("user"), bind(w3, "DevToken", token).functions.mint(to, amount))
    (raw,) = [x for x in receipt["logs"] if "0x" + bytes(x["topics"][0]).hex() == TRANSFER]
    return dict(raw)


def _expected_proof(raw: dict[str, Any]) -> tuple[int, bytes, bytes, int]:
    return (int(raw["blockNumber"]), bytes(raw["blockHash"]), bytes(raw["transactionHash"]), int(raw["logIndex"]))


def _execute(w3: Web3, address: str, job: Job) -> Any:
    """What the executor sends for a LOG run: executeWithProof(id, run, 0, proof)."""
    assert job.proof is not None
    core = autometa(w3, address)
    call = core.functions.executeWithProof(job.workflow_id, job.run_index, 0, bytes.fromhex(job.proof[2:]))
    return transact(w3, dev_role("executor"), call, gas=600_000)


def _attested(w3: Web3, address: str, receipt: Any) -> list[tuple[int, int, int]]:
    core = autometa(w3, address)
    return [
        (int(e.args.workflowId), int(e.args.runIndex), int(e.args.blockNumber))
        for e in core.events.LogAttested().process_receipt(receipt, errors=DISCARD)
    ]


def _mine(w3: Web3) -> int:
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    return int(w3.eth.block_number)


def _jobs(queue: InMemoryJobQueue) -> list[Job]:
    out = []
    while not queue._buffer.empty():
        out.append(queue._buffer.get_nowait())
    return out


async def _scheduler(url: str, address: str, scanner_args: dict[str, Any] | None = None, **kw: Any) -> Scheduler:
    aw3 = connect_async(url)
    queue = InMemoryJobQueue()
    await queue.startup()
    logs = LogScanner(aw3, **(scanner_args or {}))
    s = Scheduler(aw3, ChainWorkflowSource(aw3, address), queue, PriceReader(aw3, address), logs=logs, **kw)
    await s.load()
    return s


async def test_a_matching_log_gives_one_job_whose_proof_the_contract_accepts(dev_chain) -> None:  # type: ignore[no-untyped-def]
    w3, dep = dev_chain.w3, dev_chain.deployment
    deposit(w3, dep.address, dev_role("user"), 10**18)
    wid = _log_workflow(w3, dep, ALICE)
    other = _log_workflow(w3, dep, ALICE, topic0=APPROVAL)  # another filter, same eth_getLogs
    scheduler = await _scheduler(dev_chain.url, dep.address)
    queue = scheduler.queue
    assert isinstance(queue, InMemoryJobQueue)
    await scheduler.process_block(int(w3.eth.block_number))
    assert _jobs(queue) == []
    raw = _mint(w3, dep.token, ALICE)
    _mint(w3, dep.token, BOB)  # topic 2 does not match: nothing
    before = scheduler.logs.requests
    await scheduler.process_block(int(raw["blockNumber"]))
    # in its own block: the executor checks it in the next block's context, where blockhash(n) is known
    (job,) = _jobs(queue)
    await scheduler.process_block(int(raw["blockNumber"]) + 1)
    assert scheduler.logs.requests - before == 2  # one eth_getLogs per block for both workflows
    assert _jobs(queue) == []
    assert (job.workflow_id, job.run_index, job.kind) == (wid, 0, LOG_CODE)
    assert job.proof is not None
    got = decode(["uint256", "bytes32", "bytes32", "uint256"], bytes.fromhex(job.proof[2:]))
    assert got == _expected_proof(raw)
    receipt = _execute(w3, dep.address, job)
    assert _attested(w3, dep.address, receipt) == [(wid, 0, int(raw["blockNumber"]))]
    for _ in range(3):  # the run is seen executed; the same log is never offered again
        await scheduler.process_block(int(w3.eth.block_number))
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    assert _jobs(queue) == [] and other in scheduler.index
    assert scheduler.index.logs.pending(wid) == [] and scheduler.index.logs.pending(other) == []
    await queue.shutdown()


async def test_the_confirmation_depth_is_respected(dev_chain) -> None:  # type: ignore[no-untyped-def]
    w3, dep = dev_chain.w3, dev_chain.deployment
    wid = _log_workflow(w3, dep, ALICE)
    scheduler = await _scheduler(dev_chain.url, dep.address, {"confirmations": 2})
    queue = scheduler.queue
    assert isinstance(queue, InMemoryJobQueue)
    raw = _mint(w3, dep.token, ALICE)
    at = int(raw["blockNumber"])
    for head in (at, at + 1):
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        await scheduler.process_block(head)
        assert _jobs(queue) == [], f"a log of block {at} fired at head {head} (2 confirmations)"
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    await scheduler.process_block(at + 2)
    (job,) = _jobs(queue)
    assert job.workflow_id == wid and job.proof is not None
    assert decode(["uint256"], bytes.fromhex(job.proof[2:66]))[0] == at
    await queue.shutdown()


async def test_a_restart_backfills_the_logs_emitted_while_down_each_once(dev_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Two workflows (Transfers to Alice, to Bob). Alice's first log is handed out but the
    scheduler stops before it runs (it holds the checkpoint back); Bob's first log fires and
    executes after it. While the scheduler is down, one more log each and 30 blocks. The new
    scheduler reads from the store's checkpoint in ranges of 8 blocks: Alice's two logs and Bob's
    second run, each once — Bob's first, inside the range read again, is not offered again."""
    w3, dep = dev_chain.w3, dev_chain.deployment
    deposit(w3, dep.address, dev_role("user"), 10**18)
    alice, bob = _log_workflow(w3, dep, ALICE), _log_workflow(w3, dep, BOB)
    store = Store.open(f"sqlite:///{tmp_path / 'autometa.db'}")
    chain_id = int(w3.eth.chain_id)
    first = await _scheduler(dev_chain.url, dep.address, {"cursor": StoreLogCursor(store, chain_id, dep.address)})
    q1 = first.queue
    assert isinstance(q1, InMemoryJobQueue)
    await first.process_block(int(w3.eth.block_number))
    a1 = _mint(w3, dep.token, ALICE)
    await first.process_block(_mine(w3))
    (job_a1,) = _jobs(q1)  # handed out, never executed: the scheduler "crashes" before it runs
    assert (job_a1.workflow_id, job_a1.run_index) == (alice, 0)
    b1 = _mint(w3, dep.token, BOB)
    await first.process_block(_mine(w3))
    (job_b1,) = _jobs(q1)
    executed = _attested(w3, dep.address, _execute(w3, dep.address, job_b1))
    await first.process_block(int(w3.eth.block_number))
    await q1.shutdown()
    a2, b2 = _mint(w3, dep.token, ALICE), _mint(w3, dep.token, BOB)
    for _ in range(30):
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    cursor = StoreLogCursor(store, chain_id, dep.address)
    assert await cursor.get() == int(a1["blockNumber"]) - 1  # Alice's pending log held it back
    second = await _scheduler(dev_chain.url, dep.address, {"cursor": cursor, "max_range": 8})
    q2 = second.queue
    assert isinstance(q2, InMemoryJobQueue)
    offered: list[tuple[int, int]] = []
    for _ in range(6):
        await second.process_block(int(w3.eth.block_number))
        for job in _jobs(q2):
            assert job.proof is not None
            offered.append((job.workflow_id, decode(["uint256"], bytes.fromhex(job.proof[2:66]))[0]))
            executed += _attested(w3, dep.address, _execute(w3, dep.address, job))
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    block = {name: int(raw["blockNumber"]) for name, raw in (("a1", a1), ("b1", b1), ("a2", a2), ("b2", b2))}
    assert sorted(offered) == sorted([(alice, block["a1"]), (alice, block["a2"]), (bob, block["b2"])])
    assert sorted(executed) == sorted(
        [(bob, 0, block["b1"]), (alice, 0, block["a1"]), (alice, 1, block["a2"]), (bob, 1, block["b2"])]
    )
    assert second.logs.requests >= 5  # the 30-odd blocks were read in ranges of 8
    assert await cursor.get() == int(w3.eth.block_number) - 1  # nothing pending: the checkpoint is the head
    await q2.shutdown()
    store.close()


def test_a_log_is_offered_a_block_later_and_dropped_once_blockhash_cannot_attest_it() -> None:
    """The book alone: a log waits `min_age` blocks; past the 256 blocks `blockhash` answers for
    (less the inclusion margin) it can never be attested and is dropped, not offered."""
    from autometa.worker.triggers.log import BLOCKHASH_WINDOW, INCLUSION_MARGIN, LogBook, LogCondition
    from autometa.worker.triggers.registry import TriggerEntry

    emitter = "0x" + "ab" * 20
    book = LogBook()
    cond = LogCondition(emitter, bytes.fromhex(TRANSFER[2:]), (None, None, None), cursor=0, after_block=0)
    book.set(TriggerEntry(1, 0, LOG_CODE, 0, condition=cond))
    book.arm(1)

    def raw(block: int, index: int) -> dict[str, Any]:
        return {
            "address": emitter,
            "topics": [bytes.fromhex(TRANSFER[2:])],
            "blockNumber": block,
            "logIndex": index,
            "blockHash": block.to_bytes(32, "big"),
            "transactionHash": (block * 1000 + index).to_bytes(32, "big"),
        }

    assert book.observe([raw(100, 3), raw(100, 1), raw(100, 3)]) == 2  # the same log once
    assert book.take_ready(100) == {}
    (ref,) = book.take_ready(101).values()
    assert (ref.block, ref.log_index) == (100, 1)  # in the contract's order
    book.arm(1)  # the run was skipped: the same log again
    assert book.take_ready(101)[1] == ref
    book.arm(1)
    assert book.take_ready(100 + BLOCKHASH_WINDOW - INCLUSION_MARGIN + 1) == {}
    assert book.pending(1) == [] and book.oldest_pending_block() is None


async def test_a_log_reorged_away_is_not_offered(dev_chain) -> None:  # type: ignore[no-untyped-def]
    """With no confirmations a log is read in its block and (here, min_age 1) offered a block
    later; the chain replaces that block first (a reorg: snapshot, revert, another
    transaction). The log must not be offered — its proof would be BAD_PROOF, which is not
    retried — and the workflow still fires on a later log."""
    w3, dep = dev_chain.w3, dev_chain.deployment
    wid = _log_workflow(w3, dep, ALICE)
    scheduler = await _scheduler(dev_chain.url, dep.address, {"min_age": 1})
    queue = scheduler.queue
    assert isinstance(queue, InMemoryJobQueue)
    await scheduler.process_block(int(w3.eth.block_number))
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    orphan = _mint(w3, dep.token, ALICE)
    await scheduler.process_block(int(orphan["blockNumber"]))  # read, pending, not yet ready
    assert [r.block for r in scheduler.index.logs.pending(wid)] == [int(orphan["blockNumber"])]
    w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
    _mint(w3, dep.token, BOB)  # the replacing block: another transaction, no log for this workflow
    with capture_logs() as logs:
        await scheduler.process_block(_mine(w3))
        await scheduler.process_block(_mine(w3))
    assert _jobs(queue) == []
    assert any(e["event"] == "scheduler.log_reorged" for e in logs)
    assert scheduler.index.logs.pending(wid) == []
    fresh = _mint(w3, dep.token, ALICE)
    await scheduler.process_block(_mine(w3))
    (job,) = _jobs(queue)
    assert job.proof is not None and decode(["uint256"], bytes.fromhex(job.proof[2:66]))[0] == fresh["blockNumber"]
    await queue.shutdown()
