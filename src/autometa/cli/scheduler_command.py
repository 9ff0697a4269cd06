"""`autometa scheduler`: follow blocks, find due runs, queue them (one active, standbys by lease)."""

from __future__ import annotations

import asyncio

import typer

from autometa.cli.common import handle_errors
from autometa.cli.worker_command import run_roles


@handle_errors
def scheduler_command(
    rpc_url: str | None = typer.Option(None, "--rpc-url", help="JSON-RPC endpoint (default: MOONBASE_RPC)"),
    contract: str | None = typer.Option(None, "--contract", help="Autometa contract (default: REGISTRY_ADDRESS)"),
) -> None:
    """Run the scheduler: index events, follow blocks, queue due runs. With REDIS_URL several may
    run; one is active (a Redis lease) and the others stand by."""
    asyncio.run(run_roles(["scheduler"], rpc_url, contract))
