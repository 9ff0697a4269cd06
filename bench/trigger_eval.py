"""Benchmark: time per price tick, trigger index vs a straightforward scan.

1,000,000 PRICE workflows over 20 tokens (thresholds within ±10 % of each token's start price,
BELOW or ABOVE at random) are loaded into a `TriggerIndex`. The price of one token then moves
by a small random step per tick (a random walk), as a feed update does. Each tick asks for the
workflows whose condition now holds and that were not handed out before:

- indexed: `TriggerIndex.crossed(token, price, now)` (bisection over sorted thresholds);
- naive: the seed's way, every active workflow checked on every tick (a loop over all of them).

The first ticks run both side by side and must agree exactly; the rest time the index alone.
Progress goes to stderr; the last stdout line is one JSON object.
Run: .venv/bin/python bench/trigger_eval.py [--workflows 1000000 --tokens 20 --ticks 2000]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workflows", type=int, default=1_000_000)
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--ticks", type=int, default=2000, help="index-only ticks")
    parser.add_argument("--compare-ticks", type=int, default=10, help="ticks run by both, checked equal")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
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
