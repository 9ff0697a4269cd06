"""CHAINS: several chains in one configuration, checked at start-up with errors naming the entry;
without it the single-chain settings (and the seed's .env names) are a one-chain list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autometa.config import ConfigError, Network, load_settings

CORE_A = "0x" + "5f" * 20
CORE_B = "0x" + "6e" * 20
KEY = "0x" + "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
OTHER_KEY = "0x" + "11" * 32


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("CHAINS", "MOONBASE_RPC", "RPC_URL", "CHAIN_ID", "NETWORK", "REGISTRY_ADDRESS", "WORKER_PRIVATE_KEY"):
        monkeypatch.delenv(name, raising=False)


def test_the_seed_env_names_are_a_one_chain_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETWORK", "base-sepolia")
    monkeypatch.setenv("MOONBASE_RPC", "https://node.example/rpc")
    monkeypatch.setenv("REGISTRY_ADDRESS", CORE_A)
    s = load_settings()
    [only] = s.chains
    assert (only.label, only.id, only.rpc, only.contract) == (
        "base-sepolia",
        84532,
        "https://node.example/rpc",
        s.REGISTRY_ADDRESS,
    )
    assert s.for_chain(only) is s and s.chain("84532") == only and s.chain("base-sepolia") == only


def test_a_dev_chain_id_of_no_preset_is_named_by_its_id() -> None:
    s = load_settings(CHAIN_ID=31338, MOONBASE_RPC="http://127.0.0.1:8546")
    assert [(c.label, c.id, c.rpc) for c in s.chains] == [("31338", 31338, "http://127.0.0.1:8546")]


def test_chains_list_with_per_chain_endpoints_contracts_and_keys() -> None:
    chains = [
        {"network": "base", "rpc": "https://base.example", "contract": CORE_A, "worker_private_key": OTHER_KEY},
        {
            "chain_id": 31338,
            "name": "dev2",
            "rpc": "http://127.0.0.1:8546",
            "contract": CORE_B,
        },
    ]
    s = load_settings(CHAINS=json.dumps(chains), WORKER_PRIVATE_KEY=KEY)
    assert [(c.label, c.id) for c in s.chains] == [("base", 8453), ("dev2", 31338)]
    assert s.default_chain.label == "base"
    base, dev2 = s.for_chain("base"), s.for_chain(31338)
    assert (base.NETWORK, base.expected_chain_id, base.rpc_url, base.contract_address) == (
        Network.BASE,
        8453,
        "https://base.example",
        s.chains[0].contract,
    )
    assert base.WORKER_PRIVATE_KEY is not None and base.WORKER_PRIVATE_KEY.get_secret_value() == OTHER_KEY
    assert (dev2.NETWORK, dev2.expected_chain_id, dev2.rpc_url) == (Network.DEV, 31338, "http://127.0.0.1:8546")
    assert dev2.WORKER_PRIVATE_KEY is not None and dev2.WORKER_PRIVATE_KEY.get_secret_value() == KEY  # top-level key
    assert dev2.CHAINS is None and dev2.chains[0].id == 31338
    with pytest.raises(KeyError, match=r"served: base \(8453\), dev2 \(31338\)"):
        s.chain("arbitrum")


def test_preset_names_alone_use_the_public_endpoints() -> None:
    s = load_settings(CHAINS="base, arbitrum")
    assert [(c.label, c.id) for c in s.chains] == [("base", 8453), ("arbitrum", 42161)]
    assert s.for_chain("arbitrum").rpc_url == "https://arb1.arbitrum.io/rpc"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[{]", "CHAINS: not valid JSON"),
        ("[]", "CHAINS: lists no chain"),
        ('[{"rpc": "http://x"}]', "CHAINS.0: .*name the chain"),
        ('[{"chain_id": 999999}]', "CHAINS.0: .*has no preset: give its rpc"),
        ('[{"network": "base", "chain_id": 10}]', "CHAINS.0: .*network base is chain 8453, not chain_id 10"),
        ('[{"network": "moonbase"}]', "CHAINS.0.network: .*Moonbase Alpha was shut down"),
        ('[{"network": "base", "contract": "0x1234"}]', "CHAINS.0.contract: .*20-byte hex address"),
        ('[{"network": "base", "rpc": "ftp://x"}]', "CHAINS.0.rpc: .*not an http"),
        ('[{"network": "base", "worker_private_key": "0xnope"}]', "CHAINS.0.worker_private_key: .*not a valid"),
        ('[{"network": "base", "colour": "red"}]', "CHAINS.0.colour: Extra inputs"),
        ("base,base", "CHAINS: entries 0 and 1 are both called 'base'"),
        ('[{"network": "base"}, {"chain_id": 8453, "name": "b2"}]', "CHAINS: entries 0 and 1 are the same chain 8453"),
    ],
)
def test_a_bad_chains_entry_fails_naming_it(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(CHAINS=value)


def test_a_bad_key_in_chains_is_never_echoed() -> None:
    secret = "0x" + "zz" * 32
    with pytest.raises(ConfigError) as info:
        load_settings(CHAINS=json.dumps([{"network": "base", "relayer_private_key": secret}]))
    assert secret not in str(info.value)


def test_chains_and_single_chain_settings_together_are_refused() -> None:
    with pytest.raises(ConfigError, match="CHAINS and MOONBASE_RPC, REGISTRY_ADDRESS are both set"):
        load_settings(CHAINS="base", MOONBASE_RPC="https://x.example", REGISTRY_ADDRESS=CORE_A)
