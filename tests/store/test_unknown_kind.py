"""A stored workflow of a trigger kind this version does not know (a newer contract's) is a clear
error when decoded, and the scheduler's loaders leave it out with a log line."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from autometa.chain.indexer import state_from_row, states_from_rows
from autometa.domain.triggers import UnknownTriggerKind
from autometa.store import Store

from .helpers import CHAIN, CONTRACT, workflow


def test_an_unknown_kind_is_an_error_and_left_out_of_the_loaded_states(store: Store) -> None:
    store.workflows.upsert(workflow(1, max_runs=5))
    store.workflows.upsert(workflow(2, trigger_kind=7, max_runs=5))
    rows = store.workflows.list_active(CHAIN, CONTRACT)
    with pytest.raises(UnknownTriggerKind, match="unknown trigger kind 7"):
        state_from_row(next(r for r in rows if r.id == 2))
    with capture_logs() as logs:
        states = states_from_rows(rows)
    assert [s.id for s in states] == [1]
    assert [(e["event"], e["workflow_id"]) for e in logs] == [("indexer.unknown_trigger_kind", 2)]
