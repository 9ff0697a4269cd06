"""Benchmark: what an idle deployment costs — CPU and memory of scheduler + executor + API while
many workflows are active and none is due.

10,000 workflows (by default) are created on a dev chain: a third TIME triggers a month ahead, a
third INTERVAL triggers starting a month ahead, a third PRICE triggers on a price far from the
feed's. Then, against Redis and a fresh PostgreSQL database while anvil mines a block every
second, one of three layouts runs: `multi`, one `autometa scheduler`, one `autometa executor`
and one `autometa api` process; `single`, one `autometa worker` process hosting all three roles;
`forked`, `autometa worker --fork`: a parent that has loaded everything and one forked child per
role. After a warm-up, CPU time (user + system, read from /proc) is taken over the measuring
window.

- cpu_pct: CPU seconds of the processes together / wall seconds, in % of one core;
- rss_mb: the processes' resident memory summed at the end of the window. A page shared by
  several processes (a forked child's inherited libraries, a shared library's code) counts
  once per process here;
- pss_mb: the processes' proportional set size summed (/proc/PID/smaps_rollup): each shared page
  split among its sharers, so the sum is the memory the layout occupies on the machine;
- per-process figures, the blocks mined in the window, and the KB of RSS per workflow the
  scheduler holds beyond an empty start (`--workflows 0` gives the empty baseline).

Targets (issue 18): cpu_pct <= 5, rss_mb <= 250.
Progress goes to stderr; the last stdout line is one JSON object.
The layouts are measured one after the other on the same chain and database (`--layout all`,
the default); the top-level figures are the first layout's, `layouts` has each.
Run: .venv/bin/python bench/idle.py [--layout all|multi|single|forked --workflows 10000 --seconds 120 --warmup 20]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.conftest import fresh_pg_database  # noqa: E402
from tests.support.procs import children, pss_mb, rss_mb  # noqa: E402
from tests.support.stack import distributed_stack  # noqa: E402

from autometa.chain.anvil import free_port  # noqa: E402

EXECUTOR = 5
TICKS = os.sysconf("SC_CLK_TCK")


def progress(message: str) -> None:
    print(f"[idle] {message}", file=sys.stderr, flush=True)


def cpu_seconds(pid: int) -> float:
    """User + system time of a process and its waited-for children (/proc/PID/stat fields 14–17)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / TICKS


def measure(stack: Any, layout: str, args: argparse.Namespace) -> dict[str, Any]:
    """Start `layout`'s processes, warm up, measure, stop them: that layout's figures."""
    api_env = {"API_PORT": str(free_port()), "API_HOST": "127.0.0.1"}
    stack.procs.clear()
    if layout in ("single", "forked"):
        roles = ("scheduler", "executor", "api")
        stack.start_worker("worker", EXECUTOR, roles, fork=layout == "forked", **api_env)
        executor, scheduler = "worker", "worker"
    else:
        stack.start("scheduler", "scheduler")
        stack.start_executor("executor", EXECUTOR)
        stack.start("api", "api", **api_env)
        executor, scheduler = "executor", "scheduler"
    stack.wait_started(executor, marker="executor.started", timeout=120)
    stack.wait_for("the scheduler to load", lambda: stack.scheduler_loaded(scheduler), timeout=300)
    progress(f"{layout}: warming up {args.warmup:.0f} s")
    time.sleep(args.warmup)
    stack.check_alive()
    pids = {name: proc.pid for name, proc in stack.procs.items()}
    if layout == "forked":  # the supervisor and its three roles' processes
        pids |= {f"worker-child-{i}": pid for i, pid in enumerate(children(pids["worker"]))}
    first_block = int(stack.w3.eth.block_number)
    cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
    t0 = time.monotonic()
    progress(f"{layout}: measuring {args.seconds:.0f} s")
    time.sleep(args.seconds)
    wall = time.monotonic() - t0
    cpu = {name: cpu_seconds(pid) - cpu0[name] for name, pid in pids.items()}
    rss = {name: rss_mb(pid) for name, pid in pids.items()}
    pss = {name: pss_mb(pid) for name, pid in pids.items()}
    blocks = int(stack.w3.eth.block_number) - first_block
    stack.check_alive()
    stack.stop_all()
    return {
        "seconds": round(wall, 1),
        "blocks": blocks,
        "cpu_pct": round(100 * sum(cpu.values()) / wall, 2),
        "rss_mb": round(sum(rss.values()), 1),
        "pss_mb": round(sum(pss.values()), 1),
        "cpu_pct_by_process": {k: round(100 * v / wall, 2) for k, v in cpu.items()},
        "rss_mb_by_process": {k: round(v, 1) for k, v in rss.items()},
        "pss_mb_by_process": {k: round(v, 1) for k, v in pss.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workflows", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--warmup", type=float, default=20.0)
    parser.add_argument("--layout", choices=("multi", "single", "forked", "all"), default="all")
    args = parser.parse_args()
    n = args.workflows
    layouts = ("multi", "single", "forked") if args.layout == "all" else (args.layout,)
    with fresh_pg_database("autometa_bench_idle") as db, distributed_stack(db, executors=(EXECUTOR,)) as stack:
        progress(f"creating {n} workflows, none due")
        stack.create_idle(n, progress)
        measured = {layout: measure(stack, layout, args) for layout in layouts}
        executed = len(stack.executed_logs())
    result: dict[str, Any] = {"workflows": n, **measured[layouts[0]], "layout": layouts[0]}
    if len(layouts) > 1:
        result["layouts"] = measured
    result |= {"executions": executed, "targets": {"cpu_pct": 5, "rss_mb": 250}}  # none is due: 0
    print(json.dumps(result))


if __name__ == "__main__":
    main()
