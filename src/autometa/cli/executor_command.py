"""`autometa executor`: take due runs from the queue and execute them in batches."""

from __future__ import annotations

import asyncio

import typer

from autometa.cli.common import handle_errors
from autometa.cli.worker_command import run_roles


@handle_errors
def executor_command(
    rpc_url: str | None = typer.Option(None, "--rpc-url", help="JSON-RPC endpoint (default: MOONBASE_RPC)"),
    contract: str | None = typer.Option(None, "--contract", help="Autometa contract (default: REGISTRY_ADDRESS)"),
    worker_id: str | None = typer.Option(None, "--id", help="this executor's id in heartbeats (default: host-pid)"),
) -> None:
    """Run an executor: due runs from the queue, simulated, batched, sent with WORKER_SIGNER (or
    WORKER_PRIVATE_KEY).
    Needs REDIS_URL to share work with a separate scheduler; run as many as you like, each with
    its own key."""
    asyncio.run(run_roles(["executor"], rpc_url, contract, worker_id))
