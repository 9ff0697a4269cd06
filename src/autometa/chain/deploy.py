"""Deploy the Autometa contract (and, on a dev chain, price feeds and a token) and record it.

A deployment file per chain id (`deployments/<chain id>.json` in the data directory) lets every
process find the contract and the block to index from.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from autometa.chain.contracts import MODULE_CONTRACTS, autometa, bind, factory
from autometa.domain.assets import asset_to_bytes32
from autometa.networks import ChainModule, by_chain_id

DEV_PRICES_USD: dict[str, Decimal] = {
    "ethereum": Decimal("3250"),
    "bitcoin": Decimal("95000"),
    "moonbeam": Decimal("0.25"),
    "polkadot": Decimal("7.10"),
    "usd-coin": Decimal("1"),
    "tether": Decimal("1"),
}
FEED_DECIMALS = 8
DEV_FEED_MAX_AGE = 7 * 24 * 3600
# Seconds an admin change that could cost owners waits (ActionExecutor.timelockDelay; the contract
# accepts MIN_TIMELOCK = 60 s .. MAX_TIMELOCK = 30 days). Two days for a real deployment; the
# dev chain takes the minimum so `autometa admin apply` is a minute away.
DEFAULT_TIMELOCK_SECONDS = 2 * 24 * 3600
DEV_TIMELOCK_SECONDS = 60
MIN_TIMELOCK_SECONDS = 60  # ActionExecutor.MIN_TIMELOCK
MAX_TIMELOCK_SECONDS = 30 * 24 * 3600  # ActionExecutor.MAX_TIMELOCK


@dataclass
class Deployment:
    chain_id: int
    address: str  # the Autometa contract: registry, executor and escrow
    block: int  # deployment block: where indexing starts
    admin: str
    feeds: dict[str, str] = field(default_factory=dict)  # asset -> MockV3Aggregator (dev chain)
    token: str | None = None  # DevToken (dev chain)
    executors: list[str] = field(default_factory=list)
    timelock_seconds: int = 0  # the contract's timelockDelay (0: a deployment file from before it)
    assets: list[str] = field(default_factory=list)  # registered without a feed (attested prices)
    chain_module: str = ""  # ChainModule value the deployment prices the L1 data fee with ("": before issue 14)
    chain_module_address: str = ""

    def env_lines(self) -> list[str]:
        return [
            f"REGISTRY_ADDRESS={self.address}",
            f"ACTIONEXECUTOR_ADDRESS={self.address}",
            f"FEEESCROW_ADDRESS={self.address}",
            f"CHAIN_ID={self.chain_id}",
        ]

    def save(self, data_dir: Path) -> Path:
        path = deployment_path(data_dir, self.chain_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, data_dir: Path, chain_id: int) -> Deployment | None:
        path = deployment_path(data_dir, chain_id)
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text()))


def deployment_path(data_dir: Path, chain_id: int) -> Path:
    return data_dir / "deployments" / f"{chain_id}.json"


def transact(w3: Web3, account: LocalAccount, call: Any, value: int = 0, gas: int | None = None) -> Any:
    """Sign, send and wait for one transaction; raise with the revert reason if it fails.
    For one-off set-up steps; services send through `TransactionSender`. `gas`: a gas limit to
    use as is (an `executeBatch` must be sized from its items' gas limits: an estimate may find
    the gas at which every item is skipped for gas)."""
    params: dict[str, Any] = {
        "from": account.address,
        "nonce": w3.eth.get_transaction_count(account.address, "pending"),
    }
    if value:
        params["value"] = value
    if gas is not None:
        params["gas"] = gas
    tx = {**call, **params} if isinstance(call, dict) else call.build_transaction(params)
    # Headroom: relayer reimbursement and fees depend on the gas price, which eth_estimateGas
    # may run with at zero, so the estimate alone can fall short.
    if "gas" in tx and gas is None:
        tx["gas"] = int(tx["gas"] * 1.3) + 20_000
    signed = account.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
    if receipt["status"] != 1:
        raise RuntimeError(f"transaction {tx_hash.hex()} reverted")
    return receipt


def module_for_chain(chain_id: int) -> ChainModule:
    """The chain module a chain needs: its preset's (OP stack → Optimism, Arbitrum → Arbitrum);
    a chain without a preset gets none (pass one explicitly for an unlisted rollup)."""
    preset = by_chain_id(chain_id)
    return preset.chain_module if preset else ChainModule.NONE


def deploy_chain_module(w3: Web3, deployer: LocalAccount, module: ChainModule) -> str:
    """Deploy the module contract (stateless: one per deployment keeps upgrades independent),
    refusing a module whose predeploy does not answer on this chain (the core would refuse it)."""
    receipt = transact(w3, deployer, factory(w3, MODULE_CONTRACTS[module]).constructor())
    address = str(receipt["contractAddress"])
    try:
        bind(w3, MODULE_CONTRACTS[module], address).functions.getMaxL1Fee(0).call()
    except Exception as exc:
        raise ValueError(
            f"chain module {module.value!r} does not work on chain {w3.eth.chain_id} (its fee predeploy does not"
            f" answer: {type(exc).__name__}); choose the chain's module with --chain-module"
        ) from exc
    return address


def deploy_autometa(
    w3: Web3,
    deployer: LocalAccount,
    admin: str | None = None,
    timelock: int = DEFAULT_TIMELOCK_SECONDS,
    chain_module: str | None = None,
) -> tuple[str, int]:
    """Deploy the core with `chain_module` (an IChainModule address; default: a new module of the
    kind this chain needs); returns (address, block)."""
    if chain_module is None:
        chain_module = deploy_chain_module(w3, deployer, module_for_chain(w3.eth.chain_id))
    ctor = factory(w3, "Autometa").constructor(admin or deployer.address, timelock, chain_module)
    receipt = transact(w3, deployer, ctor)
    return receipt["contractAddress"], receipt["blockNumber"]


def deploy(
    w3: Web3,
    deployer: LocalAccount,
    admin: str | None = None,
    executors: list[str] | None = None,
    timelock: int = DEFAULT_TIMELOCK_SECONDS,
    assets: list[str] | None = None,
    chain_module: ChainModule | None = None,
) -> Deployment:
    """Deploy, then (when the deployer is the admin) allow-list `executors` and register `assets`
    as attested-price assets. Both apply at once: no workflow exists yet, so the timelock does not
    hold them back. `chain_module`: how the L1 data fee is priced (default: the chain's preset)."""
    module = chain_module or module_for_chain(w3.eth.chain_id)
    module_address = deploy_chain_module(w3, deployer, module)
    address, block = deploy_autometa(w3, deployer, admin, timelock, module_address)
    dep = Deployment(
        chain_id=w3.eth.chain_id,
        address=address,
        block=block,
        admin=admin or deployer.address,
        timelock_seconds=timelock,
        chain_module=module.value,
        chain_module_address=module_address,
    )
    if admin is None or admin == deployer.address:
        core = autometa(w3, address)
        for executor in executors or []:
            transact(w3, deployer, core.functions.setExecutor(executor, True))
        dep.executors = list(executors or [])
        register_assets(w3, deployer, address, assets or [])
        dep.assets = list(assets or [])
    return dep


def register_assets(w3: Web3, admin: LocalAccount, core_address: str, assets: list[str]) -> None:
    """Register assets priced by the executor's attestation (no feed): only registered assets can
    be used by price workflows (the contract's asset ids are not open to everyone)."""
    core = autometa(w3, core_address)
    for asset in assets:
        raw = asset_to_bytes32(asset)
        if core.functions.assetId(raw).call() == 0:
            transact(w3, admin, core.functions.registerAsset(raw))


def to_feed_answer(price: Decimal) -> int:
    return int((price * 10**FEED_DECIMALS).to_integral_value())


def deploy_dev_feeds(w3: Web3, admin: LocalAccount, core_address: str, prices: dict[str, Decimal]) -> dict[str, str]:
    """One Chainlink MockV3Aggregator per asset, registered as that asset's feed."""
    core = autometa(w3, core_address)
    feeds: dict[str, str] = {}
    for asset, price in prices.items():
        receipt = transact(w3, admin, factory(w3, "MockV3Aggregator").constructor(FEED_DECIMALS, to_feed_answer(price)))
        feeds[asset] = receipt["contractAddress"]
        transact(w3, admin, core.functions.setFeed(asset_to_bytes32(asset), feeds[asset], DEV_FEED_MAX_AGE))
    return feeds


def set_dev_price(w3: Web3, account: LocalAccount, feed: str, price: Decimal) -> Any:
    """Move a dev-chain feed (MockV3Aggregator.updateAnswer)."""
    return transact(w3, account, bind(w3, "MockV3Aggregator", feed).functions.updateAnswer(to_feed_answer(price)))


def deploy_dev_token(w3: Web3, deployer: LocalAccount, holders: list[str], amount: int) -> str:
    receipt = transact(w3, deployer, factory(w3, "DevToken").constructor("Autometa Dev Token", "ADT"))
    token = bind(w3, "DevToken", receipt["contractAddress"])
    for holder in holders:
        transact(w3, deployer, token.functions.mint(holder, amount))
    return str(receipt["contractAddress"])
