"""A dev chain reset under running services (issue 13 item 17): same chain id, same contract
address, new genesis. The store refuses the other chain, a running service stops with a
sentence, Redis names differ, and `up` starts clean with the old store moved aside."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from autometa.chain.anvil import Anvil, free_port
from autometa.chain.identity import ChainChanged, claim_chain, genesis_hash, queue_prefix, watch_chain
from autometa.chain.web3 import close_async, connect, connect_async
from autometa.config import load_settings
from autometa.embedded.devchain import start_dev_chain, state_file
from autometa.embedded.stack import open_store_for_chain
from autometa.store import Store

ADDRESS = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


async def test_a_reset_chain_is_refused_by_the_store_and_stops_a_running_service(tmp_path: Path) -> None:
    port = free_port()
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    first = Anvil(port=port).start()
    try:
        old = genesis_hash(connect(first.url))
        assert claim_chain(store, 31337, old, first.url) is True
        assert claim_chain(store, 31337, old, first.url) is False  # the same chain again: fine
        w3 = connect_async(first.url)
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch_chain(w3, old, stop, first.url, every_s=0.2))
        await asyncio.sleep(0.5)
        assert not watcher.done()
        first.stop()
        time.sleep(1.1)  # a new second: anvil's genesis depends on its start time (see below)
        second = Anvil(port=port).start()  # the reset: same port, same id, new genesis
        try:
            with pytest.raises(ChainChanged, match="not the one this service started on"):
                await asyncio.wait_for(watcher, 20)
            assert stop.is_set()
            new = genesis_hash(connect(second.url))
            assert new != old
            with pytest.raises(ChainChanged, match="the chain was reset"):
                claim_chain(store, 31337, new, second.url)
            assert queue_prefix(31337, old, ADDRESS) != queue_prefix(31337, new, ADDRESS)
        finally:
            await close_async(w3)
            second.stop()
    finally:
        first.stop()
        store.close()


def test_up_on_a_reset_dev_chain_moves_the_old_store_aside(tmp_path: Path) -> None:
    settings = load_settings(DATA_DIR=tmp_path / "data")
    chain = start_dev_chain(settings, block_time=None)
    try:
        store = open_store_for_chain(chain, settings)
        store.close()
        url = chain.database_url(settings)
    finally:
        chain.stop()
    chain = start_dev_chain(settings, block_time=None)  # resumed from its state file: same genesis
    try:
        assert chain.resumed
        open_store_for_chain(chain, settings).close()
        assert not list((tmp_path / "data").glob("*.before-*"))
    finally:
        chain.stop()
    state_file(settings.DATA_DIR).unlink()  # the reset
    # anvil's genesis depends on its accounts and its start second: a chain reset within the
    # same second as the first start is the same chain, block for block
    time.sleep(1.1)
    chain = start_dev_chain(settings, block_time=None)
    try:
        assert not chain.resumed and chain.database_url(settings) == url  # same address, same file name
        open_store_for_chain(chain, settings).close()
        moved = list((tmp_path / "data").glob("*.before-*"))
        assert len(moved) == 1
    finally:
        chain.stop()
