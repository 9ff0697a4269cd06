"""Configuration: the seed's .env works unchanged; bad settings fail naming the setting; keys
never leak."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog

from autometa.config import ConfigError, Network, load_settings
from autometa.logs import configure_logging

SEED_ENV = """\
MOONBASE_RPC=https://rpc.api.moonbase.moonbeam.network
REGISTRY_ADDRESS=0x87bb7A86E657f1dDd2e84946545b6686935E3a56
ACTIONEXECUTOR_ADDRESS=0x1Cb45BceCC3f0CEd2875b49d4f6dd5543B2bD559
FEEESCROW_ADDRESS=0x6a4E6dA8A8B9C1a178d7B1E4EE1279653A806C7e
WORKER_PRIVATE_KEY={key}
POLL_INTERVAL=10
MAX_CONCURRENT_EXECUTIONS=3
PRICE_FEED_URL=https://api.coingecko.com/api/v3/simple/price
REDIS_URL=redis://localhost:6379/0
BACKEND_API_URL=http://localhost:8000
USE_BACKEND_INTEGRATION=true
"""
KEY = "0x" + "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("MOONBASE_RPC", "REGISTRY_ADDRESS", "WORKER_PRIVATE_KEY", "POLL_INTERVAL", "DATA_DIR"):
        monkeypatch.delenv(name, raising=False)


def test_the_seed_env_file_loads_unchanged(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(SEED_ENV.format(key=KEY))
    s = load_settings()
    assert s.rpc_url == "https://rpc.api.moonbase.moonbeam.network"
    assert s.REGISTRY_ADDRESS == "0x87bb7A86E657f1dDd2e84946545b6686935E3a56"
    assert s.POLL_INTERVAL == 10 and s.MAX_CONCURRENT_EXECUTIONS == 3
    assert s.REDIS_URL == "redis://localhost:6379/0" and s.USE_BACKEND_INTEGRATION is True
    assert s.WORKER_PRIVATE_KEY is not None and s.WORKER_PRIVATE_KEY.get_secret_value() == KEY
    # The seed named three contracts; ours is one, so differing addresses are refused when used.
    with pytest.raises(ConfigError, match="REGISTRY_ADDRESS"):
        _ = s.contract_address


@pytest.mark.parametrize(
    ("network", "chain_id", "module"),
    [
        ("base", 8453, "optimism"),
        ("base-sepolia", 84532, "optimism"),
        ("ethereum", 1, "none"),
        ("sepolia", 11155111, "none"),
        ("arbitrum", 42161, "arbitrum"),
        ("arbitrum-sepolia", 421614, "arbitrum"),
        ("optimism", 10, "optimism"),
        ("op-sepolia", 11155420, "optimism"),
    ],
)
def test_network_presets(network: str, chain_id: int, module: str) -> None:
    s = load_settings(NETWORK=network)
    assert s.expected_chain_id == chain_id and s.preset.chain_module == module
    assert s.rpc_url.startswith("https://") and s.preset.finality_tag == "finalized"
    assert load_settings(NETWORK=network, MOONBASE_RPC="http://127.0.0.1:9").rpc_url == "http://127.0.0.1:9"
    assert load_settings().NETWORK is Network.DEV and load_settings().expected_chain_id is None


@pytest.mark.parametrize(("network", "instead"), [("moonbeam", "NETWORK=base"), ("moonbase", "NETWORK=base-sepolia")])
def test_retired_networks_stop_start_up_with_one_line_naming_the_replacement(network: str, instead: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(NETWORK=network)
    message = str(err.value)
    assert "\n" not in message and "shut down in 2026" in message and instead in message
    assert message.startswith("invalid configuration — NETWORK: NETWORK=" + network)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("POLL_INTERVAL", "-1"),
        ("MAX_CONCURRENT_EXECUTIONS", "lots"),
        ("BATCH_GAS_SHARE", "0"),
        ("BATCH_GAS_SHARE", "1.5"),
        ("BATCH_GAS_SHARE", "half"),
        ("REGISTRY_ADDRESS", "0x1234"),
        ("REGISTRY_ADDRESS", "0x87bb7a86e657f1ddd2e84946545b6686935E3a56"),  # bad checksum
        ("PRICE_FEED_URL", "ftp://example"),
        ("USE_BACKEND_INTEGRATION", "maybe"),
        ("LOG_LEVEL", "LOUD"),
        ("NETWORK", "mainnet"),
    ],
)
def test_a_bad_setting_fails_naming_it(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert name in str(err.value)


def test_a_private_key_never_shows(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("WORKER_PRIVATE_KEY", KEY)
    s = load_settings()
    assert KEY[2:] not in repr(s) and KEY[2:] not in str(s.model_dump())
    bad = KEY[:-2] + "zz"
    monkeypatch.setenv("WORKER_PRIVATE_KEY", bad)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "WORKER_PRIVATE_KEY" in str(err.value) and bad[2:20] not in str(err.value)
    try:
        configure_logging()
        structlog.get_logger().info("oops", detail=f"key is {KEY}", key=KEY, tx_hash="0x" + "ab" * 32)
        out = capsys.readouterr().err
    finally:
        structlog.reset_defaults()
    assert KEY[2:] not in out and "ab" * 32 in out


@pytest.mark.parametrize(
    ("value", "parsed", "blocks"), [("3", 3, 3), ("finalized", "finalized", 0), ("SAFE", "safe", 0)]
)
def test_confirmations_take_a_depth_or_a_block_tag(value: str, parsed: object, blocks: int) -> None:
    s = load_settings(CONFIRMATIONS=value)
    assert s.CONFIRMATIONS == parsed and s.confirmation_blocks == blocks


@pytest.mark.parametrize("value", ["latest", "-1", "1001", "final"])
def test_bad_confirmations_name_the_setting(value: str) -> None:
    with pytest.raises(ConfigError, match="CONFIRMATIONS"):
        load_settings(CONFIRMATIONS=value)
