"""`autometa demo`: the seed's end-to-end flow on a fresh embedded stack, in under a minute."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from autometa.chain.anvil import free_port
from autometa.cli.common import console, fail, handle_errors, progress, settings_with
from autometa.embedded.demo import DemoFailed, run_demo
from autometa.embedded.devchain import start_dev_chain
from autometa.logs import configure_logging


@handle_errors
def demo_command(
    data_dir: Annotated[
        Path | None, typer.Option(help="keep the demo's chain and database here (default: a temp dir)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON last")] = False,
    verbose: Annotated[bool, typer.Option(help="show the services' logs")] = False,
) -> None:
    """Deposit, create the seed's workflow through the relayer, move the price, watch it execute."""
    folder = data_dir or Path(tempfile.mkdtemp(prefix="autometa-demo-"))
    settings = settings_with(None, DATA_DIR=folder, API_PORT=free_port())
    configure_logging("INFO" if verbose else "WARNING", settings.LOG_JSON)
    with progress("starting a dev chain and deploying contracts…"):
        chain = start_dev_chain(settings, block_time=1.0)
    try:
        result = run_demo(chain, settings, lambda line: console.print(line, highlight=False))
    except DemoFailed as exc:
        fail(f"demo failed: {exc}")
    finally:
        chain.stop()
    console.print("[bold green]demo passed[/]: the seed's workflow fired once and the coin arrived")
    if as_json:
        print(json.dumps(result, default=str))
