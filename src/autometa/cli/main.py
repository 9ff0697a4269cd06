"""Entry point of the `autometa` command."""

from __future__ import annotations

import typer

from autometa import __version__
from autometa.cli import (
    admin_commands,
    chain_commands,
    escrow_commands,
    keys_commands,
    notify_commands,
    price_commands,
    rotation_commands,
    workflow_commands,
)
from autometa.cli.api_command import api_command
from autometa.cli.demo_command import demo_command
from autometa.cli.doctor_command import doctor_command
from autometa.cli.executor_command import executor_command
from autometa.cli.scheduler_command import scheduler_command
from autometa.cli.up_command import up_command
from autometa.cli.worker_command import worker_command
from autometa.logs import configure_logging

app = typer.Typer(
    help="Autometa: on-chain workflow automation you run yourself.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _quiet_logs() -> None:
    # Library warnings (an RPC endpoint failing over, a retry) go to stderr, never into the
    # stdout a `--json` reader parses; the long-running commands configure their own level.
    configure_logging("WARNING")


app.command("deploy")(chain_commands.deploy_command)
app.command("devnet")(chain_commands.devnet_command)
app.command("up")(up_command)
app.command("demo")(demo_command)
app.command("doctor")(doctor_command)
app.command("api")(api_command)
app.command("scheduler")(scheduler_command)
app.command("executor")(executor_command)
app.command("worker")(worker_command)
app.add_typer(escrow_commands.app, name="escrow")
app.add_typer(workflow_commands.app, name="workflow")
app.add_typer(price_commands.app, name="price")
app.add_typer(admin_commands.app, name="admin")
admin_commands.executor_app.command("rotate")(rotation_commands.rotate_command)
app.add_typer(keys_commands.app, name="keys")
workflow_commands.app.command("invalidate-signatures")(admin_commands.invalidate_signatures)
app.add_typer(notify_commands.app, name="notify")


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


if __name__ == "__main__":
    app()
