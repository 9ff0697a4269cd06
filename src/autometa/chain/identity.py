"""Which chain this is, beyond its id: the genesis block's hash. A dev chain reset under running
services keeps its id (31337) and even the contract's address (deterministic deployment), but
not its genesis; services, the store and Redis names tell the two apart by it."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog
from web3 import AsyncWeb3, Web3

log = structlog.get_logger("autometa.chain")


class ChainChanged(Exception):
    """The chain behind the endpoint is not the one the store (or this process) knows."""


def _hex(value: Any) -> str:
    return "0x" + bytes(value).hex()


def genesis_hash(w3: Web3) -> str:
    return _hex(w3.eth.get_block(0)["hash"])


async def genesis_hash_async(w3: AsyncWeb3[Any]) -> str:
    return _hex((await w3.eth.get_block(0))["hash"])


def queue_prefix(chain_id: int, genesis: str, address: str) -> str:
    """The Redis names of one deployment on one chain: queue, claims, lease. A reset chain
    gets new names, so the old chain's claims never hold back the new chain's runs."""
    return f"autometa:{chain_id}:{genesis[2:10]}:{Web3.to_checksum_address(address)}"


def checkpoint_name(chain_id: int) -> str:
    return f"genesis:{chain_id}"


def claim_chain(store: Any, chain_id: int, genesis: str, rpc_url: str) -> bool:
    """Record the chain's genesis in the store on first use; raise ChainChanged if the store
    already holds another chain under the same id. True when newly recorded."""
    known = store.checkpoints.get(chain_id, checkpoint_name(chain_id))
    if known is None or not known.block_hash:
        store.checkpoints.set(chain_id, checkpoint_name(chain_id), 0, genesis)
        return True
    if str(known.block_hash).lower() != genesis.lower():
        raise ChainChanged(
            f"the store holds chain {chain_id} with genesis {str(known.block_hash)[:10]}…, but {rpc_url} has "
            f"genesis {genesis[:10]}…: the chain was reset. Use a fresh database (drop it, or another "
            "DATABASE_URL) and start again"
        )
    return False


async def watch_chain(
    w3: AsyncWeb3[Any], genesis: str, stop: asyncio.Event, rpc_url: str, every_s: float = 5.0
) -> None:
    """Until `stop`: raise ChainChanged (after setting `stop`) when the endpoint's genesis is no
    longer `genesis`. An unreachable node is no change (the services ride it out)."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
        if stop.is_set():
            return
        try:
            now = await genesis_hash_async(w3)
        except Exception:
            continue
        if now.lower() != genesis.lower():
            message = (
                f"the chain at {rpc_url} is not the one this service started on (genesis {genesis[:10]}… → "
                f"{now[:10]}…): the chain was reset; stopping. Restart on the new chain with a fresh database"
            )
            log.error("chain_changed", rpc=rpc_url, was=genesis, now=now)
            stop.set()
            raise ChainChanged(message)
