"""Benchmark: how fast the distributed worker drains a burst of due runs.

1,000 TIME workflows (native transfers to distinct recipients, three owners) are created on a
dev chain, all due at the same instant. One `autometa scheduler` and `--executors` (default 2)
`autometa executor` processes (each its own allow-listed key) run against Redis and a fresh PostgreSQL database,
with anvil mining a block every second. Once the scheduler has indexed them all, the next
block's timestamp is set to the due time, so every run falls due in that one block.

- blocks_to_drain: the block including the last execution minus the due block (1 = all in the
  block right after the due block, the earliest possible: the scheduler sees the due block
  once it is mined);
- executions_per_s: executions / (timestamp of that last block - timestamp of the due block);
- duplicates: RunExecuted logs beyond one per (workflow, run index) (must be 0);
- cpu_ms_per_run: CPU time of the scheduler and the executors (user + system, from /proc) from
  just before the due block until every run is recorded by its executor and indexed by the
  scheduler's indexer, over the runs; by process, and by
  stage (`stages_cpu_ms_per_run`: the scheduler whole, then the executors' stages from their
  `executor.cpu` log lines — read, gather, simulate, send, receipt, record — and
  `executor_other`, their CPU no stage covered: event-loop callbacks, logging, GC).

Targets (issue 18): blocks_to_drain <= 3 with --executors 1 (the chain's limit is 2: ~53 k gas per
run, 30 M per block), <= 2 with 2 executors; cpu_ms_per_run <= 3; duplicates == 0.
Progress goes to stderr; the last stdout line is one JSON object.
Run: .venv/bin/python bench/throughput.py [--executors 2 --workflows 1000 --batch-size N --concurrency N]
(without --batch-size / --concurrency / --batch-gas-share the executors run at the settings'
defaults, BATCH_SIZE, MAX_CONCURRENT_EXECUTIONS and BATCH_GAS_SHARE; the JSON reports the values used).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.conftest import fresh_pg_database  # noqa: E402
from tests.support.stack import OWNER_KEYS, RPC_PROFILES, distributed_stack, native_spec, progress_printer, recipient  # noqa: E402

from autometa.chain.accounts import dev_account  # noqa: E402
from autometa.chain.contracts import autometa  # noqa: E402
from autometa.config import Settings  # noqa: E402

EXECUTOR_KEYS = (5, 6, 7)  # dev accounts, one per executor process (tests.support.stack allow-lists them)


def progress(message: str) -> None:
    print(f"[throughput] {message}", file=sys.stderr, flush=True)


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def recorded(stack: Any, executors: list[str]) -> int:
    """Runs the executors have recorded and acknowledged (their `executor.batch` lines)."""
    pattern = re.compile(r"executor\.batch .*?executed=(\d+)")
    return sum(int(m) for name in executors for m in pattern.findall(stack.log_text(name)))


def indexed_to(log_text: str) -> int:
    """The last block the scheduler's indexer has applied (its `indexed blocks=a-b` lines)."""
    ends = [
        int(m.group(1))
        for line in re.sub(r"\x1b\[[0-9;]*m", "", log_text).splitlines()
        if re.search(r"\bindexed\b", line) and (m := re.search(r"blocks\W+\d+-(\d+)", line))
    ]
    return max(ends, default=0)


