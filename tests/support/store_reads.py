"""The harness's reads of the store, retried while the database restarts.

The fault scenarios restart PostgreSQL under the workers; with two chains on one private server
(`bench/chaos.py --chains 2`) one chain's timeline restarts it while the other chain's harness
is reading rows. A harness is not the product: its reads simply try again (tenacity) until the
server answers, for at most `RESTART_WAIT_S`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import OperationalError
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from autometa.store import Store

T = TypeVar("T")

RESTART_WAIT_S = 90.0  # a restart under load (crash recovery, five helpers on two cores) takes seconds, not minutes


def read_store(database_url: str, read: Callable[[Store], T]) -> T:
    """`read(store)` on a store opened (without migrating) for the call, again on a connection
    refused or cut while the server restarts."""

    def once() -> T:
        store = Store.open(database_url, migrate=False)
        try:
            return read(store)
        finally:
            store.close()

    retrying = Retrying(
        retry=retry_if_exception_type(OperationalError),
        wait=wait_exponential(multiplier=0.2, max=3),
        stop=stop_after_delay(RESTART_WAIT_S),
        reraise=True,
    )
    return retrying(once)
