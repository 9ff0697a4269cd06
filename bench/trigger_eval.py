"""Benchmark: trigger evaluation per price tick (`--kind price`) or per block (`--kind state`).

**price** (default) — time per price tick, trigger index vs a straightforward scan.

1,000,000 PRICE workflows over 20 tokens (thresholds within ±10 % of each token's start price,
BELOW or ABOVE at random) are loaded into a `TriggerIndex`. The price of one token then moves
by a small random step per tick (a random walk), as a feed update does. Each tick asks for the
workflows whose condition now holds and that were not handed out before:

- indexed: `TriggerIndex.crossed(token, price, now)` (bisection over sorted thresholds);
- naive: the seed's way, every active workflow checked on every tick (a loop over all of them).

The first ticks run both side by side and must agree exactly; the rest time the index alone.
**state** — 100,000 STATE workflows over 20 distinct view calls (`latestRoundData()` of 20
Chainlink mock feeds on anvil; the answer word read as int256, a random comparator of the six,
thresholds within ±10 % of the answer). Each block some feeds move; the scheduler's STATE
evaluation runs on it: the distinct calls of the armed workflows, one `aggregate3` per 500 of
them through Multicall3 (at its canonical address), the holding workflows picked by bisection.
`eval_ms_per_block` is that whole step, RPC included; `rpc_calls_per_block` counts the eth_calls
it sent. The first blocks are checked against a scan (each distinct call read on its own, every
workflow compared in Python). Fired workflows are re-armed after each block, outside the timing,
so every block evaluates all of them.

Progress goes to stderr; the last stdout line is one JSON object.
Run: .venv/bin/python bench/trigger_eval.py [--workflows 1000000 --tokens 20 --ticks 2000]
     .venv/bin/python bench/trigger_eval.py --kind state [--workflows 100000 --targets 20 --blocks 50]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import operator
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from autometa.domain.kinds import Comparator, TriggerType  # noqa: E402
from autometa.worker.trigger_index import TriggerEntry, TriggerIndex  # noqa: E402


def progress(message: str) -> None:
    print(f"[trigger_eval] {message}", file=sys.stderr, flush=True)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def naive_tick(workflows: list[tuple[int, str, int, int]], fired: set[int], token: str, price: int) -> set[int]:
    """Check every workflow, as a scheduler without an index does."""
    out = set()
    for wid, wtoken, comparator, threshold in workflows:
        if wtoken != token or wid in fired:
            continue
        if (price < threshold) if comparator == 0 else (price > threshold):
            out.add(wid)
    fired |= out
    return out


class CountingCalls:
    """Counts the eth_calls an AsyncWeb3 sends (wraps the real provider's make_request)."""

    def __init__(self, w3: Any) -> None:
        self.count, inner = 0, w3.provider.make_request

        async def counted(method: Any, params: Any) -> Any:
            self.count += method == "eth_call"
            return await inner(method, params)

        w3.provider.make_request = counted


async def run_state(args: argparse.Namespace) -> dict[str, Any]:
    from autometa.chain.accounts import dev_role
    from autometa.chain.anvil import Anvil
    from autometa.chain.deploy import set_dev_price
    from autometa.chain.devnet import setup_dev_stack
    from autometa.chain.multicall3 import MULTICALL3_ADDRESS
    from autometa.chain.web3 import connect, connect_async
    from autometa.domain.triggers.state import STATE_CODE, StateTriggerData
    from autometa.worker.triggers.state import DEFAULT_CHUNK, read_calls, read_word, state_entry_of

    rng = random.Random(args.seed)
    ops = {
        "<": operator.lt,
        "<=": operator.le,
        ">": operator.gt,
        ">=": operator.ge,
        "==": operator.eq,
        "!=": operator.ne,
    }
    selector = "0xfeaf968c"  # latestRoundData()
    with Anvil() as anvil:
        w3 = connect(anvil.url)
        progress(f"deploying the dev stack with {args.targets} feeds (the view targets) and Multicall3")
        prices = {f"asset-{i}": Decimal(rng.randint(100, 100_000)) for i in range(args.targets)}
        dep = setup_dev_stack(w3, list(prices), prices)
        assert w3.eth.get_code(MULTICALL3_ADDRESS)
        feeds = [dep.feeds[a] for a in prices]
        answers = {f: int(prices[a] * 10**8) for a, f in zip(prices, feeds, strict=True)}

        progress(f"generating {args.workflows:,} STATE workflows")
        t0 = time.perf_counter()
        conditions: list[tuple[int, str, str, int]] = []  # (wid, feed, op, threshold)
        entries = []
        for wid in range(1, args.workflows + 1):
            feed = feeds[wid % len(feeds)]
            op = rng.choice(list(ops))
            threshold = int(answers[feed] * rng.uniform(0.9, 1.1))
            body = {
                "target": feed,
                "calldata": selector,
                "word": 1,
                "read_as": "int256",
                "comparator": op,
                "threshold": threshold,
            }
            data = StateTriggerData.model_validate(body)
            entries.append(state_entry_of(wid, 0, data))
            conditions.append((wid, feed, op, threshold))
        index = TriggerIndex()
        index.upsert_many(entries)
        index.advance(1)
        del entries
        gc.freeze()  # as Scheduler.load does after building its index
        load_s = time.perf_counter() - t0
        progress(f"loaded in {load_s:.1f} s; {len(index.states.calls())} distinct calls")

        aw3 = connect_async(anvil.url)
        counter = CountingCalls(aw3)
        admin = dev_role("admin")
        eval_s: list[float] = []
        read_s: list[float] = []
        rpc: list[int] = []
        holding: list[int] = []
        for block in range(args.blocks):
            for feed in rng.sample(feeds, k=max(1, len(feeds) // 4)):  # some feeds move (one block each)
                answers[feed] = max(1, int(answers[feed] * (1 + rng.gauss(0, 0.03))))
                set_dev_price(w3, admin, feed, Decimal(answers[feed]) / 10**8)
            number = int(w3.eth.block_number)
            before = counter.count
            t0 = time.perf_counter()
            calls = index.states.calls()
            results = await read_calls(aw3, calls, number)
            read_s.append(time.perf_counter() - t0)
            runs = index.fire(STATE_CODE, index.states.take_holding(results), block + 2)
            eval_s.append(time.perf_counter() - t0)
            rpc.append(counter.count - before)
            holding.append(len(runs))
            if block < args.compare_blocks:  # the scan: each call alone, every workflow in Python
                values = {f: read_word(bytes(w3.eth.call({"to": f, "data": selector}, number)), 1, 1) for f in feeds}
                want = {wid for wid, f, op, t in conditions if ops[op](values[f], t)}
                assert {r.workflow_id for r in runs} == want, f"block {block}: evaluator and scan disagree"
            for run in runs:  # back in the book for the next block (outside the timing)
                index.rearm(run.workflow_id)
            index.advance(block + 2)
            if block and block % 10 == 0:
                progress(f"block {block}: mean {statistics.fmean(eval_s) * 1000:.1f} ms, {rpc[-1]} eth_call")
        distinct = len(index.states.calls())
        return {
            "kind": "state",
            "n": args.workflows,
            "distinct_calls": distinct,
            "blocks": args.blocks,
            "rpc_calls_per_block": round(statistics.fmean(rpc), 2),
            "rpc_calls_bound": math.ceil(distinct / DEFAULT_CHUNK),
            "naive_rpc_calls_per_block": args.workflows,
            "eval_ms_per_block": round(statistics.fmean(eval_s) * 1000, 2),
            "eval_p99_ms": round(sorted(eval_s)[int(len(eval_s) * 0.99)] * 1000, 2),
            "read_ms_per_block": round(statistics.fmean(read_s) * 1000, 2),  # the aggregate3 round trip
            "holding_per_block": round(statistics.fmean(holding), 1),
            "checked_blocks": min(args.compare_blocks, args.blocks),
            "load_s": round(load_s, 2),
            "index_mb": round(index.memory_bytes() / 2**20, 1),
            "rss_mb": round(rss_mb(), 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=["price", "state"], default="price")
    parser.add_argument("--workflows", type=int, default=None, help="default: 1,000,000 price / 100,000 state")
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--ticks", type=int, default=2000, help="index-only ticks")
    parser.add_argument("--compare-ticks", type=int, default=10, help="ticks run by both, checked equal")
    parser.add_argument("--targets", type=int, default=20, help="state: distinct view calls")
    parser.add_argument("--blocks", type=int, default=50, help="state: blocks evaluated")
    parser.add_argument("--compare-blocks", type=int, default=5, help="state: blocks checked against a scan")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.kind == "state":
        args.workflows = args.workflows or 100_000
        print(json.dumps(asyncio.run(run_state(args))))
        return
    args.workflows = args.workflows or 1_000_000
    rng = random.Random(args.seed)
    tokens = [f"token-{i}" for i in range(args.tokens)]
    prices = {t: rng.randint(1, 100_000) * 10**8 for t in tokens}  # 8 decimals, like the feeds

    progress(f"generating {args.workflows:,} workflows over {args.tokens} tokens")
    rss_before = rss_mb()
    entries = []
    for wid in range(1, args.workflows + 1):
        token = tokens[wid % args.tokens]
        threshold = int(prices[token] * rng.uniform(0.9, 1.1))
        entries.append(TriggerEntry(wid, 0, TriggerType.PRICE, 0, 0, token, Comparator(rng.getrandbits(1)), threshold))
    progress("loading the index")
    t0 = time.perf_counter()
    index = TriggerIndex()
    index.upsert_many(entries)
    load_s = time.perf_counter() - t0
    workflows = [(e.workflow_id, e.token or "", int(e.comparator), e.threshold) for e in entries]
    del entries
    progress(f"loaded in {load_s:.1f} s; index holds ~{index.memory_bytes() / 2**20:.0f} MiB")

    # First look at the start prices (a scheduler's first block): everything already true fires.
    fired: set[int] = set()
    for token in tokens:
        got = {r.workflow_id for r in index.crossed(token, prices[token], 1)}
        assert got == naive_tick(workflows, fired, token, prices[token])
    progress(f"start prices fired {len(fired):,} workflows; ticking")

    def step(token: str) -> int:
        prices[token] = max(1, int(prices[token] * (1 + rng.gauss(0, 0.002))))
        return prices[token]

    indexed_s: list[float] = []
    naive_s: list[float] = []
    crossed = 0
    for tick in range(args.compare_ticks):
        token = rng.choice(tokens)
        price = step(token)
        t0 = time.perf_counter()
        got = index.crossed(token, price, 2 + tick)
        indexed_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        want = naive_tick(workflows, fired, token, price)
        naive_s.append(time.perf_counter() - t0)
        assert {r.workflow_id for r in got} == want, f"tick {tick}: index and scan disagree"
        crossed += len(got)
    progress(f"{args.compare_ticks} ticks agree with the scan; timing {args.ticks} more on the index")
    for tick in range(args.ticks):
        token = rng.choice(tokens)
        price = step(token)
        t0 = time.perf_counter()
        got = index.crossed(token, price, 100 + tick)
        indexed_s.append(time.perf_counter() - t0)
        crossed += len(got)
        if tick and tick % 500 == 0:
            progress(f"tick {tick}: mean {statistics.fmean(indexed_s) * 1000:.3f} ms")

    indexed_ms = statistics.fmean(indexed_s) * 1000
    naive_ms = statistics.fmean(naive_s) * 1000
    result = {
        "kind": "price",
        "n": args.workflows,
        "tokens": args.tokens,
        "ticks": len(indexed_s),
        "indexed_ms": round(indexed_ms, 4),
        "indexed_p99_ms": round(sorted(indexed_s)[int(len(indexed_s) * 0.99)] * 1000, 4),
        "naive_ms": round(naive_ms, 2),
        "speedup": round(naive_ms / indexed_ms, 1),
        "crossed_per_tick": round(crossed / len(indexed_s), 1),
        "index_mb": round(index.memory_bytes() / 2**20, 1),
        "rss_mb": round(rss_mb(), 1),
        "rss_start_mb": round(rss_before, 1),
        "load_s": round(load_s, 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
