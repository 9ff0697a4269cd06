"""`autometa doctor` against real endpoints: anvil as it is, and anvil behind a proxy that answers
like a public provider (no eth_simulateV1, eth_getLogs capped at 1,000 blocks, no websocket)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from autometa.cli.main import app
from tests.conftest import DevChain
from tests.support.provider_proxy import LOG_BLOCK_CAP as LOG_CAP
from tests.support.provider_proxy import PublicProviderProxy


@pytest.fixture
def doctor(dev_chain: DevChain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    for name in ("MOONBASE_RPC", "REGISTRY_ADDRESS", "CHAIN_ID", "NETWORK"):
        monkeypatch.delenv(name, raising=False)
    dev_chain.deployment.save(tmp_path / "data")
    runner = CliRunner()

    def run(*args: str) -> tuple[int, dict[str, Any]]:
        result = runner.invoke(app, ["doctor", "--json", *args])
        return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else {"stderr": result.stderr}

    return run


def _by_check(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {f["check"]: f for f in report["findings"]}


def test_anvil_offers_everything_autometa_uses(doctor, dev_chain: DevChain) -> None:  # type: ignore[no-untyped-def]
    code, report = doctor("--rpc-url", dev_chain.url)
    assert code == 0 and report["usable"] is True, report
    found = _by_check(report)
    for check in ("chain id", "eth_simulateV1", "eth_getLogs range", "websocket", "fee market", "Autometa contract"):
        assert found[check]["status"] == "ok", found[check]
    assert found["node"]["seen"].startswith("anvil")
    feed = found["feed ethereum"]
    assert feed["status"] == "ok" and dev_chain.deployment.feeds["ethereum"] in feed["seen"]


def test_a_provider_like_endpoint_shows_each_gap_and_the_work_around(doctor, dev_chain: DevChain) -> None:  # type: ignore[no-untyped-def]
    dev_chain.w3.provider.make_request("anvil_mine", [hex(3 * LOG_CAP)])  # type: ignore[arg-type]
    with PublicProviderProxy(dev_chain.url) as proxy:
        code, report = doctor("--rpc-url", proxy.url, "--contract", dev_chain.deployment.address)
    assert code == 0 and report["usable"] is True, report
    found = _by_check(report)
    assert found["eth_simulateV1"]["status"] == "gap" and "eth_estimateGas" in found["eth_simulateV1"]["action"]
    logs = found["eth_getLogs range"]
    assert logs["status"] == "gap" and f"INDEXER_BATCH_BLOCKS={LOG_CAP}" in logs["action"], logs
    assert found["websocket"]["status"] == "gap" and "polls" in found["websocket"]["action"]


def test_a_wrong_network_or_a_dead_endpoint_is_not_usable(doctor, dev_chain: DevChain, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    code, report = doctor("--rpc-url", "http://127.0.0.1:9")
    assert code == 1 and report["findings"][0]["status"] == "fail"
    monkeypatch.setenv("CHAIN_ID", "8453")
    code, report = doctor("--rpc-url", dev_chain.url)
    assert code == 1 and _by_check(report)["chain id"]["status"] == "fail"


def test_a_retired_network_is_refused_before_probing(doctor, dev_chain: DevChain, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NETWORK", "moonbase")
    result = CliRunner().invoke(app, ["doctor", "--rpc-url", dev_chain.url])
    assert result.exit_code == 2 and "shut down in 2026" in result.stderr


def test_each_of_several_endpoints_is_probed(doctor, dev_chain: DevChain) -> None:  # type: ignore[no-untyped-def]
    """Failover may land on any listed endpoint: one dead endpoint makes the list not usable."""
    with PublicProviderProxy(dev_chain.url) as proxy:
        code, report = doctor("--rpc-url", f"{dev_chain.url},{proxy.url}")
        assert code == 0 and report["usable"] is True, report
        first, second = report["endpoints"]
        assert (first["rpc_url"], second["rpc_url"]) == (dev_chain.url, proxy.url)
        assert _by_check(first)["websocket"]["status"] == "ok" and _by_check(second)["websocket"]["status"] == "gap"
        code, report = doctor("--rpc-url", f"{proxy.url},http://127.0.0.1:9")
    assert code == 1 and [e["usable"] for e in report["endpoints"]] == [True, False]
    assert report["endpoints"][1]["findings"][0]["status"] == "fail"
