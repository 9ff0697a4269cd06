"""The outbox: facts recorded by the store's writers produce events in the same transaction,
once per fact (replays add nothing), only for subscribers who want them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from autometa.store import Store
from autometa.store.notify_models import NotifyDelivery, NotifyEvent
from tests.conftest import fresh_pg_database
from tests.notify.conftest import SECRET
from tests.notify.helpers import CHAIN, CONTRACT, OWNER, add_workflow, record_run

OTHER = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        with Store.open(f"sqlite:///{tmp_path / 'n.db'}") as s:
            yield s
    else:
        with fresh_pg_database("autometa_notify") as url, Store.open(url) as s:
            yield s


def _subscribe(store: Store, events: list[str], owner: str | None = OWNER, **kw: object) -> int:
    sub = store.notifications.subscribe(
        chain_id=CHAIN,
        owner=owner,
        name=f"s{len(events)}{owner}",
        channel="webhook",
        target="https://example.com/hook",
        target_hint="https://example.com/…",
        secret=SECRET,
        events=events,
        **kw,
    )  # type: ignore[arg-type]
    return int(sub.id)


def _events(store: Store) -> list[NotifyEvent]:
    with store.session() as s:
        return list(s.scalars(select(NotifyEvent).order_by(NotifyEvent.id)).all())


def test_nothing_is_written_without_a_subscriber(store: Store) -> None:
    add_workflow(store)
    record_run(store, 1, 0)
    assert _events(store) == []


def test_run_events_once_per_fact_even_when_replayed(store: Store) -> None:
    add_workflow(store)
    sub = _subscribe(store, ["run.executed", "run.failed", "run.skipped"])
    record_run(store, 1, 0, fee=10**14, gas_used=50_000)
    record_run(store, 1, 0, fee=10**14, gas_used=50_000)  # the indexer replays the range
    record_run(store, 1, 1, status="failed", fee=10**14, revert_reason=b"\x08\xc3\x79\xa0")
    record_run(store, 1, 2, status="skipped", skip_reason="insufficient_escrow")
    events = _events(store)
    assert [e.kind for e in events] == ["run.executed", "run.failed", "run.skipped"]
    assert events[1].payload["data"]["revert_reason"] == "0x08c379a0"
    assert events[2].payload["data"]["skip_reason"] == "insufficient_escrow"
    assert all(e.owner == OWNER and e.chain_id == CHAIN for e in events)
    with store.session() as s:
        assert s.scalar(select(func.count()).where(NotifyDelivery.subscription_id == sub)) == 3


def test_filters_by_owner_kind_and_workflow(store: Store) -> None:
    add_workflow(store, 1)
    add_workflow(store, 2)
    add_workflow(store, 3, owner=OTHER)
    _subscribe(store, ["run.failed"], workflow_ids=[2])
    record_run(store, 1, 0, status="failed")
    record_run(store, 2, 0, status="success")
    record_run(store, 3, 0, status="failed")  # another owner's
    assert _events(store) == []
    record_run(store, 2, 1, status="failed")
    assert [(e.kind, e.workflow_id) for e in _events(store)] == [("run.failed", 2)]


def test_operator_subscription_hears_every_owner(store: Store) -> None:
    add_workflow(store, 3, owner=OTHER)
    store.notifications.sync_operator(
        CHAIN,
        [
            {
                "name": "ops",
                "channel": "webhook",
                "target": "https://o.example/",
                "target_hint": "https://o.example/…",
                "secret": SECRET,
                "events": ["run.failed", "executor.low_gas"],
            }
        ],
    )
    record_run(store, 3, 0, status="failed")
    assert store.notifications.emit_operator(CHAIN, "executor.low_gas", "low:1", {"balance_wei": "0"}) is not None
    assert store.notifications.emit_operator(CHAIN, "executor.low_gas", "low:1", {"balance_wei": "0"}) is None
    assert [e.kind for e in _events(store)] == ["run.failed", "executor.low_gas"]
    store.notifications.sync_operator(CHAIN, [])  # removed from the configuration
    assert store.notifications.list_subscriptions(operator=True) == []


def test_status_changes_auto_pause_and_completion(store: Store) -> None:
    add_workflow(store)
    _subscribe(store, ["workflow.auto_paused", "workflow.completed", "workflow.status_changed"])
    assert store.workflows.apply_status(CHAIN, CONTRACT, 1, 2, block=20, log_index=1, reason=1)  # BY_FAILURES
    assert not store.workflows.apply_status(CHAIN, CONTRACT, 1, 2, block=20, log_index=1, reason=1)  # replay
    assert store.workflows.apply_status(CHAIN, CONTRACT, 1, 1, block=21, log_index=0, reason=0)  # owner resumed
    assert store.workflows.apply_status(CHAIN, CONTRACT, 1, 4, block=22, log_index=0, reason=3)  # completed
    kinds = [(e.kind, e.payload["data"]["status"]) for e in _events(store)]
    assert kinds == [
        ("workflow.auto_paused", "paused"),
        ("workflow.status_changed", "active"),
        ("workflow.completed", "completed"),
    ]


def test_runway_low_fires_once_when_crossing(store: Store) -> None:
    # 1 run costs max fee 1e16 + 1e15 sent; the owner deposited for 5 runs.
    add_workflow(store)
    _subscribe(store, ["escrow.runway_low"], runway_runs=3, runway_days=0)
    per_run = 10**16 + 10**15
    store.escrow.record(
        chain_id=CHAIN,
        contract=CONTRACT,
        block_number=2,
        tx_hash="0x" + "11" * 32,
        log_index=0,
        kind="deposit",
        account=OWNER,
        counterparty=OWNER,
        amount=5 * per_run,
    )
    for run in range(4):
        record_run(store, 1, run, fee=10**16, block=10 + run)
        tx = "0x" + f"{1:032x}{run:032x}"
        store.escrow.record(
            chain_id=CHAIN,
            contract=CONTRACT,
            block_number=10 + run,
            tx_hash=tx,
            log_index=0,
            kind="fee",
            account=OWNER,
            counterparty=OTHER,
            amount=10**16,
            workflow_id=1,
        )
        store.escrow.record(
            chain_id=CHAIN,
            contract=CONTRACT,
            block_number=10 + run,
            tx_hash=tx,
            log_index=0,
            kind="payout",
            account=OWNER,
            counterparty=OTHER,
            amount=10**15,
            workflow_id=1,
        )
    events = _events(store)
    assert [e.kind for e in events] == ["escrow.runway_low"]  # 5 -> 4 -> 3 -> 2 (here) -> 1: once
    assert events[0].payload["data"]["runway_runs"] == 2
