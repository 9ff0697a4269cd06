"""`autometa worker --role …`: any of scheduler, executor and API in one process on one chain.

`autometa scheduler` and `autometa executor` are this with one role. All three roles in one
process is the small deployment (one interpreter instead of three: see README "Idle cost"); the
roles still share work through Redis with other processes when REDIS_URL is set."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Annotated

import typer

from autometa.cli.common import CliError, chain_context, chain_target, handle_errors, worker_start


async def run_roles(
    roles: Sequence[str], rpc_url: str | None, contract: str | None, worker_id: str | None = None
) -> None:
    """Connect, find the contract, and host `roles` until SIGINT/SIGTERM."""
    from autometa.chain.identity import ChainChanged
    from autometa.logs import configure_logging
    from autometa.runtime import ServiceFailed, StartError, run_worker

    ctx = chain_context(rpc_url, contract)
    configure_logging(ctx.settings.LOG_LEVEL, ctx.settings.LOG_JSON)
    target = chain_target(ctx)
    stop = await worker_start(ctx.settings)
    try:
        await run_worker(ctx.settings, target, roles, stop, worker_id=worker_id)
    except (StartError, ChainChanged, ServiceFailed) as exc:
        raise CliError(str(exc)) from None


ROLE_HELP = "scheduler, executor or api; repeat for several (default: all three)"
RPC_HELP = "JSON-RPC endpoint (default: MOONBASE_RPC)"
CONTRACT_HELP = "Autometa contract (default: REGISTRY_ADDRESS)"
ID_HELP = "the executor's id in heartbeats (default: host-pid)"


@handle_errors
def worker_command(
    role: Annotated[list[str] | None, typer.Option("--role", help=ROLE_HELP)] = None,
    rpc_url: Annotated[str | None, typer.Option("--rpc-url", help=RPC_HELP)] = None,
    contract: Annotated[str | None, typer.Option("--contract", help=CONTRACT_HELP)] = None,
    worker_id: Annotated[str | None, typer.Option("--id", help=ID_HELP)] = None,
) -> None:
    """Run the scheduler, an executor and the API (or the --role ones) in one process: the same
    settings as `autometa scheduler`, `autometa executor` and `autometa api`, about a third of
    their memory together."""
    from autometa.runtime import ROLES

    roles = list(dict.fromkeys(role or ROLES))
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise CliError(f"--role {unknown[0]}: one of {', '.join(ROLES)}", code=2)
    asyncio.run(run_roles(roles, rpc_url, contract, worker_id))
