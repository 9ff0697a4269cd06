"""The networks Autometa knows by name: chain id, a public RPC endpoint, block time, finality,
Multicall3 and the chain module that prices a rollup's L1 data fee.

A preset only fills in defaults: every value can be overridden in the settings, and an RPC
endpoint of your own (a provider's, not the public one) is what production wants. Moonbeam and
Moonbase Alpha, the seed's targets, were shut down in 2026; naming them stops start-up with a
pointer to a live network instead of failing later against a dead endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Network(StrEnum):
    DEV = "dev"
    BASE = "base"
    BASE_SEPOLIA = "base-sepolia"
    ETHEREUM = "ethereum"
    SEPOLIA = "sepolia"
    ARBITRUM = "arbitrum"
    ARBITRUM_SEPOLIA = "arbitrum-sepolia"
    OPTIMISM = "optimism"
    OP_SEPOLIA = "op-sepolia"
    # retired: accepted as names so the message can say what to use instead
    MOONBASE = "moonbase"
    MOONBEAM = "moonbeam"


class ChainModule(StrEnum):
    """How a transaction's full cost is known on this chain (see contracts' chain modules)."""

    NONE = "none"  # L1s and dev chains: gas used × gas price is the whole cost
    OPTIMISM = "optimism"  # OP stack: + the L1 data fee from the GasPriceOracle predeploy (0x42…0F)
    ARBITRUM = "arbitrum"  # Arbitrum: + the L1 calldata cost from ArbGasInfo (0x…6C)


# Multicall3 is deployed at the same address on every network below (mds1/multicall3, README
# "Multicall3 Contract Address"); the dev chain gets it installed at that address.
MULTICALL3 = "0xcA11bde05977b3631167028862bE2a173976CA11"


@dataclass(frozen=True)
class Preset:
    network: Network
    chain_id: int
    rpc_url: str  # a public endpoint: rate-limited, fine to try things, not for production
    block_time_s: float
    finality_tag: str | None  # "finalized" where the node reports it; None: a fixed confirmation depth
    multicall3: str | None
    chain_module: ChainModule
    testnet: bool

    @property
    def name(self) -> str:
        return self.network.value


PRESETS: dict[Network, Preset] = {
    p.network: p
    for p in (
        Preset(Network.DEV, 31337, "http://127.0.0.1:8545", 1.0, None, MULTICALL3, ChainModule.NONE, True),
        Preset(
            Network.BASE, 8453, "https://mainnet.base.org", 2.0, "finalized", MULTICALL3, ChainModule.OPTIMISM, False
        ),
        Preset(
            Network.BASE_SEPOLIA,
            84532,
            "https://sepolia.base.org",
            2.0,
            "finalized",
            MULTICALL3,
            ChainModule.OPTIMISM,
            True,
        ),
        Preset(
            Network.ETHEREUM,
            1,
            "https://ethereum-rpc.publicnode.com",
            12.0,
            "finalized",
            MULTICALL3,
            ChainModule.NONE,
            False,
        ),
        Preset(
            Network.SEPOLIA,
            11155111,
            "https://ethereum-sepolia-rpc.publicnode.com",
            12.0,
            "finalized",
            MULTICALL3,
            ChainModule.NONE,
            True,
        ),
        Preset(
            Network.ARBITRUM,
            42161,
            "https://arb1.arbitrum.io/rpc",
            0.25,
            "finalized",
            MULTICALL3,
            ChainModule.ARBITRUM,
            False,
        ),
        Preset(
            Network.ARBITRUM_SEPOLIA,
            421614,
            "https://sepolia-rollup.arbitrum.io/rpc",
            0.25,
            "finalized",
            MULTICALL3,
            ChainModule.ARBITRUM,
            True,
        ),
        Preset(
            Network.OPTIMISM,
            10,
            "https://mainnet.optimism.io",
            2.0,
            "finalized",
            MULTICALL3,
            ChainModule.OPTIMISM,
            False,
        ),
        Preset(
            Network.OP_SEPOLIA,
            11155420,
            "https://sepolia.optimism.io",
            2.0,
            "finalized",
            MULTICALL3,
            ChainModule.OPTIMISM,
            True,
        ),
    )
}

RETIRED: dict[Network, str] = {
    Network.MOONBEAM: (
        "NETWORK=moonbeam: Moonbeam was shut down in 2026 (sunset 2026-07-31; GLMR moved to Base). "
        "Use NETWORK=base (or base-sepolia to try it on a testnet) and deploy there with `autometa deploy`"
    ),
    Network.MOONBASE: (
        "NETWORK=moonbase: Moonbase Alpha was shut down in 2026 together with Moonbeam. "
        "Use NETWORK=base-sepolia (a live testnet) and deploy there with `autometa deploy`"
    ),
}


class RetiredNetwork(ValueError):
    """A network that no longer exists was named; the message says which one to use instead."""


def preset(network: Network | str) -> Preset:
    """The preset of a live network; a retired one raises RetiredNetwork with its replacement."""
    net = Network(network)
    if net in RETIRED:
        raise RetiredNetwork(RETIRED[net])
    return PRESETS[net]


def by_chain_id(chain_id: int) -> Preset | None:
    """The live preset with this chain id (31337 is the dev chain, anvil's and Hardhat's default)."""
    return next((p for p in PRESETS.values() if p.chain_id == chain_id), None)


def live_names() -> list[str]:
    return [n.value for n in PRESETS]


# Chainlink Data Feed proxies (USD pairs) per network, by asset id; filled from Chainlink's
# published feed lists (source next to the table). An asset missing here has no feed on that
# network: price triggers on it rely on the executor's attested price (docs/SECURITY.md).
FEEDS: dict[Network, dict[str, str]] = {}


def feeds_for(chain_id: int) -> dict[str, str]:
    """Known Chainlink feeds of the live network with this chain id (empty for the dev chain,
    whose mock feeds are in its deployment file)."""
    found = by_chain_id(chain_id)
    return dict(FEEDS.get(found.network, {})) if found else {}
