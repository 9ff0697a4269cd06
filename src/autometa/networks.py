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


# Chainlink Data Feed proxies (USD pairs, 8 decimals) per network, by asset id. Source:
# Chainlink's published feed lists as shipped in npm `@chainlink/mcp-server@0.0.1-alpha.17`
# (data/feeds/{ethereum,base,arbitrum,optimism}.json, generated 2025-11-03), the standard proxy
# of each pair; Ethereum mainnet cross-checked against smartcontractkit/documentation
# public/files/json/feeds-mainnet.json @ 211224bb. docs/NETWORKS.md has the table, heartbeats and
# caveats. An asset missing here has no feed on that network (GLMR has none on any of them; DOT
# only on Arbitrum One and OP): price triggers on it rely on the executor's attested price.
# Feed lists change: `autometa doctor` reads each configured feed's latest round on the chain.
FEEDS: dict[Network, dict[str, str]] = {
    Network.ETHEREUM: {
        "ethereum": "0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419",
        "bitcoin": "0xF4030086522a5bEEa4988F8cA5B36dbC97BeE88c",
        "usd-coin": "0x8fFfFfd4AfB6115b954Bd326cbe7B4BA576818f6",
        "tether": "0x3E7d1eAB13ad0104d2750B8863b489D65364e32D",
        "chainlink": "0x2c1d072e956AFFC0D435Cb7AC38EF18d24d9127c",
    },
    Network.SEPOLIA: {
        "ethereum": "0x694AA1769357215DE4FAC081bf1f309aDC325306",
        "bitcoin": "0x1b44F3514812d835EB1BDB0acB33d3fA3351Ee43",
        "usd-coin": "0xA2F78ab2355fe2f984D808B5CeE7FD0A93D5270E",
        "chainlink": "0xc59E3633BAAC79493d908e63626716e204A45EdF",
    },
    Network.BASE: {
        "ethereum": "0x71041dddad3595F9CEd3DcCFBe3D1F4b0a16Bb70",
        "bitcoin": "0x64c911996D3c6aC71f9b455B1E8E7266BcbD848F",
        "usd-coin": "0x7e860098F58bBFC8648a4311b374B1D669a2bc6B",
        "tether": "0xf19d560eB8d2ADf07BD6D13ed03e1D11215721F9",
        "chainlink": "0x17CAb8FE31E32f08326e5E27412894e49B0f9D65",
    },
    Network.BASE_SEPOLIA: {
        "ethereum": "0x4aDC67696bA383F43DD60A9e78F2C97Fbbfc7cb1",
        "bitcoin": "0x0FB99723Aee6f420beAD13e6bBB79b7E6F034298",
        "usd-coin": "0xd30e2101a97dcbAeBCBC04F14C3f624E67A35165",
        "tether": "0x3ec8593F930EA45ea58c968260e6e9FF53FC934f",
        "chainlink": "0xb113F5A928BCfF189C998ab20d753a47F9dE5A61",
    },
    Network.ARBITRUM: {
        "ethereum": "0x639Fe6ab55C921f74e7fac1ee960C0B6293ba612",
        "bitcoin": "0x6ce185860a4963106506C203335A2910413708e9",
        "usd-coin": "0x50834F3163758fcC1Df9973b6e91f0F0F0434aD3",
        "tether": "0x3f3f5dF88dC9F13eac63DF89EC16ef6e7E25DdE7",
        "polkadot": "0xa6bC5bAF2000424e90434bA7104ee399dEe80DEc",
        "chainlink": "0x86E53CF1B870786351Da77A57575e79CB55812CB",
    },
    Network.ARBITRUM_SEPOLIA: {
        "ethereum": "0xd30e2101a97dcbAeBCBC04F14C3f624E67A35165",
        "bitcoin": "0x56a43EB56Da12C0dc1D972ACb089c06a5dEF8e69",
        "usd-coin": "0x0153002d20B96532C639313c2d54c3dA09109309",
        "tether": "0x80EDee6f667eCc9f63a0a6f55578F870651f06A4",
        "chainlink": "0x0FB99723Aee6f420beAD13e6bBB79b7E6F034298",
    },
    Network.OPTIMISM: {
        "ethereum": "0x13e3Ee699D1909E989722E753853AE30b17e08c5",
        "bitcoin": "0xD702DD976Fb76Fffc2D3963D037dfDae5b04E593",
        "usd-coin": "0x16a9FA2FDa030272Ce99B29CF780dFA30361E0f3",
        "tether": "0xECef79E109e997bCA29c1c0897ec9d7b03647F5E",
        "polkadot": "0x28e67BAeEB5dE7A788f3Dde6CF6ee491369Bb3Fa",
        "chainlink": "0xCc232dcFAAE6354cE191Bd574108c1aD03f86450",
    },
    Network.OP_SEPOLIA: {
        "ethereum": "0x61Ec26aA57019C486B10502285c5A3D4A4750AD7",
        "bitcoin": "0x3015aa11f5c2D4Bd0f891E708C8927961b38cE7D",
        "usd-coin": "0x6e44e50E3cc14DD16e01C590DC1d7020cb36eD4C",
        "tether": "0xF83696ca1b8a266163bE252bE2B94702D4929392",
        "polkadot": "0x80a09B8436260832A4E72d5C8BA5A4E75777D5E2",
        "chainlink": "0x53f91dA33120F44893CB896b12a83551DEDb31c6",
    },
}


def feeds_for(chain_id: int) -> dict[str, str]:
    """Known Chainlink feeds of the live network with this chain id (empty for the dev chain,
    whose mock feeds are in its deployment file)."""
    found = by_chain_id(chain_id)
    return dict(FEEDS.get(found.network, {})) if found else {}
