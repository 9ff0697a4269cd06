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
from autometa.embedded.stack import Stack, run_stack, stack_settings
from autometa.logs import configure_logging
from autometa.runtime import ServiceFailed


def _print_ready(stack: Stack, api_url: str | None) -> None:
    dep = stack.chain.deployment
    console.print(f"[bold green]Autometa is up[/] ({'resumed' if stack.chain.resumed else 'fresh'} dev chain)")
    if api_url:
        console.print(f"  API        {api_url}  (docs: {api_url}/docs)", highlight=False)
    console.print(f"  chain      {stack.chain.url}  (chain id {dep.chain_id})", highlight=False)
    console.print(f"  contract   {dep.address}  (WorkflowRegistry = ActionExecutor = FeeEscrow)", highlight=False)
    console.print(f"  store      {stack.chain.database_url(stack.settings)}", highlight=False)
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
) -> None:
    """Run the dev chain, indexer, scheduler, executor and API in one process."""
    settings = settings_with(None, DATA_DIR=data_dir, API_PORT=api_port)
    configure_logging(settings.LOG_LEVEL, settings.LOG_JSON)
    lock = InstanceLock(settings.DATA_DIR, "up")
    try:
        lock.acquire()  # before anything touches the chain state or the store
    except AlreadyRunning as exc:
        raise CliError(str(exc)) from None
    try:
        with progress("starting the dev chain and deploying contracts…"):
            chain = start_dev_chain(settings, port=chain_port, block_time=block_time)
        lock.update(rpc_url=chain.url, api_url=f"http://{settings.API_HOST}:{settings.API_PORT}")
        try:
            asyncio.run(_main(chain, settings))
        except (ServiceFailed, ChainChanged) as exc:
            raise CliError(str(exc)) from None
        finally:
            chain.stop()
            console.print("stopped; state kept in " + str(settings.DATA_DIR.resolve()))
    finally:
        lock.release()


async def _main(chain: DevChain, settings: Settings) -> None:
    stop = stop_on_signals()
    settings = stack_settings(settings, chain)
    api_url = f"http://{settings.API_HOST}:{settings.API_PORT}"
    api = make_api_runner(chain.deployment.feeds)
    await run_stack(chain, settings, stop, api=api, on_ready=lambda s: _print_ready(s, api_url))
