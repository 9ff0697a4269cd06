"""Redis and PostgreSQL restarted under the distributed worker (one scheduler, two executors,
anvil with 1 s blocks). Both servers are private to this module (the shared ones serve every
other test): Redis without persistence, so a restart loses the queue, the claims and the lease,
as a crashed cache would; PostgreSQL stopped with `-m immediate`, cutting every connection.

Runs fall due while the server is down or just before it goes; the workers must ride through
(no process exits) and end with every due run executed exactly once, the store equal to the
chain and the escrow exact.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from autometa.chain.accounts import dev_account

from ..support.services import PrivatePostgres, PrivateRedis
from ..support.stack import distributed_stack
from .helpers import Scenario, wait_until

pytestmark = [pytest.mark.slow]

EXECUTORS = {"executor-a": 5, "executor-b": 6}
OWNERS = (3, 8, 9)


@pytest.fixture(scope="module")
def services() -> Iterator[tuple[Scenario, PrivateRedis, PrivatePostgres]]:
    with (
        PrivateRedis() as redis_server,
        PrivatePostgres() as pg,
        distributed_stack(pg.url, executors=(5, 6), redis_url=redis_server.url) as stack,
    ):
        stack.start_workers(EXECUTORS)
        yield Scenario(stack), redis_server, pg


def _enqueued(sc: Scenario) -> int:
    total = 0
    for line in sc.stack.log_text("scheduler").splitlines():
        if "scheduler.block" in line and "enqueued=" in line:
            total += int(line.split("enqueued=")[1].split()[0])
    return total


def test_redis_restart(services: tuple[Scenario, PrivateRedis, PrivatePostgres]) -> None:
    sc, redis_server, _ = services
    owners = [dev_account(i) for i in OWNERS]
    before = _enqueued(sc)
    sc.wave(owners, 24, lead_s=4, spread=6)
    wait_until("the first runs queued", lambda: _enqueued(sc) > before, 30, sc.stack)
    redis_server.restart(down_s=3)  # queue, claims and lease lost; runs keep falling due
    sc.settle(timeout=120)
    sc.stack.check_alive()
    assert redis_server.restarts == 1
    sc.audit().assert_ok()


def test_postgres_restart(services: tuple[Scenario, PrivateRedis, PrivatePostgres]) -> None:
    sc, _, pg = services
    owners = [dev_account(i) for i in OWNERS]
    before = _enqueued(sc)
    sc.wave(owners, 24, lead_s=4, spread=6)
    wait_until("the first runs queued", lambda: _enqueued(sc) > before, 30, sc.stack)
    pg.restart(down_s=3)  # every connection cut; the indexer and the executors' writes fail meanwhile
    time.sleep(1)
    sc.settle(timeout=120)
    sc.stack.check_alive()
    assert pg.restarts == 1
    sc.audit().assert_ok()


def test_standby_takes_over_while_postgres_is_down(services: tuple[Scenario, PrivateRedis, PrivatePostgres]) -> None:
    """The active scheduler dies while PostgreSQL is down: the standby wins the lease, cannot load
    the workflows from the store, and must wait for it instead of exiting (the chaos bench once
    lost its only remaining scheduler this way). Runs last: it leaves the standby in charge."""
    sc, _, pg = services
    stack = sc.stack
    stack.start("standby", "scheduler")
    # It has opened the store once it logs its backend check; standbys log nothing more until they lead.
    stack.wait_started("standby", marker="backend")
    time.sleep(1)
    pg.stop()
    try:
        stack.kill("scheduler")
        failed = lambda: "scheduler.lead_failed" in stack.log_text("standby")  # noqa: E731
        wait_until("the standby to fail loading", failed, 60, stack)
        stack.check_alive()
    finally:
        pg.start()
    wait_until("the standby to load", lambda: stack.scheduler_loaded("standby"), 60, stack)
    owners = [dev_account(i) for i in OWNERS]
    sc.wave(owners, 12, lead_s=4, spread=3)
    sc.settle(timeout=120)
    stack.check_alive()
    sc.audit().assert_ok()
