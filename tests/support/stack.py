"""The distributed worker as separate processes, for the multi-process test and the benches.

A real anvil (automine while the dev stack is deployed, then `evm_setIntervalMining` for
1 s blocks), extra executor keys allow-listed, a fresh PostgreSQL database, a Redis database
number of its own (locked in db 0 and flushed first, so concurrent runs never share keys), and
`autometa scheduler` / `autometa executor` started with their settings in the environment.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.logs import DISCARD

from autometa.chain.accounts import dev_account, dev_role
from autometa.chain.anvil import Anvil
from autometa.chain.contracts import autometa
from autometa.chain.deploy import Deployment, transact
from autometa.chain.devnet import setup_dev_stack
from autometa.chain.web3 import connect
from autometa.domain.state import WorkflowState
from autometa.domain.workflow import WorkflowSpec
from tests.support.provider_proxy import BLOCK_TIME_S, PublicProviderProxy
from tests.support.rpc_proxy import RpcProxy

ROOT = Path(__file__).resolve().parents[2]
AUTOMETA = ROOT / ".venv" / "bin" / "autometa"
REDIS_BASE = os.environ.get("AUTOMETA_TEST_REDIS", "redis://127.0.0.1:6379")
EXECUTOR_KEYS = (5, 6, 7)  # dev accounts given to executor processes (each its own key)
OWNER_KEYS = (3, 8, 9)  # dev accounts that own workflows
RPC_PROFILES = ("none", "public")  # how the processes reach the chain (benches: --rpc-profile)


def recipient(i: int) -> str:
    """A distinct, fresh recipient address per workflow (clear of the precompiles)."""
    return Web3.to_checksum_address(f"0x{0xA0700000 + i:040x}")


def native_spec(trigger_type: int, trigger_data: dict[str, Any], to: str, amount: int = 10**12) -> WorkflowSpec:
    # 60k gas: a transfer that creates the recipient's account needs more than the 30k default.
    return WorkflowSpec.model_validate(
        {
            "trigger_type": trigger_type,
            "trigger_data": trigger_data,
            "action_type": 0,
            "action_data": {"to": to, "amount_wei": amount},
            "gas_limit": 60_000,
        }
    )


@contextlib.contextmanager
def redis_database() -> Iterator[str]:
    """A Redis database number nobody else is using (a lock in db 0), flushed: its URL.
    Db 15 is never handed out: the API and price tests share it by key prefix, unflushed."""
    admin = redis.Redis.from_url(f"{REDIS_BASE}/0")
    token = uuid.uuid4().hex
    try:
        for n in range(14, 0, -1):
            if admin.set(f"autometa-test:redis-db:{n}", token, nx=True, ex=1800):
                break
        else:
            raise RuntimeError("no free Redis database number (1-14) for the test")
        url = f"{REDIS_BASE}/{n}"
        db = redis.Redis.from_url(url)
        db.flushdb()
        db.close()
        try:
            yield url
        finally:
            with contextlib.suppress(Exception):
                db = redis.Redis.from_url(url)
                db.flushdb()
                db.close()
            if admin.get(f"autometa-test:redis-db:{n}") == token.encode():
                admin.delete(f"autometa-test:redis-db:{n}")
    finally:
        admin.close()


@dataclass
class Stack:
    anvil: Anvil
    w3: Web3
    dep: Deployment
    redis_url: str
    database_url: str
    workdir: Path
    settings: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    killed: set[str] = field(default_factory=set)  # stopped on purpose
    proxy: RpcProxy | None = None  # the RPC profile's proxy the processes talk to (None: anvil itself)
    block_time: int = 1  # seconds between blocks once interval mining starts

    # ---------------------------------------------------------------- names

    @property
    def prefix(self) -> str:
        from autometa.chain.identity import genesis_hash, queue_prefix

        return queue_prefix(self.dep.chain_id, genesis_hash(self.w3), self.dep.address)

    @property
    def stream(self) -> str:
        return f"{self.prefix}:runs"

    @property
    def group(self) -> str:
        return f"{self.prefix}:executors"

    @property
    def lease_key(self) -> str:
        return f"{self.prefix}:scheduler-lease"

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url)

    # ---------------------------------------------------------------- chain

    def interval_mining(self, seconds: int | None = None) -> None:
        """Blocks every `seconds` (default: the profile's block time)."""
        self.w3.provider.make_request("evm_setIntervalMining", [seconds or self.block_time])  # type: ignore[arg-type]

    def rpc_figures(self) -> dict[str, Any]:
        """What the profile's proxy saw: requests by method and 429 answers (empty without one)."""
        if self.proxy is None:
            return {}
        return {
            "rpc_requests": sum(self.proxy.calls.values()),
            "rpc_rate_limited": sum(self.proxy.limited.values()),
            "rpc_refused": dict(getattr(self.proxy, "refused", {})),
        }

    def head_timestamp(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def create_many(self, items: list[tuple[LocalAccount, WorkflowSpec]]) -> list[int]:
        """Send every createWorkflow at once (explicit nonces, no wait between), then wait for
        all receipts; returns the workflow ids in the order given."""
        core = autometa(self.w3, self.dep.address)
        nonces = {a.address: self.w3.eth.get_transaction_count(a.address, "pending") for a, _ in items}
        base = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 10**9))
        max_fee = max(4 * base, 20 * 10**9)
        hashes = []
        gas: dict[int, int] = {}  # per trigger type: anvil packs a block by the txs' gas limits
        for account, spec in items:
            call = core.functions.createWorkflow(spec.to_abi())
            kind = int(spec.trigger_type)
            if kind not in gas:
                gas[kind] = int(call.estimate_gas({"from": account.address}) * 1.3) + 20_000
            tx = call.build_transaction(
                {
                    "from": account.address,
                    "nonce": nonces[account.address],
                    "gas": gas[kind],
                    "maxFeePerGas": max_fee,
                    "maxPriorityFeePerGas": 10**9,
                    "chainId": self.dep.chain_id,
                }
            )
            nonces[account.address] += 1
            hashes.append(self.w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction))
        ids = []
        for h in hashes:
            receipt = self.w3.eth.wait_for_transaction_receipt(h, timeout=120, poll_latency=0.2)
            assert receipt["status"] == 1, f"createWorkflow {h.hex()} reverted"
            (event,) = core.events.WorkflowCreated().process_receipt(receipt, errors=DISCARD)
            ids.append(int(event.args.workflowId))
        return ids

    def create_idle(self, n: int, say: Callable[[str], None]) -> None:
        """`n` workflows none of which falls due for a month, from the owners in turn: a third
        TIME a month ahead, a third INTERVAL starting then, a third PRICE below $1 (never, on the
        dev feed). Blocks come every second from here on, so the creations are packed many to a
        block (one block per transaction with automine took ~20 min for 10,000 on a loaded 2-core
        machine); created 1,000 at a time, each thousand said."""
        owners = [dev_account(i) for i in OWNER_KEYS]
        far = self.head_timestamp() + 30 * 24 * 3600
        triggers = [
            (0, {"at": far}),
            (1, {"interval": 3600, "start": far}),
            (2, {"token": "ethereum", "comparator": 0, "price_usd": 1}),
        ]
        self.interval_mining(1)
        started = time.monotonic()
        for chunk in range(0, n, 1000):
            items = [
                (owners[i % len(owners)], native_spec(*triggers[i % 3], recipient(i)))
                for i in range(chunk, min(n, chunk + 1000))
            ]
            self.create_many(items)
            say(f"{min(n, chunk + 1000)} created ({time.monotonic() - started:.0f} s)")

    def executed_logs(self, from_block: int | None = None) -> list[Any]:
        core = autometa(self.w3, self.dep.address)
        start = self.dep.block if from_block is None else from_block
        return list(core.events.RunExecuted().get_logs(from_block=start, to_block="latest"))

    def run_counts(self) -> Counter[tuple[int, int]]:
        """(workflow id, run index) -> RunExecuted logs with success, from the chain."""
        return Counter((int(e.args.workflowId), int(e.args.runIndex)) for e in self.executed_logs() if e.args.success)

    def state(self, wid: int) -> WorkflowState:
        return WorkflowState.from_view(autometa(self.w3, self.dep.address).functions.getWorkflow(wid).call())

    def wait_executed(self, ids: list[int], timeout: float, progress: Callable[[str], None] | None = None) -> None:
        deadline = time.monotonic() + timeout
        wanted = set(ids)
        while True:
            done = {wid for wid, _ in self.run_counts()} & wanted
            if progress is not None:
                progress(f"executed {len(done)}/{len(wanted)}")
            if done == wanted:
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(wanted - done)} of {len(wanted)} workflows not executed in {timeout} s: "
                    f"{sorted(wanted - done)[:20]} …\n{self.log_tails()}"
                )
            self.check_alive()
            time.sleep(0.5)

    # ---------------------------------------------------------------- processes

    def env(self, **extra: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOMETA_", "PYTEST_"))}
        return {**base, **self.settings, **extra}

    def start(self, name: str, command: str, **extra: str) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        args = [str(AUTOMETA), command] + (["--id", name] if command == "executor" else [])
        proc = subprocess.Popen(args, env=self.env(**extra), cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs[name] = proc
        return proc

    def start_executor(self, name: str, key_index: int, **extra: str) -> subprocess.Popen[bytes]:
        key = "0x" + bytes(dev_account(key_index).key).hex()
        return self.start(name, "executor", WORKER_PRIVATE_KEY=key, **extra)

    def start_worker(
        self, name: str, key_index: int, roles: tuple[str, ...], *, fork: bool = False, **extra: str
    ) -> subprocess.Popen[bytes]:
        """One `autometa worker` process hosting `roles` (an executor signing with dev key
        `key_index`); with `fork`, `--fork`: one child process per role under it."""
        key = "0x" + bytes(dev_account(key_index).key).hex()
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        args = [str(AUTOMETA), "worker", "--id", name, *(a for r in roles for a in ("--role", r))]
        args += ["--fork"] if fork else []
        env = self.env(WORKER_PRIVATE_KEY=key, **extra)
        proc = subprocess.Popen(args, env=env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs[name] = proc
        return proc

    def start_workers(self, executors: dict[str, int], **executor_env: str) -> None:
        """1 s blocks, one `scheduler` and the named executors (name -> dev key index), returning
        once every executor has started and the scheduler has loaded its workflows."""
        self.interval_mining(1)
        self.start("scheduler", "scheduler")
        for name, key in executors.items():
            self.start_executor(name, key, **executor_env)
        self.wait_started(*executors, marker="executor.started")
        self.wait_for("the scheduler to load", lambda: self.scheduler_loaded("scheduler"))

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[name]
        self.killed.add(name)
        if proc.poll() is None:
            proc.send_signal(sig)
        proc.wait(timeout=30)

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if name not in self.killed and proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode}\n{self.log_tail(name)}")

    def stop_all(self) -> None:
        """SIGTERM every process still running, then SIGKILL what has not exited in 10 s."""
        live = [p for p in self.procs.values() if p.poll() is None]
        for p in live:
            p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for p in live:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.workdir / f"{name}.log"
        text = path.read_text(errors="replace").splitlines() if path.exists() else []
        return f"--- {name} ---\n" + "\n".join(text[-lines:])

    def log_tails(self) -> str:
        return "\n".join(self.log_tail(name) for name in self.procs)

    def log_text(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    # ---------------------------------------------------------------- readiness

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            self.check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}\n{self.log_tails()}")
            time.sleep(0.1)

    def consumers(self) -> dict[str, int]:
        """Stream consumers of the executors' group -> jobs delivered to them and not acknowledged."""
        r = self.redis()
        try:
            return {(c["name"].decode()): int(c["pending"]) for c in r.xinfo_consumers(self.stream, self.group)}
        except redis.ResponseError:
            return {}
        finally:
            r.close()

    def wait_started(self, *names: str, marker: str = "started", timeout: float = 60.0) -> None:
        """Wait until each process has logged `marker` (executors: executor.started)."""
        self.wait_for(f"{names} to start", lambda: all(marker in self.log_text(n) for n in names), timeout)

    def pending_txs(self, address: str) -> int:
        """Transactions from `address` waiting in anvil's pool (sent, not yet mined)."""
        pool = self.w3.provider.make_request("txpool_content", [])["result"]  # type: ignore[arg-type]
        return sum(len(txs) for sender, txs in pool.get("pending", {}).items() if sender.lower() == address.lower())

    def lease_holder(self) -> str | None:
        r = self.redis()
        try:
            value = r.get(self.lease_key)
            return value.decode() if value else None
        finally:
            r.close()

    def scheduler_loaded(self, name: str) -> bool:
        return "scheduler.loaded" in self.log_text(name)


@contextlib.contextmanager
def distributed_stack(
    database_url: str,
    executors: tuple[int, ...] = EXECUTOR_KEYS,
    owners: tuple[int, ...] = OWNER_KEYS,
    deposit_wei: int = 100 * 10**18,
    redis_url: str | None = None,
    rpc_profile: str = "none",
    chain_id: int = 31337,
    **settings: str,
) -> Iterator[Stack]:
    """Anvil with the dev stack, executors allow-listed, owners' deposits made; processes are
    started by the caller and always stopped (then anvil) when the block exits. `redis_url`: a
    Redis of the caller's (a private server a test restarts) instead of a shared-server database.
    `rpc_profile="public"`: the processes talk to anvil through `PublicProviderProxy.public` (rate
    limit, getLogs caps, no websocket, no eth_simulateV1) and blocks come every 2 s; the caller's
    own set-up (`stack.w3`) still talks to anvil directly. `chain_id`: anvil's (two stacks on one
    store and Redis need two ids)."""
    if rpc_profile not in RPC_PROFILES:
        raise ValueError(f"unknown RPC profile {rpc_profile!r}; one of {RPC_PROFILES}")
    from autometa.store import Store

    redis_db = contextlib.nullcontext(redis_url) if redis_url is not None else redis_database()
    with (
        tempfile.TemporaryDirectory(prefix="autometa-stack-") as tmp,
        redis_db as redis_url,
        Anvil(chain_id=chain_id) as anvil,
    ):
        w3 = connect(anvil.url)
        # assets the settings price without a dev feed are registered for attested prices
        dep = setup_dev_stack(w3, attested=[a for a in settings.get("SUPPORTED_ASSETS", "").split(",") if a])
        admin = dev_role("admin")
        core = autometa(w3, dep.address)
        for i in executors:
            transact(w3, admin, core.functions.setExecutor(dev_account(i).address, True))
        for i in owners:
            transact(w3, dev_account(i), core.functions.deposit(), value=deposit_wei)
        dep.save(Path(tmp))
        Store.open(database_url).close()  # migrate once, before several processes open it
        stack = Stack(anvil, w3, dep, redis_url, database_url, Path(tmp))
        if rpc_profile == "public":
            stack.proxy, stack.block_time = PublicProviderProxy.public(anvil.url).start(), BLOCK_TIME_S
        rpc = stack.proxy.url if stack.proxy else anvil.url
        stack.settings = {
            "NETWORK": "dev",
            "MOONBASE_RPC": rpc,
            "REGISTRY_ADDRESS": dep.address,
            "REDIS_URL": redis_url,
            "DATABASE_URL": database_url,
            "DATA_DIR": tmp,
            "USE_BACKEND_INTEGRATION": "false",
            "LOG_LEVEL": "INFO",
            "POLL_INTERVAL": "1",
            "BLOCK_TIME_S": str(stack.block_time),
            **settings,
        }
        try:
            yield stack
        finally:
            stack.stop_all()
            if stack.proxy is not None:
                stack.proxy.stop()
            keep = os.environ.get("AUTOMETA_STACK_LOGS")  # a folder to keep the processes' logs in
            if keep:
                Path(keep).mkdir(parents=True, exist_ok=True)
                for log in Path(tmp).glob("*.log"):
                    shutil.copy(log, Path(keep) / log.name)


def progress_printer(tag: str) -> Callable[[str], None]:
    last = [0.0]

    def say(message: str) -> None:
        if time.monotonic() - last[0] >= 2.0:
            last[0] = time.monotonic()
            print(f"[{tag}] {message}", file=sys.stderr, flush=True)

    return say
