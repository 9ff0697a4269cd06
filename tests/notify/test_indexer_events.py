"""End to end on a real dev chain: the indexer's recording path writes the outbox — a run
executed, a run skipped with its reason, an owner's pause — each once, also when the indexer
replays the range."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from autometa.chain.contracts import autometa
from autometa.chain.deploy import transact
from autometa.chain.indexer import EventIndexer
from autometa.store import Store
from autometa.store.notify_models import NotifyDelivery, NotifyEvent
from tests.chain.test_indexer import due_workflow, execute


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as s:
        yield s


@pytest.fixture
def indexer(dev_chain, store: Store) -> EventIndexer:  # type: ignore[no-untyped-def]
    dep = dev_chain.deployment
    return EventIndexer(dev_chain.w3, store, dep.address, dep.block, batch_blocks=5)


def test_indexed_facts_write_the_outbox_once(dev_chain, indexer: EventIndexer) -> None:  # type: ignore[no-untyped-def]
    store = indexer.store
    w3, core, owner, wid = due_workflow(dev_chain, indexer)
    sub = store.notifications.subscribe(
        chain_id=indexer.chain_id,
        owner=owner.address,
        name="all",
        channel="webhook",
        target="https://example.com/h",
        target_hint="h",
        secret="s" * 20,
        events=["*"],
    )
    execute(dev_chain, wid, 0)
    execute(dev_chain, wid, 0)  # the same run again: skipped on-chain (run_done)
    transact(w3, owner, autometa(w3, dev_chain.deployment.address).functions.pauseWorkflow(wid))
    indexer.sync()
    indexer.rollback_to(indexer.indexed_block - 3)  # replay the last blocks: nothing new may appear
    indexer.sync()
    with store.session() as s:
        events = s.scalars(select(NotifyEvent).order_by(NotifyEvent.id)).all()
        deliveries = s.scalars(select(NotifyDelivery).where(NotifyDelivery.subscription_id == sub.id)).all()
    assert [e.kind for e in events] == ["run.executed", "run.skipped", "workflow.status_changed"]
    assert events[1].payload["data"]["skip_reason"] == "run_done"
    assert events[2].payload["data"] == {**events[2].payload["data"], "status": "paused", "reason": "by_owner"}
    executed = store.executions.list(workflow_id=wid, status="success").items[0]
    assert events[0].payload["data"]["tx_hash"] == executed.tx_hash and events[0].owner == owner.address
    assert len(deliveries) == 3 and {d.status for d in deliveries} == {"pending"}
