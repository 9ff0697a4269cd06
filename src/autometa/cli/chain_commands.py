"""`autometa deploy` and `autometa devnet`: put the contracts on a chain."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from autometa.chain.accounts import ROLE_INDEX, dev_account
from autometa.chain.anvil import Anvil
from autometa.chain.deploy import (
    DEFAULT_TIMELOCK_SECONDS,
    MAX_TIMELOCK_SECONDS,
    MIN_TIMELOCK_SECONDS,
    deploy,
)
from autometa.chain.devnet import setup_dev_stack
from autometa.chain.web3 import connect
from autometa.cli.common import (
    CliError,
    console,
    emit,
    err_console,
    handle_errors,
    load_key,
    progress,
    settings_with,
)
from autometa.embedded.devchain import set_interval_mining
from autometa.embedded.instance import AlreadyRunning, InstanceLock
from autometa.networks import ChainModule


@handle_errors
def deploy_command(
    rpc_url: Annotated[str | None, typer.Option(help="JSON-RPC endpoint (default: MOONBASE_RPC)")] = None,
    key: Annotated[str | None, typer.Option(help="deployer private key (default: $DEPLOYER_PRIVATE_KEY)")] = None,
    admin: Annotated[str | None, typer.Option(help="admin address (default: the deployer)")] = None,
    executor: Annotated[list[str] | None, typer.Option(help="executor address to allow-list (repeatable)")] = None,
    timelock: Annotated[
        int, typer.Option(help="seconds an admin change that could cost owners waits (60 s .. 30 days)")
    ] = DEFAULT_TIMELOCK_SECONDS,
    chain_module: Annotated[
        ChainModule | None,
        typer.Option(help="how the L1 data fee is charged (default: the network preset's; none on L1s)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Deploy the Autometa contract, record it, and print the .env lines to use."""
    settings = settings_with(rpc_url)
    if not MIN_TIMELOCK_SECONDS <= timelock <= MAX_TIMELOCK_SECONDS:
        raise CliError(f"--timelock: {timelock} s is outside {MIN_TIMELOCK_SECONDS}..{MAX_TIMELOCK_SECONDS} s")
    account = load_key(key, "DEPLOYER_PRIVATE_KEY")
    w3 = connect(settings.rpc_url)
    if not w3.is_connected():
        raise CliError(f"cannot reach {settings.rpc_url}")
    with progress(f"deploying to chain {w3.eth.chain_id}…"):
        # SUPPORTED_ASSETS are registered for attested prices; the admin may give one a feed later
        dep = deploy(
            w3,
            account,
            admin=admin,
            executors=executor or [],
            timelock=timelock,
            assets=list(settings.SUPPORTED_ASSETS),
            chain_module=chain_module,
        )
    path = dep.save(settings.DATA_DIR)

    def human() -> None:
        console.print(f"[green]deployed[/] Autometa at {dep.address} (block {dep.block}); recorded in {path}")
        console.print(f"chain module: {dep.chain_module} at {dep.chain_module_address}", highlight=False)
        console.print("\n".join(dep.env_lines()), highlight=False)

    emit({"deployment": dep.__dict__, "env": dep.env_lines(), "file": str(path)}, as_json, human)


def key_hex(role: str) -> str:
    """A dev account's private key, 0x-prefixed (what every tool expects)."""
    return "0x" + dev_account(ROLE_INDEX[role]).key.hex().removeprefix("0x")


def devnet_env(rpc_url: str, env_lines: list[str]) -> list[str]:
    """The .env of a distributed dev setup: every process's key and where its services are."""
    return [
        "NETWORK=dev",
        f"MOONBASE_RPC={rpc_url}",
        *env_lines,
        f"WORKER_PRIVATE_KEY={key_hex('executor')}",
        f"RELAYER_PRIVATE_KEY={key_hex('relayer')}",
        f"DEPLOYER_PRIVATE_KEY={key_hex('admin')}",
        f"USER_PRIVATE_KEY={key_hex('user')}",
        "# distributed mode shares these (defaults: SQLite in DATA_DIR, in-process queue):",
        "# DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/autometa",
        "# REDIS_URL=redis://127.0.0.1:6379/0",
    ]


@handle_errors
def devnet_command(
    port: Annotated[int, typer.Option(help="port (0 = a free one)")] = 0,
    block_time: Annotated[float, typer.Option(help="seconds per block (0 = only when a transaction comes)")] = 1.0,
    chain_id: Annotated[int, typer.Option(help="chain id")] = 31337,
    state: Annotated[Path | None, typer.Option(help="keep chain state in this file across restarts")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Start a local dev chain with Autometa, a mock price feed per asset and funded dev accounts;
    print the .env for every process on stdout (`autometa devnet > .env`), the rest on stderr."""
    settings = settings_with(None)
    try:
        lock = InstanceLock(settings.DATA_DIR, "devnet").acquire()
    except AlreadyRunning as exc:
        raise CliError(str(exc)) from None
    anvil = Anvil(port=port, chain_id=chain_id, state_path=state)  # automine while deploying: fast
    try:
        with progress("starting anvil…"):
            anvil.start()
        w3 = connect(anvil.url)
        with progress("deploying contracts and dev price feeds…"):
            dep = setup_dev_stack(w3, settings.SUPPORTED_ASSETS)
        dep.save(settings.DATA_DIR)
        if block_time:  # then steady blocks, so interval and time workflows keep running
            set_interval_mining(w3, block_time)
        lock.update(rpc_url=anvil.url)
        env = devnet_env(anvil.url, dep.env_lines())

        def human() -> None:
            for line in env:  # stdout: only the env file
                print(line)
            err_console.print(
                f"[green]dev chain ready[/] at {anvil.url} (chain {chain_id}, "
                f"{f'a block every {block_time:g} s' if block_time else 'a block per transaction'})",
                highlight=False,
            )
            err_console.print("price feeds: " + ", ".join(f"{a}={f}" for a, f in dep.feeds.items()), highlight=False)
            for role, index in ROLE_INDEX.items():
                err_console.print(f"  {role:9} {dev_account(index).address}", highlight=False)
            err_console.print("dev accounts hold test money only. Ctrl-C stops the chain.")

        emit({"rpc_url": anvil.url, "env": env, "deployment": dep.__dict__}, as_json, human)
        sys.stdout.flush()
        # Our own handlers, like every long-running command (stop_on_signals): an inherited
        # SIGINT disposition of "ignore" (a background job of a script, a test runner's worker)
        # would otherwise leave Ctrl-C / `kill -INT` without effect.
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        while not stop.wait(0.5):
            pass
    finally:
        anvil.stop()
        lock.release()
