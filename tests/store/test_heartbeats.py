from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from eth_utils import to_checksum_address

from autometa.store import Store

from .helpers import CHAIN, EXECUTOR

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def test_beat_inserts_then_refreshes(store: Store) -> None:
    first = store.heartbeats.beat(
        CHAIN, "exec-1", "executor", EXECUTOR, "0.1.0", host="h", pid=42, extra={"batches": 1, "ok": True}, now=T0
    )
    assert first.started_at == T0 and first.last_seen == T0
    assert first.address == to_checksum_address(EXECUTOR)
    later = store.heartbeats.beat(
        CHAIN, "exec-1", "executor", EXECUTOR, "0.1.0", pid=42, extra={"batches": 2}, now=T0 + timedelta(seconds=30)
    )
    assert later.started_at == T0  # kept
    assert later.last_seen == T0 + timedelta(seconds=30)
    assert later.extra == {"batches": 2}
    restarted = store.heartbeats.beat(
        CHAIN, "exec-1", "executor", pid=43, started_at=T0 + timedelta(minutes=5), now=T0 + timedelta(minutes=5)
    )
    assert restarted.started_at == T0 + timedelta(minutes=5) and restarted.pid == 43
    assert len(store.heartbeats.all()) == 1


def test_active_window_role_and_prune(store: Store) -> None:
    store.heartbeats.beat(CHAIN, "api-1", "api", now=T0 - timedelta(seconds=10))
    store.heartbeats.beat(CHAIN, "sched-1", "scheduler", now=T0 - timedelta(seconds=59))
    store.heartbeats.beat(CHAIN, "exec-1", "executor", now=T0 - timedelta(seconds=61))
    store.heartbeats.beat(CHAIN, "exec-2", "executor", now=T0 - timedelta(hours=2))

    assert [h.worker_id for h in store.heartbeats.active(60, now=T0)] == ["api-1", "sched-1"]
    assert [h.worker_id for h in store.heartbeats.active(3600, role="executor", now=T0)] == ["exec-1"]
    assert store.heartbeats.active(5, now=T0) == []
    assert store.heartbeats.prune(3600, now=T0) == 1
    assert store.heartbeats.remove(CHAIN, "api-1") and not store.heartbeats.remove(CHAIN, "api-1")
    assert {h.worker_id for h in store.heartbeats.all()} == {"sched-1", "exec-1"}


def test_unknown_role_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="role"):
        store.heartbeats.beat(CHAIN, "x", "miner")
