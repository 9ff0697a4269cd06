"""The STATE evaluator against anvil: Multicall3 at its canonical address, each distinct
(target, calldata) read once per block through `aggregate3` in chunks, every read type and
comparator decided like Python decides it, a failed or short call holding for nobody, and the
scheduler queueing the runs that hold — once."""

from __future__ import annotations

import math
import operator
from typing import Any

import pytest
from eth_utils import keccak

from autometa.chain.accounts import dev_role
from autometa.chain.contracts import autometa, bind, factory
from autometa.chain.deploy import transact
from autometa.chain.multicall3 import MULTICALL3_ADDRESS
from autometa.chain.web3 import connect_async
from autometa.domain.triggers.state import STATE_CODE, StateTriggerData
from autometa.worker.prices import PriceReader
from autometa.worker.queue import InMemoryJobQueue
from autometa.worker.scheduler import Scheduler
from autometa.worker.sources import ChainWorkflowSource
from autometa.worker.trigger_index import FIRED, TriggerIndex
from autometa.worker.triggers.state import MAX_ALONE, StateBook, _aggregate, read_calls, state_entry_of

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne}


def _sel(signature: str) -> str:
    return "0x" + keccak(text=signature)[:4].hex()


def _data(target: str, calldata: str, comparator: str, threshold: int | str, **extra: Any) -> StateTriggerData:
    return StateTriggerData.model_validate(
        {"target": target, "calldata": calldata, "comparator": comparator, "threshold": threshold, **extra}
    )


class CountingCalls:
    """Counts the eth_calls an AsyncWeb3 sends (instrumentation of the real provider)."""

    def __init__(self, w3: Any) -> None:
        self.count, self._inner = 0, w3.provider.make_request

        async def counted(method: Any, params: Any) -> Any:
            self.count += method == "eth_call"
            return await self._inner(method, params)

        w3.provider.make_request = counted


def test_multicall3_is_at_its_canonical_address(dev_chain) -> None:  # type: ignore[no-untyped-def]
    assert len(dev_chain.w3.eth.get_code(MULTICALL3_ADDRESS)) > 1000


async def test_every_read_type_and_comparator_decides_like_python(dev_chain) -> None:  # type: ignore[no-untyped-def]
    w3, dep = dev_chain.w3, dev_chain.deployment
    supply = autometa(w3, dep.address)  # only for the address; the token is read through its view
    token, feed, core = dep.token, dep.feeds["ethereum"], supply.address
    total = int(w3.eth.call({"to": token, "data": _sel("totalSupply()")}).hex(), 16)
    answer = -5 * 10**8  # a negative answer: int256 must be read signed
    transact(
        w3,
        dev_role("admin"),
        w3.eth.contract(
            feed,
            abi=[
                {
                    "name": "updateAnswer",
                    "type": "function",
                    "inputs": [{"name": "a", "type": "int256"}],
                    "outputs": [],
                    "stateMutability": "nonpayable",
                }
            ],
        ).functions.updateAnswer(answer),
    )
    admin = dev_role("admin").address
    price_call = _sel("currentPrice(bytes32,uint64)") + b"ethereum".ljust(32, b"\0").hex() + "00" * 32
    ok = int(w3.eth.call({"to": core, "data": price_call})[:32].hex(), 16)  # false: a negative answer
    other = next(a for a in dep.feeds if a != "ethereum").encode()  # its feed answers a positive price
    other_call = _sel("currentPrice(bytes32,uint64)") + other.ljust(32, b"\0").hex() + "00" * 32
    other_ok = int(w3.eth.call({"to": core, "data": other_call})[:32].hex(), 16)
    assert (ok, other_ok) == (0, 1)
    cases: list[tuple[StateTriggerData, bool]] = []
    for op, fn in OPS.items():
        for delta in (-1, 0, 1):
            cases.append((_data(token, _sel("totalSupply()"), op, total + delta), fn(total, total + delta)))
            cases.append(
                (
                    _data(feed, _sel("latestRoundData()"), op, answer + delta, word=1, read_as="int256"),
                    fn(answer, answer + delta),
                )
            )
    for op in ("==", "!="):
        cases.append((_data(core, _sel("owner()"), op, admin, read_as="address"), op == "=="))
        cases.append((_data(core, _sel("owner()"), op, dev_role("user").address, read_as="address"), op == "!="))
        cases.append((_data(core, price_call, op, 1, read_as="bool"), OPS[op](ok, 1)))
        cases.append((_data(core, other_call, op, 1, read_as="bool"), OPS[op](other_ok, 1)))
    cases.append((_data(token, "0xdeadbeef", ">=", 0), False))  # the view reverts
    cases.append((_data(token, _sel("totalSupply()"), ">=", 0, word=3), False))  # no fourth word
    cases.append((_data(dev_role("user").address, _sel("totalSupply()"), ">=", 0), False))  # no code: no data

    index, aw3 = TriggerIndex(), connect_async(dev_chain.url)
    index.upsert_many([state_entry_of(i + 1, 0, data) for i, (data, _) in enumerate(cases)])
    index.advance(int(w3.eth.get_block("latest")["timestamp"]))
    calls = index.states.calls()
    assert len(calls) == 7  # distinct (target, calldata) pairs, not one per workflow
    results = await read_calls(aw3, calls, "latest")
    runs = index.fire(STATE_CODE, index.states.take_holding(results), 0)
    assert sorted(r.workflow_id for r in runs) == [i + 1 for i, (_, holds) in enumerate(cases) if holds]
    assert all(index.where(r.workflow_id) == FIRED and r.kind == STATE_CODE for r in runs)
    # fired runs are out of the book: the same results hand out nothing more
    assert index.fire(STATE_CODE, index.states.take_holding(results), 0) == []


