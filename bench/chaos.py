"""Benchmark: the distributed worker through a mixed storm of faults, audited to the wei.

Two `autometa scheduler` (one active, one standby) and three `autometa executor` processes,
anvil with 1 s blocks, a private Redis and a private PostgreSQL (both restarted on the way; the
shared servers are never touched). The executors reach the chain through a fault-injecting
JSON-RPC proxy that, all along, drops responses to eth_sendRawTransaction after forwarding them,
answers 5xx to receipt lookups, resets simulations and delays nonce reads.

1,000+ one-shot TIME workflows fall due over about a minute (plus oracle-priced workflows fired
by a feed move, and an owner whose escrow is drained just before theirs fall due). During that
minute: kill -9 of an executor mid-batch (a new one takes its key and journal), a Redis restart,
kill -9 of the active scheduler, a PostgreSQL restart, a base-fee spike, a reorg of depth 3, and
an executor emptied of gas money for a while.

Then, once every due run settled, `tests/support/audit.py` checks: every due run executed
exactly once or skipped with its reason recorded, the store equal to the chain, the escrow
exact to the wei. Keys: workflows, due_runs, executed, skipped_with_reason, duplicates, missed,
store_mismatches, escrow_error_wei, faults_injected (+ faults: what was injected, seconds).
Targets: duplicates, missed, store_mismatches and escrow_error_wei all 0.

`--chains 2` runs the storm on two chains at once (31337 and 31338, each its own anvil, contract,
schedulers, executors and RPC proxy) sharing the private Redis and PostgreSQL — one store keyed
by chain; the first chain's timeline restarts the shared servers, so both chains suffer those.
It prints "chains" and every key summed, plus "per_chain" (each chain's four zeros and faults).

Progress goes to stderr; the last stdout line is one JSON object.
Run: .venv/bin/python bench/chaos.py [--workflows 1000] [--seed 7] [--chains 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from tests.faults.helpers import AMOUNT, Scenario, pending_runs  # noqa: E402
from tests.support.rpc_proxy import RpcProxy  # noqa: E402
from tests.support.services import PrivatePostgres, PrivateRedis  # noqa: E402
from tests.support.stack import distributed_stack, native_spec, progress_printer, recipient  # noqa: E402
from web3.exceptions import Web3RPCError  # noqa: E402

from autometa.chain.accounts import dev_account, dev_role  # noqa: E402
from autometa.chain.contracts import autometa  # noqa: E402
from autometa.chain.deploy import set_dev_price, transact  # noqa: E402
from autometa.chain.web3 import connect  # noqa: E402

EXECUTORS = {"executor-0": 5, "executor-1": 6, "executor-2": 7}
OWNERS = (3, 8, 9)
DRAINED = 4
WINDOW_S = 60  # the due times spread over this many seconds
# The first TIME runs fall due this long after their creation began: the rest of the set-up
# (the price and drained workflows) must fit in it, or the timeline's faults (all placed after the
# first due time) run back to back at once. 30 s was about what a loaded machine with two chains
# needed for the set-up alone.
LEAD_S = 45
# The drained owner's runs fall due this long after the first TIME ones; the drain is at +DRAIN_AT_S.
# 30 left ~3 s between them, which a loaded machine (two chains' storms at once) overran: the
# runs executed before the harness drained the escrow. 40 keeps them due after the drain.
DRAINED_AFTER_S = 40
DRAIN_AT_S = 33
REORG_DEPTH = 3


def drain(w3: Any, core: Any, balance: int) -> Any:
    """The drained owner withdraws everything; the receipt. Its fee comes from the latest block:
    right after the base-fee spike (and with two chains' processes on the machine) it can trail
    the next block's base fee, which the node refuses — then it is priced again, a few times."""
    for attempt in range(10):
        try:
            return transact(w3, dev_account(DRAINED), core.functions.withdraw(balance))
        except Web3RPCError as exc:
            if "base fee" not in str(exc) or attempt == 9:
                raise
            time.sleep(1)


def drain_on_time(url: str, contract: str, at: int) -> Any:
    """Wait for chain time `at`, then drain (`drain`); the receipt. It runs beside the timeline,
    on a connection of its own: in the timeline it came after the PostgreSQL restart and the wait
    for the lease holder, and on the chain whose harness restarts the shared servers it fell that
    far behind that the drained owner's runs were due (and executed) before their escrow went."""
    w3 = connect(url)
    core = autometa(w3, contract)
    deadline = time.monotonic() + 180
    while int(w3.eth.get_block("latest")["timestamp"]) < at:
        if time.monotonic() > deadline:
            raise AssertionError(f"chain time {at} not reached in 180 s")
        time.sleep(0.1)
    return drain(w3, core, int(core.functions.balanceOf(dev_account(DRAINED).address).call()))


def run_chain(
    chain_id: int, workflows: int, seed: int, redis_server: PrivateRedis, pg: PrivatePostgres, server_faults: bool
) -> dict[str, Any]:
    """One chain's storm and audit on the shared private Redis and PostgreSQL. `server_faults`:
    this chain's timeline also restarts Redis and PostgreSQL (which every chain then suffers)."""
    started = time.monotonic()
    faults: Counter[str] = Counter()
    clock: list[Any] = []  # (w3, chain time of the first due TIME run) once known

    def progress(message: str) -> None:
        when = f" {time.monotonic() - started:.0f} s"
        if clock:  # where the chain is on the timeline: a harness step that lags shows here
            with contextlib.suppress(Exception):
                when += f", chain {int(clock[0].eth.get_block('latest')['timestamp']) - clock[1]:+d} s"
        print(f"[chaos {chain_id}{when}] {message}", file=sys.stderr, flush=True)

    with (
        distributed_stack(
            pg.url,
            executors=tuple(EXECUTORS.values()),
            owners=(*OWNERS, DRAINED),
            redis_url=redis_server.url,
            chain_id=chain_id,
        ) as stack,
        RpcProxy(stack.anvil.url, seed=seed) as proxy,
    ):
        sc = Scenario(stack)
        w3 = stack.w3
        stack.interval_mining(1)
        stack.start("scheduler-1", "scheduler")
        stack.wait_for("a scheduler to hold the lease", lambda: stack.lease_holder() is not None)
        stack.start("scheduler-2", "scheduler")
        for name, key in EXECUTORS.items():
            stack.start_executor(name, key, MOONBASE_RPC=proxy.url)
        stack.wait_started(*EXECUTORS, marker="executor.started")
        stack.wait_for("scheduler-1 to load", lambda: stack.scheduler_loaded("scheduler-1"))
        progress("stack up: 2 schedulers, 3 executors behind the RPC proxy, private Redis and PostgreSQL")

        # ---- the workflows: TIME ones over the window, price ones, the drained owner's
        owners = [dev_account(i) for i in OWNERS]
        ids = sc.wave(owners, workflows, lead_s=LEAD_S, spread=WINDOW_S)
        # the wave's first run is its earliest (due times rise with the ids): one read, not one per
        # workflow (530 reads took a loaded machine ~10 s of the lead)
        first_due = int(stack.state(ids[0]).spec.trigger_data.at)  # type: ignore[attr-defined]
        clock[:] = [w3, first_due]
        progress(f"{len(ids)} TIME workflows created")
        price_items = []
        for i in range(20):
            trigger = {"token": "ethereum", "comparator": 0, "price_usd": 3200}
            price_items.append((owners[i % 3], native_spec(2, trigger, recipient(200_000 + i), AMOUNT)))
        price_ids = stack.create_many(price_items)
        lead = first_due + DRAINED_AFTER_S - stack.head_timestamp()
        drained = sc.wave([dev_account(DRAINED)], 10, lead_s=lead, due=True)
        sc.expect_skipped.update({(wid, 0): "insufficient_escrow" for wid in drained})
        drained_due = int(stack.state(drained[0]).spec.trigger_data.at)  # type: ignore[attr-defined]
        progress(
            f"+20 price workflows, +10 of an owner to be drained (due at +{drained_due - first_due} s); "
            f"first due at chain time {first_due}, in {first_due - stack.head_timestamp()} s"
        )
        drainer = ThreadPoolExecutor(1, thread_name_prefix=f"drain-{chain_id}")
        drained_at = drainer.submit(drain_on_time, stack.anvil.url, stack.dep.address, first_due + DRAIN_AT_S)
        drainer.shutdown(wait=False)

        # ---- background RPC faults for the executors, all along
        proxy.fault("eth_sendRawTransaction", "drop", probability=0.08)
        proxy.fault("eth_getTransactionReceipt", "error", probability=0.03, status=502)
        proxy.fault("eth_simulateV1", "reset", probability=0.03)
        proxy.fault("eth_getTransactionCount", "delay", probability=0.05, seconds=1.0)

        def at(offset: float) -> None:
            """Wait until chain time first_due + offset."""
            stack.wait_for(f"chain time +{offset}", lambda: stack.head_timestamp() >= first_due + offset, 120)

        rng = random.Random(seed)
        at(3)
        # kill -9 an executor while it has a batch in the pool
        victim = rng.choice(list(EXECUTORS))
        address = dev_account(EXECUTORS[victim]).address
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not stack.pending_txs(address):
            time.sleep(0.02)
        held = len(pending_runs(stack))
        stack.kill(victim)
        faults["kill_executor"] += 1
        progress(f"kill -9 {victim} ({held} runs pending in the pool)")

        at(8)
        if server_faults:  # one chain's timeline restarts the shared servers for every chain
            redis_server.restart(down_s=2)
            faults["redis_restart"] += 1
            progress("Redis restarted (queue, claims, lease lost)")
        stack.start_executor(f"{victim}-successor", EXECUTORS[victim], MOONBASE_RPC=proxy.url)
        progress(f"{victim}'s key taken over by a new executor (journal recovery)")

        at(14)
        found: list[str] = []

        def lease_named() -> bool:
            try:
                holder = stack.lease_holder()
            except redis.exceptions.ConnectionError:
                return False  # another chain's timeline may be restarting the shared Redis
            found[:] = [n for n in ("scheduler-1", "scheduler-2") if holder and f"holder={holder}" in stack.log_text(n)]
            return bool(found)

        stack.wait_for("the lease holder's name in a scheduler's log", lease_named, timeout=30)
        active = found[0]
        stack.kill(active)
        faults["kill_scheduler"] += 1
        progress(f"kill -9 the active scheduler ({active})")

        at(20)
        if server_faults:
            pg.restart(down_s=2)
            faults["postgres_restart"] += 1
            progress("PostgreSQL restarted")

        at(27)
        base = int(w3.eth.get_block("latest").get("baseFeePerGas", 10**9))
        spike = max(60 * base, 30 * 10**9)
        w3.provider.make_request("anvil_setNextBlockBaseFeePerGas", [hex(spike)])  # type: ignore[arg-type]
        faults["base_fee_spike"] += 1
        progress("base fee spiked")

        # the owner whose workflows fall due DRAINED_AFTER_S past the first TIME ones was
        # drained at +DRAIN_AT_S (beside the timeline); it must have been before their runs fell due
        receipt = drained_at.result(timeout=240)
        drained_ts = int(w3.eth.get_block(receipt["blockNumber"])["timestamp"])
        if drained_ts >= drained_due:
            raise AssertionError(
                f"the drain landed at chain +{drained_ts - first_due} s, not before the drained owner's runs "
                f"fell due at +{drained_due - first_due} s: the harness overran its timeline"
            )
        faults["escrow_drained"] += 1
        progress(f"owner escrow drained in block {receipt['blockNumber']} (chain +{drained_ts - first_due} s)")

        at(38)
        # anvil_reorg drops the transactions of the blocks it replaces (they do not go back to the
        # pool): a drain in the last REORG_DEPTH blocks would be undone and the drained owner's
        # runs would execute. So the reorg waits until the drain is deeper than that.
        stack.wait_for(
            "the drain below the reorg's depth",
            lambda: int(w3.eth.block_number) >= int(receipt["blockNumber"]) + REORG_DEPTH,
            60,
        )
        w3.provider.make_request("anvil_reorg", [REORG_DEPTH, []])  # type: ignore[arg-type]
        faults["reorg_depth_3"] += 1
        progress(f"reorg of depth {REORG_DEPTH}")

        at(43)
        broke = dev_account(EXECUTORS["executor-2"] if victim != "executor-2" else EXECUTORS["executor-1"]).address
        w3.provider.make_request("anvil_setBalance", [broke, "0x0"])  # type: ignore[arg-type]
        faults["executor_no_gas"] += 1
        progress(f"executor {broke} has no gas money")
        set_dev_price(w3, dev_role("admin"), stack.dep.feeds["ethereum"], Decimal("3198.15"))
        sc.due.update((wid, 0) for wid in price_ids)
        progress("ethereum below $3200: the price workflows are due")

        at(55)
        w3.provider.make_request("anvil_setBalance", [broke, hex(10_000 * 10**18)])  # type: ignore[arg-type]
        progress("gas money back")

        # ---- settle and audit
        say = progress_printer(f"chaos {chain_id}")
        todo = sorted({wid for wid, _ in sc.due if (wid, 0) not in sc.expect_skipped})
        stack.wait_executed(todo, timeout=420, progress=say)
        proxy.clear()
        progress("every due run executed; waiting for the skips, the pools and the indexer")
        sc.wait_skipped(sc.expect_skipped, timeout=120)
        sc.settle(timeout=180)
        time.sleep(3)  # a few more blocks: nothing may run again
        sc.wait_indexed(timeout=60)
        report = sc.audit()
        for line in report.details[:30]:
            progress(line)
        for (method, kind), n in sorted(proxy.injected.items()):
            faults[f"rpc_{kind}:{method}"] += n
        out: dict[str, Any] = {
            "workflows": report.workflows,
            "due_runs": report.due_runs,
            "executed": report.executed,
            "skipped_with_reason": report.skipped_with_reason,
            "duplicates": report.duplicates,
            "missed": report.missed,
            "store_mismatches": report.store_mismatches,
            "escrow_error_wei": report.escrow_error_wei,
            "faults_injected": sum(faults.values()),
            "unexpected": report.unexpected,
            "faults": dict(faults),
            "seconds": round(time.monotonic() - started, 1),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workflows", type=int, default=1000, help="TIME workflows per chain")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--chains", type=int, default=1, choices=(1, 2, 3), help="chains at once (31337, 31338, …)")
    args = parser.parse_args()
    started = time.monotonic()
    with PrivateRedis() as redis_server, PrivatePostgres() as pg:
        if args.chains == 1:
            print(json.dumps(run_chain(31337, args.workflows, args.seed, redis_server, pg, server_faults=True)))
            return
        with ThreadPoolExecutor(max_workers=args.chains) as pool:
            futures = [
                pool.submit(run_chain, 31337 + i, args.workflows, args.seed + i, redis_server, pg, i == 0)
                for i in range(args.chains)
            ]
            per_chain: dict[str, dict[str, Any]] = {}
            failed: dict[str, str] = {}
            for i, future in enumerate(futures):
                try:
                    per_chain[str(31337 + i)] = future.result()
                except Exception as exc:  # every chain's failure is reported, not only the first
                    failed[str(31337 + i)] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
                    print(f"[chaos {31337 + i}] failed: {failed[str(31337 + i)]}", file=sys.stderr, flush=True)
    if failed:
        print(json.dumps({"chains": args.chains, "failed": failed, "per_chain": per_chain}))
        sys.exit(1)
    out: dict[str, Any] = {"chains": args.chains}
    for key in ("workflows", "due_runs", "executed", "skipped_with_reason", *ZEROS, "faults_injected"):
        out[key] = sum(r[key] for r in per_chain.values())
    out["seconds"] = round(time.monotonic() - started, 1)
    out["per_chain"] = {
        cid: {k: r[k] for k in ("workflows", "due_runs", *ZEROS, "faults")} for cid, r in per_chain.items()
    }
    print(json.dumps(out))


ZEROS = ("duplicates", "missed", "store_mismatches", "escrow_error_wei")


if __name__ == "__main__":
    main()
