"""Benchmark: the JSON-RPC budget of the distributed worker (scheduler + executor + indexer).

A provider bills (or throttles) per request, so what the worker asks per block must not grow with
the workflows it watches. One `autometa scheduler` (its indexer inside) and one `autometa
executor` run against Redis and a fresh PostgreSQL database, and reach anvil (a block every
`--block-time` s) only through the counting RPC proxy of the tests; the bench's own set-up talks
to anvil directly and is not counted.

- idle_calls_per_block[N]: requests per block with N workflows, none due (the first `--due` of them
  TIME workflows due later, the rest due in a year), measured over `--blocks` blocks at each N;
- due_calls_per_batch: requests from the block the `--due` runs fall due in until all executed,
  less the idle rate over those blocks, divided by the executeBatch transactions that ran them;
- by_method for each phase (requests per block, or per batch).

Targets: idle_calls_per_block <= 5 at every N (and not growing with N); due_calls_per_batch <= 3.
Progress goes to stderr; the last stdout line is one JSON object.
Run: .venv/bin/python bench/rpc_budget.py [--idle 1000,10000 --due 1000 --blocks 20 --block-time 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.conftest import fresh_pg_database  # noqa: E402
from tests.support.rpc_proxy import RpcProxy  # noqa: E402
from tests.support.stack import OWNER_KEYS, Stack, distributed_stack, native_spec, recipient  # noqa: E402

from autometa.chain.accounts import dev_account  # noqa: E402

EXECUTOR = 5
YEAR = 365 * 24 * 3600


def progress(message: str) -> None:
    print(f"[rpc_budget] {message}", file=sys.stderr, flush=True)


def per(calls: Counter[str], n: float) -> dict[str, float]:
    return {m: round(c / n, 2) for m, c in sorted(calls.items(), key=lambda kv: -kv[1]) if c > 0}


def counted(proxy: RpcProxy) -> Counter[str]:
    with proxy._lock:
        return Counter(proxy.calls)


def wait_blocks(stack: Stack, n: int) -> tuple[int, int]:
    """Wait until `n` more blocks are mined; (first, last) block numbers seen."""
    start = int(stack.w3.eth.block_number)
    while int(stack.w3.eth.block_number) < start + n:
        time.sleep(0.2)
    return start, int(stack.w3.eth.block_number)


def measure_idle(stack: Stack, proxy: RpcProxy, blocks: int) -> tuple[float, dict[str, float]]:
    wait_blocks(stack, 2)  # anything the creation left to index is done
    head = int(stack.w3.eth.block_number)
    while int(stack.w3.eth.block_number) == head:  # start right at a new block
        time.sleep(0.05)
    before, start = counted(proxy), int(stack.w3.eth.block_number)
    while int(stack.w3.eth.block_number) < start + blocks:
        time.sleep(0.05)
    used = counted(proxy)
    used.subtract(before)
    return round(sum(used.values()) / blocks, 2), per(used, blocks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", default="1000,10000", help="workflow counts to measure idle at, ascending")
    parser.add_argument("--due", type=int, default=1000)
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--block-time", type=int, default=2)
    args = parser.parse_args()
    counts = [int(c) for c in args.idle.split(",")]
    assert counts == sorted(counts) and counts[0] >= args.due, "--idle ascending, the first at least --due"
    owners = [dev_account(i) for i in OWNER_KEYS]
    with (
        fresh_pg_database("autometa_bench") as db,
        distributed_stack(db, executors=(EXECUTOR,), deposit_wei=1000 * 10**18) as stack,
        RpcProxy(stack.anvil.url) as proxy,
    ):
        stack.settings["MOONBASE_RPC"] = proxy.url
        stack.block_time = args.block_time
        stack.settings["BLOCK_TIME_S"] = str(args.block_time)
        due_at = stack.head_timestamp() + 30 * 24 * 3600
        made = 0

        def create(n: int, at: int) -> list[int]:
            nonlocal made
            items = [(owners[(made + i) % 3], native_spec(0, {"at": at}, recipient(made + i))) for i in range(n)]
            made += n
            started = time.monotonic()
            ids = stack.create_many(items)
            progress(f"created {n} workflows (total {made}) in {time.monotonic() - started:.0f} s")
            return ids

        due_ids = create(args.due, due_at)
        create(counts[0] - args.due, due_at + YEAR)
        stack.interval_mining()
        stack.start("scheduler", "scheduler")
        stack.start_executor("executor", EXECUTOR)
        stack.wait_started("executor", marker="executor.started", timeout=120)
        stack.wait_for("the scheduler to load", lambda: "scheduler.loaded" in stack.log_text("scheduler"), timeout=300)
        idle: dict[str, float] = {}
        idle_by_method: dict[str, dict[str, float]] = {}
        for i, n in enumerate(counts):
            if i > 0:
                create(n - made, due_at + YEAR)
            stack.check_alive()
            rate, methods = measure_idle(stack, proxy, args.blocks)
            idle[str(n)], idle_by_method[str(n)] = rate, methods
            progress(f"{n} idle workflows: {rate} requests/block {methods}")
        base = idle[str(counts[-1])]

        before = counted(proxy)
        start_block = int(stack.w3.eth.block_number)
        stack.w3.provider.make_request("evm_setNextBlockTimestamp", [due_at])  # type: ignore[arg-type]
        stack.wait_executed(due_ids, timeout=600, progress=progress)
        end_block = int(stack.w3.eth.block_number)
        used = counted(proxy)
        used.subtract(before)
        logs = stack.executed_logs(start_block)
        batches = len({e.transactionHash for e in logs})
        blocks = max(1, end_block - start_block)
        runs = Counter((int(e.args.workflowId), int(e.args.runIndex)) for e in logs)
        result: dict[str, Any] = {
            "workflows": counts,
            "block_time_s": args.block_time,
            "idle_calls_per_block": idle,
            "idle_by_method": idle_by_method,
            "due": args.due,
            "batches": batches,
            "due_blocks": blocks,
            "due_calls": sum(used.values()),
            "due_calls_per_batch": round((sum(used.values()) - base * blocks) / max(batches, 1), 2),
            "due_by_method_per_batch": per(used, max(batches, 1)),
            "duplicates": sum(c - 1 for c in runs.values()),
            "all_executed": set(runs) >= {(wid, 0) for wid in due_ids},
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
