"""The scheduler's side of the registry: every creatable kind has an evaluator, and a workflow of
a kind without one is refused by the index and logged and skipped by the scheduler — never
indexed as a price (or any other) trigger."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from autometa.domain.kinds import Status, TriggerType
from autometa.domain.state import WorkflowState
from autometa.domain.triggers import UnknownTriggerKind, all_kinds, creatable_kinds
from autometa.domain.workflow import WorkflowSpec
from autometa.worker.scheduler import Scheduler
from autometa.worker.trigger_index import TriggerEntry, TriggerIndex, entry_from_state
from autometa.worker.triggers import evaluators

OWNER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
BODY = {
    "trigger_type": 1,
    "trigger_data": {"interval": 60},
    "action_type": 0,
    "action_data": {"to": OWNER, "amount_wei": "1"},
}


def _state(wid: int, kind: int | None = None) -> WorkflowState:
    spec = WorkflowSpec.model_validate(BODY).resolved()
    if kind is not None:  # what a newer contract's kind would look like to this version
        spec = spec.model_construct(**{**dict(spec), "trigger_type": kind})
    return WorkflowState(wid, OWNER, Status.ACTIVE, spec)


def test_every_creatable_kind_has_an_evaluator() -> None:
    codes = {ev.code for ev in evaluators()}
    assert {k.code for k in creatable_kinds()} <= codes
    assert codes <= {k.code for k in all_kinds()}  # an evaluator only for a kind the domain defines


def test_the_index_refuses_a_kind_without_an_evaluator() -> None:
    index = TriggerIndex()
    with pytest.raises(UnknownTriggerKind):
        index.upsert_entry(TriggerEntry(1, 0, 9, 0, token="ethereum", threshold=10))
    assert len(index) == 0 and 1 not in index and index.armed_tokens() == []
    with pytest.raises(UnknownTriggerKind):
        entry_from_state(_state(1, kind=9))


def test_the_scheduler_logs_and_skips_an_unknown_kind() -> None:
    with capture_logs() as logs:
        entries = [Scheduler._entry(s) for s in (_state(1), _state(2, kind=9))]
    assert entries[0] is not None and entries[0].kind == TriggerType.INTERVAL and entries[1] is None
    assert [(e["event"], e["workflow_id"]) for e in logs] == [("scheduler.unknown_trigger_kind", 2)]
    index = TriggerIndex()
    index.upsert_many([e for e in entries if e is not None])
    assert [r.workflow_id for r in index.due_by_time(10)] == [1]
