"""A workflow as it stands on-chain: the spec plus its run state. What the indexer produces
and the scheduler consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

from autometa.domain.kinds import Status
from autometa.domain.workflow import WorkflowSpec


@dataclass(frozen=True)
class WorkflowState:
    id: int
    owner: str
    status: Status
    spec: WorkflowSpec  # resolved: limits explicit
    run_count: int = 0
    last_run: int = 0  # unix seconds of the last successful run (0 = never)
    failures: int = 0
    # What the contract keeps aside for a run of a STATE / CRON / LOG workflow (`_triggerWord`:
    # CRON's bitmaps and creation time, LOG's next acceptable log); None: not read. The
    # scheduler reads it where a kind needs it (worker/triggers/words.py).
    # Auxiliary, left out of equality: the same workflow read from the chain or the store is equal.
    trigger_word: int | None = field(default=None, compare=False)
    created_block: int = field(default=0, compare=False)  # where the source knows it (the store), else 0

    @property
    def next_run_index(self) -> int:
        return self.run_count

    @property
    def is_live(self) -> bool:
        """Active and with runs left: the scheduler should watch it."""
        return self.status is Status.ACTIVE and self.run_count < self.spec.resolved_max_runs

    def next_due_time(self) -> int | None:
        """Earliest unix time the next run may happen (the contract's rule), or None if it never
        will by time alone. Condition triggers (price, state) also need their condition."""
        if not self.is_live:
            return None
        due = self.spec.trigger_kind.next_due(self.spec.trigger_data, self.run_count, self.last_run)
        end = self.spec.end_time()
        if end is not None and due > end:
            return None
        return due

    @classmethod
    def from_view(cls, view: tuple) -> WorkflowState:  # type: ignore[type-arg]
        """From the contract's `getWorkflow` tuple."""
        wid, owner, status, run_count, last_run, failures, spec = view
        return cls(
            int(wid),
            str(owner),
            Status(status),
            WorkflowSpec.from_abi(spec),
            int(run_count),
            int(last_run),
            int(failures),
        )

    @property
    def trigger_type(self) -> int:
        return self.spec.trigger_type
