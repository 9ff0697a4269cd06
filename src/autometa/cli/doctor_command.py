"""`autometa doctor`: probe an RPC endpoint and say what Autometa will do about each gap."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from autometa.chain.deploy import Deployment
from autometa.chain.probe import Doctor, Finding, findings_as_dicts, usable
from autometa.chain.web3 import RpcRetry, connect
from autometa.cli.common import console, emit, handle_errors, progress, settings_with
from autometa.config import Settings
from autometa.networks import feeds_for

STYLE = {"ok": "green", "gap": "yellow", "fail": "bold red", "info": "dim"}


@handle_errors
def doctor_command(
    rpc_url: Annotated[
        str | None, typer.Option("--rpc-url", help="endpoint(s) to probe, comma-separated (default: the settings')")
    ] = None,
    contract: Annotated[
        str | None, typer.Option(help="Autometa contract (default: settings or deployment file)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Probe each RPC endpoint (all of a comma-separated list): chain id and preset, eth_simulateV1,
    finality, eth_getLogs range, websocket, fee market, Multicall3, chain module, feeds. Exit 1 if
    Autometa cannot run on one of them (failover may land on any)."""
    settings = settings_with(rpc_url)
    reports = [_probe(settings.model_copy(update={"MOONBASE_RPC": url}), contract) for url in settings.rpc_urls]

    def human() -> None:
        for url, findings in reports:
            table = Table(title=f"autometa doctor — {url}", show_lines=False)
            for column in ("check", "seen", "Autometa will"):
                table.add_column(column, overflow="fold")
            for f in findings:
                table.add_row(f"[{STYLE[f.status]}]{f.check}[/]", f.seen, f.action)
            console.print(table)
            console.print("usable" if usable(findings) else "[bold red]not usable as configured[/]: see the red rows")

    ok = all(usable(findings) for _, findings in reports)
    out: dict[str, object] = {"rpc_url": settings.rpc_url, "usable": ok, "findings": findings_as_dicts(reports[0][1])}
    if len(reports) > 1:
        out["endpoints"] = [
            {"rpc_url": url, "usable": usable(f), "findings": findings_as_dicts(f)} for url, f in reports
        ]
    emit(out, as_json, human)
    if not ok:
        raise typer.Exit(1)


def _probe(settings: Settings, contract: str | None) -> tuple[str, list[Finding]]:
    """The findings for the one endpoint `settings` names."""
    w3 = connect(settings.rpc_url, timeout=10, retry=RpcRetry(attempts=2, budget_s=3))
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
        return settings.rpc_url, Doctor(w3, settings, contract=address, feeds=feeds).run()
