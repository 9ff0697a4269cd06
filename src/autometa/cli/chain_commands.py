"""`autometa deploy` and `autometa devnet`: put the contracts on a chain."""

from __future__ import annotations

import signal
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
from autometa.cli.common import CliError, console, emit, handle_errors, load_key, progress, settings_with
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
        dep = deploy(w3, account, admin=admin, executors=executor or [], timelock=timelock,
                     assets=list(settings.SUPPORTED_ASSETS), chain_module=chain_module)  # fmt: skip
    path = dep.save(settings.DATA_DIR)

    def human() -> None:
        console.print(f"[green]deployed[/] Autometa at {dep.address} (block {dep.block}); recorded in {path}")
        console.print(f"chain module: {dep.chain_module} at {dep.chain_module_address}", highlight=False)
        console.print("\n".join(dep.env_lines()), highlight=False)

    emit({"deployment": dep.__dict__, "env": dep.env_lines(), "file": str(path)}, as_json, human)


@handle_errors
def devnet_command(
    port: Annotated[int, typer.Option(help="port (0 = a free one)")] = 0,
    block_time: Annotated[float | None, typer.Option(help="seconds per block (default: mine on demand)")] = None,
    chain_id: Annotated[int, typer.Option(help="chain id")] = 31337,
    state: Annotated[Path | None, typer.Option(help="keep chain state in this file across restarts")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Start a local dev chain with Autometa, a mock price feed per asset and funded dev accounts."""
    settings = settings_with(None)
    anvil = Anvil(port=port, chain_id=chain_id, block_time=block_time, state_path=state)
    with progress("starting anvil…"):
        anvil.start()
    try:
        w3 = connect(anvil.url)
        with progress("deploying contracts and dev price feeds…"):
            dep = setup_dev_stack(w3, settings.SUPPORTED_ASSETS)
        dep.save(settings.DATA_DIR)
        env = [
            f"MOONBASE_RPC={anvil.url}",
            *dep.env_lines(),
            f"WORKER_PRIVATE_KEY={dev_account(ROLE_INDEX['executor']).key.hex()}",
        ]

        def human() -> None:
            console.print(f"[green]dev chain ready[/] at {anvil.url} (chain {chain_id})")
            console.print("\n".join(env), highlight=False)
            console.print("price feeds: " + ", ".join(f"{a}={f}" for a, f in dep.feeds.items()), highlight=False)
            for role, index in ROLE_INDEX.items():
                console.print(f"  {role:9} {dev_account(index).address}", highlight=False)
            console.print("dev accounts hold test money only. Ctrl-C stops the chain.")

        emit({"rpc_url": anvil.url, "env": env, "deployment": dep.__dict__}, as_json, human)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    finally:
        anvil.stop()
