"""`autometa worker --role …`: any of scheduler, executor and API in one process, on every chain
the settings serve (CHAINS; without it the one chain of the single-chain settings).

`autometa scheduler` and `autometa executor` are this with one role. All three roles in one
process is the small deployment (one interpreter instead of three: see README "Idle cost"); the
roles still share work through Redis with other processes when REDIS_URL is set."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from autometa.cli.common import CliError, chain_context, chain_target, handle_errors, settings_with, worker_start

if TYPE_CHECKING:
    from autometa.config import Settings
    from autometa.runtime import ChainRun


def chain_runs(rpc_url: str | None, contract: str | None) -> tuple[Settings, list[ChainRun]]:
    """The deployment's settings and, for each chain it serves, that chain's settings view and
    target (its contract from its CHAINS entry or the deployment file in DATA_DIR). --rpc-url and
    --contract name one chain: they are refused when CHAINS is set."""
    from autometa.runtime import ChainRun

    settings = settings_with(rpc_url)
    if settings.CHAINS is None:
        ctx = chain_context(rpc_url, contract, settings=settings)
        return ctx.settings, [ChainRun(ctx.settings, chain_target(ctx))]
    if contract:
        raise CliError("--contract names one chain's contract: with CHAINS set, give it in the chain's entry", code=2)
    runs = []
    for chain in settings.chains:
        ctx = chain_context(settings=settings.for_chain(chain))
        runs.append(ChainRun(ctx.settings, chain_target(ctx)))
    return settings, runs


async def run_roles(
    roles: Sequence[str], rpc_url: str | None, contract: str | None, worker_id: str | None = None
) -> None:
    """Connect to every served chain, find its contract, and host `roles` on all of them (one
    store, one lease and one executor key per chain) until SIGINT/SIGTERM."""
    from autometa.chain.identity import ChainChanged
    from autometa.logs import configure_logging
    from autometa.runtime import ServiceFailed, StartError, run_chains

    settings, runs = chain_runs(rpc_url, contract)
    configure_logging(settings.LOG_LEVEL, settings.LOG_JSON)
    stop = await worker_start(settings)
    try:
        await run_chains(settings, runs, roles, stop, worker_id=worker_id)
    except (StartError, ChainChanged, ServiceFailed) as exc:
        raise CliError(str(exc)) from None


ROLE_HELP = "scheduler, executor or api; repeat for several (default: all three)"
RPC_HELP = "JSON-RPC endpoint (default: MOONBASE_RPC)"
CONTRACT_HELP = "Autometa contract (default: REGISTRY_ADDRESS)"
ID_HELP = "the executor's id in heartbeats (default: host-pid)"
FORK_HELP = (
    "each role in its own process, forked from this one after it has loaded them all: isolated "
    "roles sharing the libraries' memory (~60 % of separate processes); a role that exits is "
    "started again. Needs REDIS_URL"
)


@handle_errors
def worker_command(
    role: Annotated[list[str] | None, typer.Option("--role", help=ROLE_HELP)] = None,
    rpc_url: Annotated[str | None, typer.Option("--rpc-url", help=RPC_HELP)] = None,
    contract: Annotated[str | None, typer.Option("--contract", help=CONTRACT_HELP)] = None,
    worker_id: Annotated[str | None, typer.Option("--id", help=ID_HELP)] = None,
    fork: Annotated[bool, typer.Option("--fork", help=FORK_HELP)] = False,
) -> None:
    """Run the scheduler, an executor and the API (or the --role ones) in one process: the same
    settings as `autometa scheduler`, `autometa executor` and `autometa api`, about a third of
    their memory together. With --fork, one process per role sharing what they have loaded."""
    from autometa.runtime import ROLES

    roles = list(dict.fromkeys(role or ROLES))
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise CliError(f"--role {unknown[0]}: one of {', '.join(ROLES)}", code=2)
    if fork and len(roles) > 1:
        raise typer.Exit(_forked(roles, rpc_url, contract, worker_id))
    asyncio.run(run_roles(roles, rpc_url, contract, worker_id))


def _forked(roles: list[str], rpc_url: str | None, contract: str | None, worker_id: str | None) -> int:
    """`--fork`: check the settings and the chain once, load everything, fork one child per
    role and become their supervisor (autometa.runtime.forked). Returns only on a failed check."""
    import os
    import sys

    from autometa.logs import configure_logging
    from autometa.runtime.forked import fork_roles, in_child, preload

    settings = settings_with(rpc_url)
    configure_logging(settings.LOG_LEVEL, settings.LOG_JSON)
    if "scheduler" in roles and "executor" in roles and not settings.REDIS_URL:
        raise CliError("--fork runs the scheduler and the executor in two processes: set REDIS_URL", code=2)

    def exit_code(fn: Callable[[], object]) -> int:
        try:
            handle_errors(fn)()
        except typer.Exit as exc:
            return exc.exit_code
        return 0

    # The chain is checked in a throwaway child: a connection made here would be inherited.
    checked = in_child(lambda: exit_code(lambda: chain_runs(rpc_url, contract)))
    if checked:
        return checked
    options = {"--rpc-url": rpc_url, "--contract": contract, "--id": worker_id}
    restart = [
        sys.executable,
        os.path.abspath(sys.argv[0]),
        "worker",
        *(a for k, v in options.items() if v for a in (k, v)),
    ]

    def run_role(role: str) -> int:
        return exit_code(lambda: asyncio.run(run_roles([role], rpc_url, contract, worker_id)))

    preload()
    fork_roles(roles, run_role, restart, settings.LOG_JSON)
