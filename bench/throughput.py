"""Benchmark: how fast the distributed worker drains a burst of due runs.

1,000 TIME workflows (native transfers to distinct recipients, three owners) are created on a
dev chain, all due at the same instant. One `autometa scheduler` and two `autometa executor`
processes (each its own allow-listed key) run against Redis and a fresh PostgreSQL database,
with anvil mining a block every second. Once the scheduler has indexed them all, the next
block's timestamp is set to the due time, so every run falls due in that one block.

- blocks_to_drain: the block including the last execution minus the due block (1 = all in the
  block right after the due block, the earliest possible: the scheduler sees the due block
  once it is mined);
- executions_per_s: executions / (timestamp of that last block - timestamp of the due block);
- duplicates: RunExecuted logs beyond one per (workflow, run index) (must be 0).

Targets: blocks_to_drain <= 5, duplicates == 0.
Progress goes to stderr; the last stdout line is one JSON object.
Run: .venv/bin/python bench/throughput.py [--workflows 1000 --batch-size N --concurrency N]
(without --batch-size / --concurrency the executors run at the settings' defaults, BATCH_SIZE and
MAX_CONCURRENT_EXECUTIONS; the JSON reports the values used).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.conftest import fresh_pg_database  # noqa: E402
from tests.support.stack import OWNER_KEYS, RPC_PROFILES, distributed_stack, native_spec, progress_printer, recipient  # noqa: E402

from autometa.chain.accounts import dev_account  # noqa: E402
from autometa.chain.contracts import autometa  # noqa: E402
from autometa.config import Settings  # noqa: E402

EXECUTORS = (5, 6)


def progress(message: str) -> None:
    print(f"[throughput] {message}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workflows", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument(
        "--rpc-profile",
        choices=RPC_PROFILES,
        default="none",
        help="public: the workers reach anvil through a public-provider-like proxy, 2 s blocks",
    )
    args = parser.parse_args()
    n = args.workflows
    defaults = Settings.model_fields
    batch_size = args.batch_size or int(defaults["BATCH_SIZE"].default)
    concurrency = args.concurrency or int(defaults["MAX_CONCURRENT_EXECUTIONS"].default)
    settings = {"BATCH_SIZE": str(batch_size), "MAX_CONCURRENT_EXECUTIONS": str(concurrency)}
    profile = args.rpc_profile
    with (
        fresh_pg_database("autometa_bench") as db,
        distributed_stack(db, executors=EXECUTORS, rpc_profile=profile, **settings) as stack,
    ):
        w3 = stack.w3
        owners = [dev_account(i) for i in OWNER_KEYS]
        due = stack.head_timestamp() + 3600
        progress(f"creating {n} workflows due at {due}")
        started = time.monotonic()
        ids = stack.create_many([(owners[i % 3], native_spec(0, {"at": due}, recipient(i))) for i in range(n)])
        progress(f"created in {time.monotonic() - started:.1f} s; starting 1 scheduler + {len(EXECUTORS)} executors")
        stack.interval_mining()
        stack.start("scheduler", "scheduler")
        for i, key in enumerate(EXECUTORS):
            stack.start_executor(f"executor-{i}", key)
        stack.wait_started(*(f"executor-{i}" for i in range(len(EXECUTORS))), marker="executor.started", timeout=90)
        stack.wait_for("the scheduler to load", lambda: f"workflows={n}" in stack.log_text("scheduler"), timeout=180)
        before = int(w3.eth.block_number)
        w3.provider.make_request("evm_setNextBlockTimestamp", [due])  # type: ignore[arg-type]
        stack.wait_for("the due block", lambda: stack.head_timestamp() >= due, timeout=10)
        due_block = next(
            b for b in range(before + 1, int(w3.eth.block_number) + 1) if int(w3.eth.get_block(b)["timestamp"]) >= due
        )
        progress(f"due block {due_block}")
        stack.wait_executed(ids, timeout=300, progress=progress_printer("throughput"))
        time.sleep(3)  # a few more blocks: any duplicate would show
        logs = stack.executed_logs(due_block)
        skipped = autometa(w3, stack.dep.address).events.RunSkipped().get_logs(from_block=due_block)
        runs = Counter((int(e.args.workflowId), int(e.args.runIndex)) for e in logs)
        last_block = max(int(e.blockNumber) for e in logs)
        span_s = int(w3.eth.get_block(last_block)["timestamp"]) - int(w3.eth.get_block(due_block)["timestamp"])
        per_block = Counter(int(e.blockNumber) - due_block for e in logs)
        result = {
            "workflows": n,
            "executors": len(EXECUTORS),
            "batch_size": batch_size,
            "concurrency": concurrency,
            "rpc_profile": args.rpc_profile,
            "block_time_s": stack.block_time,
            "due_block": due_block,
            "last_block": last_block,
            "blocks_to_drain": last_block - due_block,
            "executions_per_block": {str(k): v for k, v in sorted(per_block.items())},
            "executions": len(logs),
            "executions_per_s": round(len(logs) / max(span_s, 1), 1),
            "duplicates": sum(c - 1 for c in runs.values()),
            "failed": sum(1 for e in logs if not e.args.success),
            "skipped_onchain": len(skipped),
            "all_executed": set(runs) == {(wid, 0) for wid in ids},
            **stack.rpc_figures(),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
