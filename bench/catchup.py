"""Benchmark: what a scheduler keeps after catching up on a backlog (issue 18).

`--workflows` workflows (none due, as in bench/idle.py) are created on a dev chain; then one
`autometa scheduler` starts on a FRESH database, so its indexer reads the whole backlog before
it loads its trigger index. Its resident memory is sampled until `scheduler.loaded`, then for
`--settle` seconds more:

- rss_mb: the scheduler's RSS at the end (what an idle scheduler keeps);
- peak_mb: the highest RSS sampled (the catch-up's peak, most of which a process keeps as heap);
- loaded_s: seconds from start to `scheduler.loaded`.

`--workflows 0` gives an empty start's figures to compare with.
Progress goes to stderr; the last stdout line is one JSON object.
Run: .venv/bin/python bench/catchup.py [--workflows 10000 --settle 15]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bench.idle import progress  # noqa: E402
from tests.conftest import fresh_pg_database  # noqa: E402
from tests.support.procs import rss_mb  # noqa: E402
from tests.support.stack import distributed_stack  # noqa: E402

from autometa.store import Store  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workflows", type=int, default=10_000)
    parser.add_argument("--settle", type=float, default=15.0)
    args = parser.parse_args()
    n = args.workflows
    with fresh_pg_database("autometa_bench_catchup") as db, distributed_stack(db, executors=(5,)) as stack:
        stack.create_idle(n, progress)  # as bench/idle.py creates them
        with fresh_pg_database("autometa_bench_catchup_fresh") as fresh:
            Store.open(fresh).close()
            proc = stack.start("scheduler", "scheduler", DATABASE_URL=fresh)
            t0, peak = time.monotonic(), 0.0
            while not stack.scheduler_loaded("scheduler"):
                stack.check_alive()
                peak = max(peak, rss_mb(proc.pid))
                time.sleep(0.2)
            loaded_s = time.monotonic() - t0
            progress(f"loaded in {loaded_s:.0f} s; settling {args.settle:.0f} s")
            end = time.monotonic() + args.settle
            while time.monotonic() < end:
                peak = max(peak, rss_mb(proc.pid))
                time.sleep(0.5)
            rss = rss_mb(proc.pid)
            stack.check_alive()
            stack.stop_all()
    result = {"workflows": n, "rss_mb": round(rss, 1), "peak_mb": round(peak, 1), "loaded_s": round(loaded_s, 1)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
