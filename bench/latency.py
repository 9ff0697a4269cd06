"""Benchmark: blocks and seconds from a trigger's condition flipping to the runs it triggers.

`--kind price` (default) and `--kind state`:

200 PRICE workflows in the seed's shape (ethereum below $3200 -> send a small amount, each to
its own recipient; three owners) are created on a dev chain mining a block every second. One
`autometa scheduler` and two `autometa executor` processes (own keys) run against Redis and a
fresh PostgreSQL database. The ethereum feed (MockV3Aggregator) then moves from 3250 to
3198.15 (`updateAnswer`), and for every workflow we take the block of that update and the block
including its execution.

`--kind state`: 40 STATE workflows (ERC-20 `balanceOf(holder) >= 1e18` over 4 holders, so 4
distinct view calls; the same owners and action). One transaction mints 1e18 to every holder
(DevMulticall), and the blocks are counted from that one. Each STATE run is its own
`executeWithProof` transaction (the contract has no batch with proofs), so the runs one block can
take are bounded by how fast each executor key sends (one transaction after another) and by the
block gas the transactions' limits add up to (the view's gas cap included).

- p50_blocks / p99_blocks: execution block - update block (1 = the very next block);

- p50_s / p99_s: the same as block timestamps (seconds).

Targets: p50 <= 1 block, p99 <= 2 blocks. Progress goes to stderr; the last stdout line is one
JSON object. Run: .venv/bin/python bench/latency.py [--kind price|state|log --workflows N --batch-size N
--concurrency N] (without --batch-size / --concurrency: the settings' defaults).

`--kind log`: an emitted event to its LOG runs, and across a scheduler restart (bench/latency_log.py).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from eth_utils import keccak  # noqa: E402
from tests.conftest import fresh_pg_database  # noqa: E402
from tests.support.stack import OWNER_KEYS, RPC_PROFILES, distributed_stack, native_spec, progress_printer, recipient  # noqa: E402

from autometa.chain.accounts import dev_account, dev_role  # noqa: E402
from autometa.chain.contracts import bind, factory  # noqa: E402
from autometa.chain.deploy import set_dev_price, transact  # noqa: E402
from autometa.config import Settings  # noqa: E402

EXECUTORS = (5, 6)
STATE_HOLDERS = 4
STATE_THRESHOLD = 10**18
DEFAULT_WORKFLOWS = {"price": 200, "state": 40, "log": 40}


def progress(message: str) -> None:
    print(f"[latency] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", choices=sorted(DEFAULT_WORKFLOWS), default="price")
    parser.add_argument("--workflows", type=int, default=None, help="default: 200 price, 40 state, 40 log")
    parser.add_argument("--down-blocks", type=int, default=10, help="--kind log: blocks the scheduler is down")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument(
        "--rpc-profile",
        choices=RPC_PROFILES,
        default="none",
        help="public: the workers reach anvil through a public-provider-like proxy, 2 s blocks",
    )
    args = parser.parse_args()
    n = args.workflows or DEFAULT_WORKFLOWS[args.kind]
    # Without the flags, the settings' defaults (BATCH_SIZE, MAX_CONCURRENT_EXECUTIONS), like the
    # throughput bench: batches are sized from the block gas limit now (BATCH_GAS_SHARE), and
    # what a fixed 3 in flight allowed before is no measure of what a deployment does.
    defaults = Settings.model_fields
    args.batch_size = args.batch_size or int(defaults["BATCH_SIZE"].default)
    args.concurrency = args.concurrency or int(defaults["MAX_CONCURRENT_EXECUTIONS"].default)
    if args.kind == "log":
        from bench.latency_log import run

        print(json.dumps(run(n, args.batch_size, args.concurrency, args.down_blocks)))
        return
    settings = {"BATCH_SIZE": str(args.batch_size), "MAX_CONCURRENT_EXECUTIONS": str(args.concurrency)}
    profile = args.rpc_profile
    with (
        fresh_pg_database("autometa_bench") as db,
        distributed_stack(db, executors=EXECUTORS, rpc_profile=profile, **settings) as stack,
    ):
        w3 = stack.w3
        owners = [dev_account(i) for i in OWNER_KEYS]
        if args.kind == "state":
            token = str(stack.dep.token)
            holders = [recipient(10_000 + h) for h in range(STATE_HOLDERS)]
            triggers = [_balance_at_least(token, holders[i % STATE_HOLDERS]) for i in range(n)]
            progress(f"creating {n} state workflows (balanceOf(holder) >= 1e18, {STATE_HOLDERS} holders)")
            ids = stack.create_many([(owners[i % 3], native_spec(3, triggers[i], recipient(i))) for i in range(n)])
        else:
            trigger = {"token": "ethereum", "comparator": 0, "price_usd": 3200}
            progress(f"creating {n} price workflows (ethereum below $3200)")
            ids = stack.create_many([(owners[i % 3], native_spec(2, trigger, recipient(i))) for i in range(n)])
        stack.interval_mining()
        stack.start("scheduler", "scheduler")
        for i, key in enumerate(EXECUTORS):
            stack.start_executor(f"executor-{i}", key)
        stack.wait_started(*(f"executor-{i}" for i in range(len(EXECUTORS))), marker="executor.started", timeout=90)
        stack.wait_for("the scheduler to load", lambda: f"workflows={n}" in stack.log_text("scheduler"), timeout=120)
        time.sleep(2)  # a couple of quiet blocks: the scheduler follows the head
        if args.kind == "state":
            receipt = _mint_all(w3, str(stack.dep.token), holders)
            update_block = int(receipt["blockNumber"])
            progress(f"{STATE_HOLDERS} balances reached 1e18 in block {update_block}")
        else:
            receipt = set_dev_price(w3, dev_role("admin"), stack.dep.feeds["ethereum"], Decimal("3198.15"))
            update_block = int(receipt["blockNumber"])
            progress(f"feed moved to 3198.15 in block {update_block}")
        update_ts = int(w3.eth.get_block(update_block)["timestamp"])
        stack.wait_executed(ids, timeout=120, progress=progress_printer("latency"))
        logs = stack.executed_logs(update_block)
        stamps = {b: int(w3.eth.get_block(b)["timestamp"]) for b in {int(e.blockNumber) for e in logs}}
        first = {}
        for e in sorted(logs, key=lambda e: (e.blockNumber, e.logIndex)):
            first.setdefault(int(e.args.workflowId), int(e.blockNumber))
        blocks = [float(first[wid] - update_block) for wid in ids]
        seconds = [float(stamps[first[wid]] - update_ts) for wid in ids]
        result = {
            "kind": args.kind,
            "workflows": n,
            "executors": len(EXECUTORS),
            "batch_size": args.batch_size,
            "concurrency": args.concurrency,
            "rpc_profile": args.rpc_profile,
            "block_time_s": stack.block_time,
            "update_block": update_block,
            "p50_blocks": percentile(blocks, 50),
            "p99_blocks": percentile(blocks, 99),
            "max_blocks": max(blocks),
            "p50_s": percentile(seconds, 50),
            "p99_s": percentile(seconds, 99),
            "duplicates": len(logs) - len({(int(e.args.workflowId), int(e.args.runIndex)) for e in logs}),
            **stack.rpc_figures(),
        }
    print(json.dumps(result))


def _balance_at_least(token: str, holder: str) -> dict[str, object]:
    calldata = "0x" + keccak(text="balanceOf(address)")[:4].hex() + holder[2:].lower().rjust(64, "0")
    return {"target": token, "calldata": calldata, "comparator": ">=", "threshold": STATE_THRESHOLD}


def _mint_all(w3: object, token: str, holders: list[str]) -> dict[str, object]:
    """Every holder's balance to the threshold in one transaction (one block flips them all)."""
    admin = dev_role("admin")
    batcher = transact(w3, admin, factory(w3, "DevMulticall").constructor())["contractAddress"]  # type: ignore[arg-type]
    dev_token = bind(w3, "DevToken", token)  # type: ignore[arg-type]
    calls = [dev_token.encode_abi("mint", args=[h, STATE_THRESHOLD]) for h in holders]
    return dict(transact(w3, admin, bind(w3, "DevMulticall", batcher).functions.run(token, calls)))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
