"""`autometa api`: the backend API (relayer, price cache, history) under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from autometa.cli.common import handle_errors, settings_with


@handle_errors
def api_command(
    host: Annotated[str | None, typer.Option(help="listen address (default: API_HOST)")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="port (default: API_PORT)")] = None,
    rpc_url: Annotated[str | None, typer.Option("--rpc-url", help="JSON-RPC endpoint (default: MOONBASE_RPC)")] = None,
) -> None:
    """Run the backend API: signed workflow creation through the relayer (RELAYER_PRIVATE_KEY),
    cached prices, history and statistics from the store (DATABASE_URL), metrics at /metrics."""
    from autometa.api.server import run
    from autometa.logs import configure_logging

    settings = settings_with(rpc_url)
    configure_logging(settings.LOG_LEVEL, settings.LOG_JSON)
    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    run(settings, **overrides)
