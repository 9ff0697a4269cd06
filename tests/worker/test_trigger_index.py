"""The trigger index returns exactly what a naive scan of every workflow returns."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from autometa.domain.kinds import Comparator, Status, TriggerType
from autometa.domain.state import WorkflowState
from autometa.domain.workflow import WorkflowSpec
from autometa.worker.trigger_index import FIRED, DueRun, TriggerEntry, TriggerIndex, entry_from_state

TOKENS = ["ethereum", "bitcoin", "polkadot"]
RECIPIENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


@dataclass
class NaiveIndex:
    """The specification: every known workflow in a dict, scanned on every query."""

    entries: dict[int, TriggerEntry] = field(default_factory=dict)
    fired: set[int] = field(default_factory=set)

    def upsert(self, e: TriggerEntry) -> None:
        self.entries[e.workflow_id] = e
        self.fired.discard(e.workflow_id)

    def remove(self, wid: int) -> None:
        self.entries.pop(wid, None)
        self.fired.discard(wid)

    def rearm(self, wid: int) -> None:
        self.fired.discard(wid)

    def _open(self, e: TriggerEntry, now: int) -> bool:
        return e.workflow_id not in self.fired and e.due <= now and (e.end == 0 or now <= e.end)

    def due_by_time(self, now: int) -> set[tuple[int, int]]:
        out = {
            (e.workflow_id, e.run_index)
            for e in self.entries.values()
            if e.kind is not TriggerType.PRICE and self._open(e, now)
        }
        self.fired |= {w for w, _ in out}
        return out

    def crossed(self, token: str, price: int, now: int) -> set[tuple[int, int]]:
        out = set()
        for e in self.entries.values():
            if e.kind is not TriggerType.PRICE or e.token != token or not self._open(e, now):
                continue
            holds = price < e.threshold if e.comparator is Comparator.BELOW else price > e.threshold
            if holds:
                out.add((e.workflow_id, e.run_index))
        self.fired |= {w for w, _ in out}
        return out


entries = st.builds(
    lambda wid, run, kind, due, span, token, comparator, threshold: TriggerEntry(
        wid,
        run,
        kind,
        due,
        0 if span is None else due + span,
        token if kind is TriggerType.PRICE else None,
        comparator,
        threshold,
    ),
    wid=st.integers(1, 40),
    run=st.integers(0, 3),
    kind=st.sampled_from([TriggerType.TIME, TriggerType.INTERVAL, TriggerType.PRICE]),  # time and price kinds
    due=st.integers(0, 60),
    span=st.none() | st.integers(0, 30),
    token=st.sampled_from(TOKENS),
    comparator=st.sampled_from(list(Comparator)),
    threshold=st.integers(1, 20),
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("upsert"), entries),
        st.tuples(st.just("remove"), st.integers(1, 40)),
        st.tuples(st.just("rearm"), st.integers(1, 40)),
        st.tuples(st.just("time"), st.integers(0, 5)),
        st.tuples(st.just("price"), st.tuples(st.sampled_from(TOKENS), st.integers(0, 21), st.integers(0, 5))),
    ),
    max_size=80,
)


@settings(max_examples=400, deadline=None)
@given(operations, st.booleans())
def test_index_matches_naive_scan(ops: list[tuple[str, object]], bulk: bool) -> None:
    index, naive, now = TriggerIndex(), NaiveIndex(), 0
    for op, arg in ops:
        if op == "upsert":
            assert isinstance(arg, TriggerEntry)
            (index.upsert_many([arg]) if bulk else index.upsert_entry(arg))
            naive.upsert(arg)
        elif op == "remove":
            assert isinstance(arg, int)
            index.remove(arg)
            naive.remove(arg)
        elif op == "rearm":
            assert isinstance(arg, int)
            index.rearm(arg)
            naive.rearm(arg)
        elif op == "time":
            assert isinstance(arg, int)
            now += arg
            got = index.due_by_time(now)
            assert len(got) == len({r.workflow_id for r in got})
            assert {(r.workflow_id, r.run_index) for r in got} == naive.due_by_time(now)
        else:
            token, price, step = arg  # type: ignore[misc]
            now += step
            got = index.crossed(token, price, now)
            assert len(got) == len({r.workflow_id for r in got})
            assert all(r.token == token and r.price == price for r in got)
            assert {(r.workflow_id, r.run_index) for r in got} == naive.crossed(token, price, now)
    # whatever is left due by time comes out exactly once
    assert {(r.workflow_id, r.run_index) for r in index.due_by_time(now + 1000)} == naive.due_by_time(now + 1000)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 10**12), st.sampled_from(list(Comparator))), min_size=1, max_size=300),
    st.integers(1, 10**12),
)
def test_bulk_load_then_tick_matches_scan(thresholds: list[tuple[int, Comparator]], price: int) -> None:
    index = TriggerIndex()
    batch = [TriggerEntry(i + 1, 0, TriggerType.PRICE, 0, 0, "ethereum", c, t) for i, (t, c) in enumerate(thresholds)]
    index.upsert_many(batch)
    want = {
        e.workflow_id
        for e in batch
        if (price < e.threshold if e.comparator is Comparator.BELOW else price > e.threshold)
    }
    assert {r.workflow_id for r in index.crossed("ethereum", price, 1)} == want
    assert index.crossed("ethereum", price, 2) == []  # fired once, not every block


def _state(
    trigger_type: int,
    data: dict[str, object],
    run_count: int = 0,
    last_run: int = 0,
    status: Status = Status.ACTIVE,
    max_runs: int | None = None,
) -> WorkflowState:
    spec = WorkflowSpec.model_validate(
        {
            "trigger_type": trigger_type,
            "trigger_data": data,
            "action_type": 0,
            "action_data": {"to": RECIPIENT, "amount_wei": 1},
            "max_runs": max_runs,
        }
    ).resolved()
    return WorkflowState(7, RECIPIENT, status, spec, run_count, last_run)


def test_states_follow_the_contracts_due_rule() -> None:
    index = TriggerIndex()
    index.upsert(_state(1, {"interval": 60, "start": 100}, run_count=2, last_run=500))
    assert index.due_by_time(559) == []
    (run,) = index.due_by_time(560)
    assert run == DueRun(7, 2, TriggerType.INTERVAL, 560, gas_limit=30_000)  # the native transfer default
    assert index.where(7) == FIRED and index.due_by_time(10_000) == []
    # the indexer reports the run: the next one is due an interval later
    index.upsert(_state(1, {"interval": 60, "start": 100}, run_count=3, last_run=561))
    assert [r.run_index for r in index.due_by_time(621)] == [3]


def test_price_cooldown_gates_and_updates_replace() -> None:
    index = TriggerIndex()
    data = {"token": "ethereum", "comparator": 0, "price_usd": "3200", "cooldown": 100}
    index.upsert(_state(2, data, run_count=1, last_run=1000, max_runs=5))
    assert index.crossed("ethereum", 319815000000, 1050) == []  # in cooldown
    (run,) = index.crossed("ethereum", 319815000000, 1100)
    assert (run.run_index, run.threshold) == (1, 320000000000)
    # paused: forgotten; resumed: back
    index.upsert(_state(2, data, run_count=1, last_run=1000, status=Status.PAUSED, max_runs=5))
    assert 7 not in index
    index.upsert(_state(2, data, run_count=1, last_run=1000, max_runs=5))
    assert index.crossed("ethereum", 330000000000, 1200) == []  # condition false
    assert [r.run_index for r in index.crossed("ethereum", 310000000000, 1201)] == [1]


def test_completed_and_expired_are_never_due() -> None:
    index = TriggerIndex()
    index.upsert(_state(0, {"at": 50}, run_count=1, last_run=60))
    assert 7 not in index
    index.upsert(_state(1, {"interval": 10, "start": 0, "end": 100}, run_count=3, last_run=95))
    assert entry_from_state(_state(1, {"interval": 10, "start": 0, "end": 100}, run_count=3, last_run=95)) is None
    index.upsert(_state(1, {"interval": 10, "start": 0, "end": 100}, run_count=3, last_run=85))
    assert index.due_by_time(101) == []  # due at 95 but seen only after its end
    assert 7 not in index
