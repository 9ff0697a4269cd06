"""At least once, never lost, across processes: several `autometa notify deliver` processes
share the outbox; one is killed with SIGKILL while it holds deliveries, the receiver is down
for a minute (a real outage: nothing listens on its port), and every worker is stopped and a new
one started. Every event reaches the receiver, whose signature check passes, and the set of
idempotency keys received is exactly the set of events — on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from autometa.store import Store
from autometa.store.notify_models import NotifyAttempt, NotifyDelivery, NotifyEvent
from tests.conftest import fresh_pg_database
from tests.notify.conftest import SECRET
from tests.notify.helpers import CHAIN, OWNER, add_workflow, record_run
from tests.notify.receiver import Receiver

pytestmark = pytest.mark.slow

OUTAGE_S = float(os.environ.get("AUTOMETA_TEST_NOTIFY_OUTAGE_S", "60"))
AUTOMETA = str(Path(sys.executable).parent / "autometa")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'notify.db'}"
    else:
        with fresh_pg_database("autometa_notify_proc") as url:
            yield url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(db_url: str, tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "DATA_DIR": str(tmp_path),
        "NOTIFY_ALLOW_PRIVATE_TARGETS": "127.0.0.0/8",
        "NOTIFY_LEASE_S": "3",
        "NOTIFY_POLL_S": "0.1",
        "NOTIFY_BACKOFF_BASE_S": "0.5",
        "NOTIFY_BACKOFF_MAX_S": "5",
        "NOTIFY_MAX_ATTEMPTS": "100",
        "NOTIFY_TIMEOUT_S": "2",
        "NOTIFY_CONCURRENCY": "16",
        "LOG_LEVEL": "WARNING",
    }
    log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [AUTOMETA, "notify", "deliver", "--chain-id", str(CHAIN)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )


def _wait(cond: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _count(store: Store, *where: object) -> int:
    with store.session() as s:
        return int(s.scalar(select(func.count()).select_from(NotifyDelivery).where(*where)) or 0)  # type: ignore[arg-type]


def test_kill9_outage_and_restart_lose_nothing(db_url: str, tmp_path: Path) -> None:
    port = _free_port()
    receiver = Receiver(SECRET, port).start()
    store = Store.open(db_url)
    add_workflow(store)
    store.notifications.subscribe(
        chain_id=CHAIN,
        owner=OWNER,
        name="hook",
        channel="webhook",
        target=f"http://127.0.0.1:{port}/hook",
        target_hint="h",
        secret=SECRET,
        events=["run.executed", "run.failed"],
    )
    workers = [_worker(db_url, tmp_path, "a"), _worker(db_url, tmp_path, "b")]
    run = 0

    def write(n: int) -> None:
        nonlocal run
        for _ in range(n):
            record_run(store, 1, run, status="failed" if run % 5 == 0 else "success")  # the indexer's writer
            run += 1

    try:
        # 1. kill -9 of a process while it holds deliveries (a slow receiver keeps them in flight).
        receiver.mode, receiver.slow_s = "slow", 0.3
        write(150)
        _wait(lambda: _count(store, NotifyDelivery.lease_token.is_not(None)) >= 8, 30, "deliveries in flight")
        with store.session() as s:  # the process holding the most claims right now
            holders = s.execute(
                select(NotifyDelivery.lease_token, func.count())
                .where(NotifyDelivery.lease_token.is_not(None))
                .group_by(NotifyDelivery.lease_token)
            ).all()
        assert holders, "no worker was delivering"
        victim = workers.pop(0)
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        receiver.mode = "ok"
        workers.append(_worker(db_url, tmp_path, "c"))  # a restarted replacement
        write(50)
        _wait(lambda: _count(store, NotifyDelivery.status != "delivered") == 0, 90, "delivery after kill -9")

        # 2. The receiver is down: nothing listens on its port for a minute, events keep coming.
        receiver.stop()
        write(100)
        time.sleep(OUTAGE_S)
        with store.session() as s:
            failed = s.scalar(select(func.count()).select_from(NotifyAttempt).where(NotifyAttempt.ok.is_(False)))
            reasons = set(s.scalars(select(NotifyAttempt.error).where(NotifyAttempt.ok.is_(False))).all())
        assert failed and any("unreachable" in (r or "") for r in reasons)
        assert _count(store, NotifyDelivery.status == "dead") == 0
        receiver.start()  # same port
        _wait(lambda: _count(store, NotifyDelivery.status != "delivered") == 0, 60, "delivery after the outage")

        # 3. Every worker stops; events are written meanwhile; a fresh one starts and catches up.
        for w in workers:
            w.send_signal(signal.SIGTERM)
            assert w.wait(20) == 0
        workers = []
        write(100)
        time.sleep(1)
        assert receiver.keys.keys() <= set(_keys(store))
        workers.append(_worker(db_url, tmp_path, "d"))
        _wait(lambda: _count(store, NotifyDelivery.status != "delivered") == 0, 60, "delivery after a restart")
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
            w.wait(20)
        receiver.stop()

    keys = _keys(store)
    assert len(keys) == run == 400
    assert set(receiver.keys) == set(keys)  # every event, none lost, none invented
    assert receiver.bad_signatures == 0
    # At least once: only what the killed process had in hand may have arrived twice.
    assert receiver.duplicates <= 16, receiver.duplicates
    store.close()


def _keys(store: Store) -> list[str]:
    with store.session() as s:
        return list(s.scalars(select(NotifyEvent.key)).all())