def stage_cpu_ms(log_text: str) -> dict[str, float]:
    """An executor's CPU milliseconds per stage so far: its last `executor.cpu` line (none yet: {})."""
    lines = [line for line in log_text.splitlines() if "executor.cpu" in line]
    if not lines:
        return {}
    plain = re.sub(r"\x1b\[[0-9;]*m", "", lines[-1])
    return {k: float(v) for k, v in re.findall(r"(\w+)=(-?[\d.]+)", plain) if k != "runs"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workflows", type=int, default=1000)
    parser.add_argument("--executors", type=int, choices=(1, 2, 3), default=2)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument("--batch-gas-share", type=float, default=None)
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
    gas_share = args.batch_gas_share or float(defaults["BATCH_GAS_SHARE"].default)
    settings = {
        "BATCH_SIZE": str(batch_size),
        "MAX_CONCURRENT_EXECUTIONS": str(concurrency),
        "BATCH_GAS_SHARE": str(gas_share),
    }
    profile = args.rpc_profile
    keys = EXECUTOR_KEYS[: args.executors]
    with (
        fresh_pg_database("autometa_bench") as db,
        distributed_stack(db, executors=keys, rpc_profile=profile, **settings) as stack,
    ):
        w3 = stack.w3
        owners = [dev_account(i) for i in OWNER_KEYS]
        due = stack.head_timestamp() + 3600
        progress(f"creating {n} workflows due at {due}")
        started = time.monotonic()
        ids = stack.create_many([(owners[i % 3], native_spec(0, {"at": due}, recipient(i))) for i in range(n)])
        progress(f"created in {time.monotonic() - started:.1f} s; starting 1 scheduler + {len(keys)} executors")
        stack.interval_mining()
        stack.start("scheduler", "scheduler")
        workers = ["scheduler"]
        for i, key in enumerate(keys):
            stack.start_executor(f"executor-{i}", key)
            workers.append(f"executor-{i}")
        stack.wait_started(*workers[1:], marker="executor.started", timeout=90)
        stack.wait_for("the scheduler to load", lambda: f"workflows={n}" in stack.log_text("scheduler"), timeout=180)
        time.sleep(2)  # start-up work (imports, recovery, the first reads) is not the burst's
        before = int(w3.eth.block_number)
        cpu_before = {name: process_cpu_s(stack.procs[name].pid) for name in workers}
        stages_before = {name: stage_cpu_ms(stack.log_text(name)) for name in workers[1:]}
        w3.provider.make_request("evm_setNextBlockTimestamp", [due])  # type: ignore[arg-type]
        stack.wait_for("the due block", lambda: stack.head_timestamp() >= due, timeout=10)
        due_block = next(
            b for b in range(before + 1, int(w3.eth.block_number) + 1) if int(w3.eth.get_block(b)["timestamp"]) >= due
        )
        progress(f"due block {due_block}")
        stack.wait_executed(ids, timeout=300, progress=progress_printer("throughput"))
        stack.wait_for("every run recorded", lambda: recorded(stack, workers[1:]) >= n, timeout=60)
        # ... and indexed: the scheduler's indexer records the same runs from the chain, and its
        # work on the burst's last block is the scheduler's too.
        mined = max(int(e.blockNumber) for e in stack.executed_logs(due_block))
        stack.wait_for("the burst indexed", lambda: indexed_to(stack.log_text("scheduler")) >= mined, timeout=60)
        cpu = {name: process_cpu_s(stack.procs[name].pid) - cpu_before[name] for name in workers}
        stages: Counter[str] = Counter({"scheduler": 1000 * cpu["scheduler"]})
        for name in workers[1:]:
            after = stage_cpu_ms(stack.log_text(name))
            spent = {k: v - stages_before[name].get(k, 0.0) for k, v in after.items() if k not in ("other", "total")}
            stages.update(spent)
            stages["executor_other"] += 1000 * cpu[name] - sum(spent.values())
        time.sleep(3)  # a few more blocks: any duplicate would show
        logs = stack.executed_logs(due_block)
        skipped = autometa(w3, stack.dep.address).events.RunSkipped().get_logs(from_block=due_block)
        runs = Counter((int(e.args.workflowId), int(e.args.runIndex)) for e in logs)
        last_block = max(int(e.blockNumber) for e in logs)
        span_s = int(w3.eth.get_block(last_block)["timestamp"]) - int(w3.eth.get_block(due_block)["timestamp"])
        per_block = Counter(int(e.blockNumber) - due_block for e in logs)
        result = {
            "workflows": n,
            "executors": len(keys),
            "batch_size": batch_size,
            "concurrency": concurrency,
            "batch_gas_share": gas_share,
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
            "cpu_ms_per_run": round(1000 * sum(cpu.values()) / n, 2),
            "cpu_ms_per_run_by_process": {k: round(1000 * v / n, 2) for k, v in cpu.items()},
            "stages_cpu_ms_per_run": {k: round(v / n, 3) for k, v in stages.items()},
            **stack.rpc_figures(),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
