"""`autometa doctor`: probe an RPC endpoint and say what Autometa will do about each gap."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from autometa.chain.deploy import Deployment
from autometa.chain.probe import Doctor, findings_as_dicts, usable
from autometa.chain.web3 import connect
from autometa.cli.common import console, emit, handle_errors, progress, settings_with
from autometa.networks import feeds_for

STYLE = {"ok": "green", "gap": "yellow", "fail": "bold red", "info": "dim"}


@handle_errors
def doctor_command(
    rpc_url: Annotated[str | None, typer.Option("--rpc-url", help="endpoint to probe (default: the settings')")] = None,
    contract: Annotated[
        str | None, typer.Option(help="Autometa contract (default: settings or deployment file)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Probe an RPC endpoint: chain id and preset, eth_simulateV1, finality, eth_getLogs range,
    websocket, fee market, Multicall3, chain module, feeds. Exit 1 if Autometa cannot run on it."""
    settings = settings_with(rpc_url)
    w3 = connect(settings.rpc_url, timeout=10)
    with progress(f"probing {settings.rpc_url}…"):
        feeds: dict[str, str] = {}
        address = contract or settings.contract_address
        try:
            chain_id = int(w3.eth.chain_id)
        except Exception:
            chain_id = None
        if chain_id is not None:
            dep = Deployment.load(settings.DATA_DIR, chain_id)
            feeds = dict(dep.feeds) if dep and dep.feeds else feeds_for(chain_id)
            address = address or (dep.address if dep else None)
        findings = Doctor(w3, settings, contract=address, feeds=feeds).run()

    def human() -> None:
        table = Table(title=f"autometa doctor — {settings.rpc_url}", show_lines=False)
        for column in ("check", "seen", "Autometa will"):
            table.add_column(column, overflow="fold")
        for f in findings:
            table.add_row(f"[{STYLE[f.status]}]{f.check}[/]", f.seen, f.action)
        console.print(table)
        console.print("usable" if usable(findings) else "[bold red]not usable as configured[/]: see the red rows")

    emit(
        {"rpc_url": settings.rpc_url, "usable": usable(findings), "findings": findings_as_dicts(findings)},
        as_json,
        human,
    )
    if not usable(findings):
        raise typer.Exit(1)
