"""Benchmark: notification event-to-delivery latency, and nothing lost or doubled by an outage.

One `autometa notify deliver` process (default settings but loopback allowed) delivers signed
webhooks from the store's outbox to a local receiver (bench/notify_receiver.py, its own process:
verifies every signature and logs each idempotency key with its arrival time).

Phase 1 (healthy receiver): 10,000 events are written to the outbox at a steady rate, a few per
transaction as the indexer writes them; latency = the receiver's first arrival of an event's key
- the event row's creation time: p50_s / p99_s (target p99 <= 2 s).
Phase 2 (outage): the receiver process is stopped (its port closed, connections dropped),
10,000 more events are written, the receiver stays down 30 s and comes back on the same port;
``delivered`` = distinct keys of phase 2 received, ``duplicates`` = extra copies of any key
(targets 10,000 and 0), and how long the backlog took to drain after the receiver came back.

Run: .venv/bin/python bench/notify.py [--events 10000 --rate 500 --outage-s 30 --postgres]
Progress goes to stderr; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from sqlalchemy import func, select  # noqa: E402
from tests.conftest import fresh_pg_database  # noqa: E402

from autometa.store import Store  # noqa: E402
from autometa.store.db import write_session  # noqa: E402
from autometa.store.executions import percentile  # noqa: E402
from autometa.store.notifications import emit  # noqa: E402
from autometa.store.notify_models import NotifyDelivery, NotifyEvent  # noqa: E402

CHAIN = 31337
OWNER = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
SECRET = "whsec_bench_0123456789abcdef"
PER_TX = 5


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def database(postgres: bool, tmp: Path) -> Iterator[str]:
    if postgres:
        with fresh_pg_database("autometa_bench_notify") as url:
            yield url
    else:
        yield f"sqlite:///{tmp / 'notify.db'}"


def write_events(store: Store, phase: str, count: int, rate: float) -> float:
    """Write ``count`` events at ``rate`` per second, PER_TX per transaction; returns seconds taken."""
    sub_rows = store.notifications.list_subscriptions(owner=OWNER)
    started = time.monotonic()
    for first in range(0, count, PER_TX):
        with write_session(store.sessions) as session:
            for i in range(first, min(first + PER_TX, count)):
                emit(
                    session,
                    chain_id=CHAIN,
                    kind="run.executed",
                    key=f"bench:{phase}:{i}",
                    owner=OWNER,
                    workflow_id=1 + i % 100,
                    data={"run_index": i},
                    subscriptions=sub_rows,
                )
        ahead = started + (first + PER_TX) / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    return time.monotonic() - started


def pending(store: Store) -> int:
    with store.session() as s:
        return int(s.scalar(select(func.count()).where(NotifyDelivery.status != "delivered")) or 0)


def wait_drained(store: Store, timeout: float) -> float:
    started = time.monotonic()
    while pending(store) and time.monotonic() - started < timeout:
        time.sleep(0.2)
    return time.monotonic() - started


class ReceiverProcess:
    def __init__(self, port: int, out: Path) -> None:
        self.port, self.out = port, out
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "notify_receiver.py"), str(self.port), SECRET, str(self.out)]
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as s, contextlib.suppress(OSError):
                s.connect(("127.0.0.1", self.port))
                return
            time.sleep(0.05)
        raise RuntimeError("the receiver did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
            self.proc = None

    def arrivals(self) -> tuple[dict[str, float], dict[str, int], int]:
        first: dict[str, float] = {}
        counts: dict[str, int] = {}
        bad = 0
        for line in self.out.read_text().splitlines():
            key, value = line.rsplit(" ", 1)
            if key == "BAD_SIGNATURES":
                bad += int(value)
                continue
            counts[key] = counts.get(key, 0) + 1
            first.setdefault(key, float(value))
        return first, counts, bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=500.0, help="events written per second")
    parser.add_argument("--outage-s", type=float, default=30.0)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmpdir, database(args.postgres, Path(tmpdir)) as url:
        tmp = Path(tmpdir)
        receiver = ReceiverProcess(free_port(), tmp / "arrivals.txt")
        receiver.start()
        store = Store.open(url)
        store.notifications.subscribe(
            chain_id=CHAIN,
            owner=OWNER,
            name="bench",
            channel="webhook",
            target=receiver.url,
            target_hint="bench",
            secret=SECRET,
            events=["run.executed"],
        )
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "DATA_DIR": str(tmp),
            "NOTIFY_ALLOW_PRIVATE_TARGETS": "127.0.0.0/8",
            "LOG_LEVEL": "WARNING",
        }
        worker = subprocess.Popen(
            [str(Path(sys.executable).parent / "autometa"), "notify", "deliver", "--chain-id", str(CHAIN)],
            env=env,
            cwd=tmp,
        )
        try:
            write_events(store, "warmup", 1, args.rate)  # measure from a running worker, not its start-up
            wait_drained(store, 120)
            say(f"phase 1: {args.events} events at {args.rate:g}/s, receiver healthy")
            took = write_events(store, "healthy", args.events, args.rate)
            drain1 = wait_drained(store, 300)
            time.sleep(1)  # the receiver writes its log every 0.5 s
            arrived, _, _ = receiver.arrivals()
            with store.session() as s:
                created = dict(
                    s.execute(
                        select(NotifyEvent.key, NotifyEvent.created_at).where(NotifyEvent.key.like("bench:healthy:%"))
                    ).all()
                )
            lat = sorted(arrived[k] - created[k].timestamp() for k in created if k in arrived)
            healthy_delivered = sum(1 for k in created if k in arrived)
            say(
                f"  written in {took:.1f} s, drained {drain1:.1f} s later; p50 {percentile(lat, 0.5):.3f} s, "
                f"p99 {percentile(lat, 0.99):.3f} s"
            )

            say(f"phase 2: receiver down {args.outage_s:g} s while {args.events} events are written")
            receiver.stop()
            down_at = time.monotonic()
            write_events(store, "outage", args.events, args.rate)
            time.sleep(max(0.0, args.outage_s - (time.monotonic() - down_at)))
            outage = time.monotonic() - down_at
            receiver.start()
            drain2 = wait_drained(store, 600)
            say(f"  receiver back after {outage:.1f} s; backlog drained in {drain2:.1f} s")
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
            receiver.stop()
        _, counts, bad_signatures = receiver.arrivals()
        outage_keys = [k for k in counts if k.startswith("bench:outage:")]
        with store.session() as s:
            dead = int(s.scalar(select(func.count()).where(NotifyDelivery.status == "dead")) or 0)
        store.close()
    result = {
        "backend": "postgresql" if args.postgres else "sqlite",
        "events": args.events,
        "rate_per_s": args.rate,
        "p50_s": round(percentile(lat, 0.5) or 0, 4),
        "p99_s": round(percentile(lat, 0.99) or 0, 4),
        "max_s": round(lat[-1], 4) if lat else None,
        "healthy_delivered": healthy_delivered,
        "outage_s": round(outage, 1),
        "delivered": len(outage_keys),
        "duplicates": sum(n - 1 for n in counts.values()),
        "dead": dead,
        "drain_after_outage_s": round(drain2, 1),
        "bad_signatures": bad_signatures,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
