"""A dev chain that survives restarts: anvil loads and dumps its state in the data directory,
and the deployment recorded there is reused while its contract is still on the chain."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import structlog
from web3 import Web3

from autometa.chain.accounts import dev_role
from autometa.chain.anvil import Anvil
from autometa.chain.deploy import Deployment
from autometa.chain.devnet import setup_dev_stack
from autometa.chain.multicall3 import ensure_multicall3
from autometa.chain.web3 import connect
from autometa.config import Settings

log = structlog.get_logger("autometa.devchain")


@dataclass
class DevChain:
    anvil: Anvil
    w3: Web3
    deployment: Deployment
    resumed: bool

    @property
    def url(self) -> str:
        return self.anvil.url

    def database_url(self, settings: Settings) -> str:
        """The store for this deployment: a redeployed chain starts with a clean database."""
        if settings.DATABASE_URL:
            return settings.DATABASE_URL
        name = f"autometa-{self.deployment.chain_id}-{self.deployment.address[2:10].lower()}.db"
        return f"sqlite:///{(settings.DATA_DIR / name).resolve()}"

    def stop(self) -> None:
        self.anvil.stop()  # SIGTERM: anvil dumps its state file


def shared_database_url(settings: Settings) -> str:
    """`up --chains N`'s one store for every dev chain (rows are keyed by chain and contract);
    a configured DATABASE_URL wins."""
    return settings.DATABASE_URL or default_shared_database_url(settings.DATA_DIR)


def default_shared_database_url(data_dir: Path) -> str:
    """The SQLite file `up --chains N` owns in the data directory (moved aside on a reset)."""
    return f"sqlite:///{(data_dir / 'autometa-chains.db').resolve()}"


def set_interval_mining(w3: Web3, block_time: float) -> None:
    """A block every `block_time` seconds from now on (anvil takes whole seconds here)."""
    reply = w3.provider.make_request("evm_setIntervalMining", [max(1, round(block_time))])  # type: ignore[arg-type]
    if "error" in reply:
        raise RuntimeError(f"anvil refused interval mining: {reply['error']}")


def state_file(data_dir: Path, chain_id: int = 31337) -> Path:
    """Where anvil keeps the chain; the first dev chain's name is the one `up` always used."""
    name = "anvil-state.json" if chain_id == 31337 else f"anvil-state-{chain_id}.json"
    return data_dir / "chain" / name


def rpc_url_file(data_dir: Path, chain_id: int = 31337) -> Path:
    """Where `up` writes a dev chain's endpoint for other tools (`rpc_url`: the first chain's)."""
    return data_dir / "chain" / ("rpc_url" if chain_id == 31337 else f"rpc_url-{chain_id}")


def start_dev_chain(
    settings: Settings, *, port: int = 0, block_time: float | None = 1.0, chain_id: int = 31337
) -> DevChain:
    """Start (or resume) the local chain and make sure Autometa is deployed on it."""
    settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
    # Start on automine so deployment takes milliseconds, then switch to steady blocks.
    anvil = Anvil(port=port, chain_id=chain_id, state_path=state_file(settings.DATA_DIR, chain_id))
    anvil.start()
    try:
        w3 = connect(anvil.url)
        dep = Deployment.load(settings.DATA_DIR, chain_id)
        resumed = dep is not None and bool(w3.eth.get_code(Web3.to_checksum_address(dep.address)))
        if dep is not None and resumed:
            ensure_multicall3(w3, dev_role("admin"))  # a chain saved before it was part of the stack
            log.info("resumed dev chain", rpc=anvil.url, contract=dep.address, block=w3.eth.block_number)
        else:
            dep = setup_dev_stack(w3, settings.SUPPORTED_ASSETS)
            dep.save(settings.DATA_DIR)
            log.info("deployed dev stack", rpc=anvil.url, contract=dep.address)
        if block_time:
            set_interval_mining(w3, block_time)
        rpc_url_file(settings.DATA_DIR, chain_id).write_text(anvil.url + "\n")  # for other tools
        return DevChain(anvil, w3, dep, resumed=resumed)
    except BaseException:
        anvil.stop()
        raise