@pytest.mark.parametrize("chunk", [1, 2, 500])
async def test_identical_calls_are_read_once_in_chunks(dev_chain, chunk: int) -> None:  # type: ignore[no-untyped-def]
    w3, token = dev_chain.w3, dev_chain.deployment.token
    holders = [dev_role(r).address for r in ("admin", "relayer", "executor", "user", "recipient")]
    book = StateBook()
    wid = 0
    for holder in holders:  # 5 distinct calls, 40 workflows each
        for i in range(40):
            wid += 1
            data = _data(token, _sel("balanceOf(address)") + "00" * 12 + holder[2:].lower(), ">", i * 10**18)
            book.set(state_entry_of(wid, 0, data))
            book.arm(wid)
    calls = book.calls()
    assert len(calls) == len(holders)
    aw3 = connect_async(dev_chain.url)
    counter = CountingCalls(aw3)
    results = await read_calls(aw3, calls, "latest", chunk=chunk)
    assert counter.count == math.ceil(len(holders) / chunk)
    balances = {
        h: int(
            w3.eth.call({"to": token, "data": _sel("balanceOf(address)") + "00" * 12 + h[2:].lower()}).hex() or "0", 16
        )
        for h in holders
    }
    holding = sorted(book.take_holding(results))
    expected = sorted(n * 40 + i + 1 for n, h in enumerate(holders) for i in range(40) if balances[h] > i * 10**18)
    assert holding == expected and any(balances.values())


async def test_the_scheduler_queues_state_runs_once(dev_chain) -> None:  # type: ignore[no-untyped-def]
    w3, dep = dev_chain.w3, dev_chain.deployment
    aw3 = connect_async(dev_chain.url)
    queue = InMemoryJobQueue()
    await queue.startup()
    scheduler = Scheduler(aw3, ChainWorkflowSource(aw3, dep.address), queue, PriceReader(aw3, dep.address))
    await scheduler.load()
    holds = _data(dep.token, _sel("totalSupply()"), ">", 0)
    waits = _data(dep.token, _sel("totalSupply()"), "<", 0)
    scheduler.index.upsert_many([state_entry_of(900, 0, holds), state_entry_of(901, 0, waits)])
    block = int(w3.eth.block_number)
    report = await scheduler.process_block(block)
    assert (report.due, report.enqueued) == (1, 1)
    job = queue._buffer.get_nowait()
    assert (job.workflow_id, job.run_index, job.kind) == (900, 0, STATE_CODE)
    assert (await scheduler.process_block(block)).due == 0  # fired: not offered again
    await queue.shutdown()


async def test_a_gas_burning_view_fails_alone(dev_chain) -> None:  # type: ignore[no-untyped-def]
    """Multicall3 gives a call all the gas left: a view that loops would starve every call after
    it in its chunk. The evaluator re-reads the starved ones alone; only the burner fails."""
    w3, token, admin = dev_chain.w3, dev_chain.deployment.token, dev_role("admin")
    burner = transact(w3, admin, factory(w3, "DevGasBurner").constructor())["contractAddress"]
    transact(w3, admin, bind(w3, "DevGasBurner", burner).functions.arm(True))
    holders = ["0x" + f"{i + 1:040x}" for i in range(300)]  # distinct balanceOf calls after the burner
    book = StateBook()
    datas = [_data(burner, _sel("act(bytes)") + "20".rjust(64, "0") + "0" * 64, ">=", 0)]
    datas += [_data(token, _sel("balanceOf(address)") + h[2:].rjust(64, "0"), ">=", 0) for h in holders]
    for wid, data in enumerate(datas, start=1):
        book.set(state_entry_of(wid, 0, data))
        book.arm(wid)
    calls = book.calls()
    aw3 = connect_async(dev_chain.url)
    counter = CountingCalls(aw3)  # before the first request: web3 caches its request path
    first = await _aggregate(aw3, calls, "latest", MULTICALL3_ADDRESS)  # the chunk as one aggregate3
    assert first is None or not all(ok for ok, _ in first[1:]), "the burner starved nobody: the test proves nothing"
    counter.count = 0
    results = await read_calls(aw3, calls, "latest")
    assert [results[cid][0] for cid, *_ in calls] == [False] + [True] * len(holders)
    assert 1 < counter.count <= 2 * math.ceil(math.log2(len(calls))) + MAX_ALONE  # halving to the burner
    assert sorted(book.take_holding(results)) == list(range(2, len(datas) + 1))
