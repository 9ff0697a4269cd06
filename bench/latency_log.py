"""`bench/latency.py --kind log`: blocks from an emitted event to the LOG runs it triggers, and
every log run exactly once across a scheduler restart.

40 LOG workflows (ERC-20 `Transfer` of the dev token to one of 4 holders — topic 2 filtered —
so 10 per holder; three owners, a small native transfer each) on a dev chain mining a block
every second; one `autometa scheduler` and two `autometa executor` processes against Redis and
a fresh PostgreSQL database (the scheduler keeps its log checkpoint there).

1. One transaction mints to every holder (DevMulticall): 4 logs in one block, 40 runs.
   p50_blocks / p99_blocks: execution block - log block (1 = the very next block).
2. The scheduler is killed (SIGKILL), one more such transaction is sent while it is down and
   `--down-blocks` blocks pass, then it is started again: each workflow must run once for that
   log too. missed: workflows never attested for the second log; duplicates: attestations
   beyond one per (workflow, log) plus runs beyond the two logs.

Targets: p50 <= 1 block, p99 <= 2, duplicates 0, missed 0. Each LOG run is its own
`executeWithProof` transaction (no batch takes proofs), so a block takes at most the executors'
transactions in flight. Progress to stderr, the last stdout line one JSON object.
"""

from __future__ import annotations

import math
import sys
import time
from collections import Counter
from typing import Any

from eth_utils import keccak
from tests.conftest import fresh_pg_database
from tests.support.stack import OWNER_KEYS, Stack, distributed_stack, native_spec, progress_printer, recipient

from autometa.chain.accounts import dev_account, dev_role
from autometa.chain.contracts import autometa, bind, factory
from autometa.chain.deploy import transact
from autometa.domain.triggers import get_kind
from autometa.domain.triggers.log import LOG_CODE

HOLDERS = 4
TRANSFER = "0x" + keccak(text="Transfer(address,address,uint256)").hex()


def progress(message: str) -> None:
    print(f"[latency:log] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _topic(address: str) -> str:
    return "0x" + address[2:].lower().rjust(64, "0")


def _mint_all(stack: Stack, batcher: str, holders: list[str]) -> int:
    """Mint to every holder in one transaction; returns its block."""
    token = str(stack.dep.token)
    dev_token = bind(stack.w3, "DevToken", token)
    calls = [dev_token.encode_abi("mint", args=[h, 1]) for h in holders]
    receipt = transact(stack.w3, dev_role("admin"), bind(stack.w3, "DevMulticall", batcher).functions.run(token, calls))
    return int(receipt["blockNumber"])


def _attestations(stack: Stack) -> list[Any]:
    core = autometa(stack.w3, stack.dep.address)
    return list(core.events.LogAttested().get_logs(from_block=stack.dep.block, to_block="latest"))


def _wait_attested(stack: Stack, ids: list[int], block: int, timeout: float) -> dict[int, int]:
    """Until every workflow is attested for a log of `block`: workflow id -> its run's block."""
    deadline = time.monotonic() + timeout
    say = progress_printer("latency:log")
    while True:
        done = {
            int(e.args.workflowId): int(e.blockNumber) for e in _attestations(stack) if int(e.args.blockNumber) == block
        }
        say(f"attested {len(done)}/{len(ids)} for the log of block {block}")
        if set(ids) <= set(done) or time.monotonic() > deadline:
            return done
        stack.check_alive()
        time.sleep(0.5)


def run(workflows: int, batch_size: int, concurrency: int, down_blocks: int) -> dict[str, Any]:
    reason = get_kind("log").needs_contract
    if reason is not None:
        return {"kind": "log", "pending": f"LOG is not creatable in this version: it needs {reason}"}
    settings = {"BATCH_SIZE": str(batch_size), "MAX_CONCURRENT_EXECUTIONS": str(concurrency)}
    with fresh_pg_database("autometa_bench") as db, distributed_stack(db, executors=(5, 6), **settings) as stack:
        w3 = stack.w3
        owners = [dev_account(i) for i in OWNER_KEYS]
        token = str(stack.dep.token)
        holders = [recipient(20_000 + h) for h in range(HOLDERS)]
        progress(f"creating {workflows} log workflows (Transfer to one of {HOLDERS} holders)")
        specs = [
            native_spec(
                LOG_CODE,
                {"emitter": token, "topic0": TRANSFER, "topics": [None, _topic(holders[i % HOLDERS])]},
                recipient(i),
            )
            for i in range(workflows)
        ]
        ids = stack.create_many([(owners[i % 3], s) for i, s in enumerate(specs)])
        batcher = str(transact(w3, dev_role("admin"), factory(w3, "DevMulticall").constructor())["contractAddress"])
        stack.interval_mining()
        stack.start("scheduler", "scheduler")
        for i, key in enumerate((5, 6)):
            stack.start_executor(f"executor-{i}", key)
        stack.wait_started("executor-0", "executor-1", marker="executor.started", timeout=90)
        stack.wait_for("the scheduler to load", lambda: f"workflows={workflows}" in stack.log_text("scheduler"), 120)
        time.sleep(2)  # a couple of quiet blocks: the scheduler follows the head

        first = _mint_all(stack, batcher, holders)
        progress(f"{HOLDERS} logs in block {first}")
        ran = _wait_attested(stack, ids, first, timeout=120)
        blocks = [float(ran[w] - first) for w in ids if w in ran]

        progress("killing the scheduler; one more log while it is down")
        stack.kill("scheduler")
        second = _mint_all(stack, batcher, holders)
        target = second + down_blocks
        stack.wait_for(f"{down_blocks} blocks while down", lambda: int(w3.eth.block_number) >= target, 60)
        stack.killed.discard("scheduler")
        restarted_at = time.monotonic()
        stack.start("scheduler", "scheduler")
        after = _wait_attested(stack, ids, second, timeout=180)
        catch_up_s = time.monotonic() - restarted_at
        time.sleep(5)  # more blocks: a log offered twice would show

        attested = _attestations(stack)
        per_log = Counter((int(e.args.workflowId), int(e.args.blockNumber), int(e.args.logIndex)) for e in attested)
        runs = Counter(int(e.args.workflowId) for e in attested)
        duplicates = sum(c - 1 for c in per_log.values()) + sum(max(0, runs[w] - 2) for w in ids)
        missed = len(set(ids) - set(after)) + len(set(ids) - set(ran))
        return {
            "kind": "log",
            "workflows": workflows,
            "executors": 2,
            "batch_size": batch_size,
            "concurrency": concurrency,
            "p50_blocks": percentile(blocks, 50) if blocks else None,
            "p99_blocks": percentile(blocks, 99) if blocks else None,
            "max_blocks": max(blocks) if blocks else None,
            "duplicates": duplicates,
            "missed": missed,
            "down_blocks": down_blocks,
            "restart_catch_up_s": round(catch_up_s, 1),
        }
