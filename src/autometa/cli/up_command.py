"""`autometa up`: everything in one process on the embedded default."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from autometa.chain.accounts import ROLE_INDEX, dev_account
from autometa.chain.identity import ChainChanged
from autometa.cli.common import CliError, console, handle_errors, progress, settings_with, stop_on_signals
from autometa.config import Settings
from autometa.embedded.api import make_api_runner
from autometa.embedded.devchain import DevChain, start_dev_chain
from autometa.embedded.instance import AlreadyRunning, InstanceLock
from autometa.embedded.stack import Stack, chains_settings, run_chains_stack, run_stack, stack_settings
from autometa.logs import configure_logging
from autometa.runtime import ServiceFailed

FIRST_CHAIN_ID = 31337  # anvil's default; `--chains N` adds 31338, 31339, …
MAX_CHAINS = 4


def _print_ready(stack: Stack, api_url: str | None) -> None:
    chains = stack.chains or [stack.chain]
    what = f"{len(chains)} dev chains" if len(chains) > 1 else "dev chain"
    console.print(f"[bold green]Autometa is up[/] ({'resumed' if stack.chain.resumed else 'fresh'} {what})")
    if api_url:
        console.print(f"  API        {api_url}  (docs: {api_url}/docs)", highlight=False)
    for chain in chains:
        dep = chain.deployment
        console.print(f"  chain      {chain.url}  (chain id {dep.chain_id})", highlight=False)
        console.print(f"  contract   {dep.address}  (WorkflowRegistry = ActionExecutor = FeeEscrow)", highlight=False)
    if len(chains) > 1:
        console.print("  (the API takes ?chain=<chain id>; without it, the first chain)", highlight=False)
    console.print(f"  store      {stack.settings.database_url}", highlight=False)
    console.print(f"  executor   {stack.executor_account.address}", highlight=False)
    console.print("  dev accounts (test money only):")
    for role, index in ROLE_INDEX.items():
        console.print(f"    {role:9} {dev_account(index).address}", highlight=False)
    console.print(
        "In another terminal (same directory), `.venv/bin/autometa` finds this chain by itself; sign as a dev\n"
        "account with --as ROLE, e.g. `.venv/bin/autometa escrow deposit 1 --as user`.",
        highlight=False,
    )
    console.print("Ctrl-C stops; the next `autometa up` resumes from the data directory.")


@handle_errors
def up_command(
    data_dir: Annotated[
        Path | None, typer.Option(help="where chain state and the database live (default: DATA_DIR)")
    ] = None,
    api_port: Annotated[int | None, typer.Option(help="API port (default: API_PORT)")] = None,
    chain_port: Annotated[int, typer.Option(help="dev chain port (0 = a free one)")] = 0,
    block_time: Annotated[float, typer.Option(help="seconds per dev-chain block")] = 1.0,
    chains: Annotated[
        int, typer.Option(min=1, max=MAX_CHAINS, help="dev chains to run (chain ids 31337, 31338, …), one store")
    ] = 1,
) -> None:
    """Run the dev chain, indexer, scheduler, executor and API in one process (with --chains N:
    N dev chains with the contracts on each, one store, one API, the worker on every chain)."""
    settings = settings_with(None, DATA_DIR=data_dir, API_PORT=api_port)
    configure_logging(settings.LOG_LEVEL, settings.LOG_JSON)
    lock = InstanceLock(settings.DATA_DIR, "up")
    try:
        lock.acquire()  # before anything touches the chain state or the store
    except AlreadyRunning as exc:
        raise CliError(str(exc)) from None
    try:
        started: list[DevChain] = []
        try:
            with progress("starting the dev chain and deploying contracts…"):
                for i in range(chains):
                    port = chain_port if i == 0 else 0
                    started.append(
                        start_dev_chain(settings, port=port, block_time=block_time, chain_id=FIRST_CHAIN_ID + i)
                    )
            lock.update(rpc_url=started[0].url, api_url=f"http://{settings.API_HOST}:{settings.API_PORT}")
            asyncio.run(_main(started, settings))
        except (ServiceFailed, ChainChanged) as exc:
            raise CliError(str(exc)) from None
        finally:
            for chain in started:
                chain.stop()
            if started:
                console.print("stopped; state kept in " + str(settings.DATA_DIR.resolve()))
    finally:
        lock.release()


async def _main(chains: list[DevChain], settings: Settings) -> None:
    stop = stop_on_signals()
    api_url = f"http://{settings.API_HOST}:{settings.API_PORT}"
    first = chains[0]
    if len(chains) == 1:
        settings = stack_settings(settings, first)
        api = make_api_runner(first.deployment.feeds)
        await run_stack(first, settings, stop, api=api, on_ready=lambda s: _print_ready(s, api_url))
        return
    settings = chains_settings(settings, chains)
    api = make_api_runner(first.deployment.feeds, rpc_url=first.url)
    await run_chains_stack(chains, settings, stop, api=api, on_ready=lambda s: _print_ready(s, api_url))
