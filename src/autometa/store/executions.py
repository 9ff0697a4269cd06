"""Run attempts: the indexer's on-chain facts merged with the executor's off-chain ones."""

from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from sqlalchemy import ColumnElement, Table, and_, bindparam, delete, exists, func, insert, or_, select, text, update
from sqlalchemy.orm import Session

from autometa.domain.kinds import OnchainPriceSource
from autometa.domain.outcomes import DECIDED_STATUSES, SKIP_REASON_NAMES, PriceSource, RunStatus
from autometa.store.base import Page, Repository, clamp_page, shared_transaction
from autometa.store.models import Execution, Workflow
from autometa.store.notifications import on_run_recorded, on_runs_recorded
from autometa.store.types import checksum, hexstr, to_uint256, to_utc, utcnow

STATUSES = tuple(RunStatus)
PRICE_SOURCES = tuple(PriceSource)

# AutometaTypes.sol SKIP_* and SOURCE_*: the events carry numbers, rows carry names.
SKIP_REASONS = SKIP_REASON_NAMES
ONCHAIN_PRICE_SOURCES: dict[int, str | None] = {int(c): PriceSource.onchain(c) for c in OnchainPriceSource}

# Columns only the chain knows; cleared when a reorg sends a reported row back to 'pending'.
# The executor's rows for runs it dropped at simulation carry this marker instead of a tx hash.
SIMULATED_SKIP_PREFIX = "0x" + "0" * 16

_ONCHAIN_COLUMNS = (
    "skip_reason",
    "block_number",
    "gas_used",
    "gas_price",
    "fee",
    "premium_bps",
    "revert_reason",
    "included_at",
    "latency_s",
    "log_index",
)


def _back_to_pending(rows: Sequence[Execution]) -> None:
    """A reported run whose transaction left the chain: its on-chain facts go, the executor's
    stay for when the transaction is mined again."""
    for row in rows:
        for name in _ONCHAIN_COLUMNS:
            setattr(row, name, None)
        row.status = RunStatus.PENDING
        _refresh_derived(row)


@dataclass(frozen=True)
class ExecutionStats:
    """Aggregate numbers for a scope. ``success_rate`` is over runs that consumed an attempt
    (success + failed); skips cost nothing and pending runs are undecided."""

    total: int
    counts: dict[str, int] = field(default_factory=dict)
    success_rate: float | None = None
    total_gas: int = 0
    total_fees: int = 0
    avg_latency_s: float | None = None
    p50_latency_s: float | None = None
    p95_latency_s: float | None = None


def skip_reason_name(reason: int | str | None) -> str | None:
    if reason is None or isinstance(reason, str):
        return reason
    if reason not in SKIP_REASONS:
        raise ValueError(f"unknown skip reason {reason}")
    return SKIP_REASONS[reason]


def price_source_name(source: int | str | None) -> str | None:
    if isinstance(source, int):
        if source not in ONCHAIN_PRICE_SOURCES:
            raise ValueError(f"unknown on-chain price source {source}")
        return ONCHAIN_PRICE_SOURCES[source]
    if source is not None and source not in PRICE_SOURCES:
        raise ValueError(f"unknown price source {source!r}; expected one of {', '.join(PRICE_SOURCES)}")
    return source


def _merge_source(current: str | None, new: str | None, *, onchain: bool) -> str | None:
    """'oracle' from the chain is authoritative; otherwise the executor's specific source
    (e.g. 'local-cache') says more than the chain's generic 'attested'."""
    if new is None:
        return current
    if current is None or new == PriceSource.ORACLE:
        return new
    if onchain:
        return current if current != PriceSource.ORACLE and new == PriceSource.ATTESTED else new
    return current if current == PriceSource.ORACLE else new


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks: PostgreSQL's percentile_cont, in Python."""
    if not sorted_values:
        return None
    pos = q * (len(sorted_values) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _opt_uint(value: int | None) -> int | None:
    return to_uint256(value) if value is not None else None


def _lock_key(*parts: object) -> int:
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _refresh_derived(row: Execution) -> None:
    if row.triggered_at is not None and row.included_at is not None:
        row.latency_s = (row.included_at - row.triggered_at).total_seconds()
    else:
        row.latency_s = None
    row.occurred_at = row.included_at or row.triggered_at or row.reported_at or row.created_at or utcnow()


def _run_key(chain_id: int, contract: str, workflow_id: int, run_index: int, tx: str) -> list[ColumnElement[bool]]:
    return [
        Execution.chain_id == chain_id,
        Execution.contract == contract,
        Execution.workflow_id == workflow_id,
        Execution.run_index == run_index,
        Execution.tx_hash == tx,
    ]


@dataclass(frozen=True)
class OnchainRun:
    """The facts of one RunExecuted / RunSkipped log of a transaction (see `record_onchain`)."""

    workflow_id: int
    run_index: int
    log_index: int
    status: str
    skip_reason: int | str | None = None
    gas_used: int | None = None
    gas_price: int | None = None
    fee: int | None = None
    premium_bps: int | None = None
    price: int | None = None
    price_source: int | str | None = None
    revert_reason: str | bytes | None = None


@dataclass(frozen=True)
class OffchainReport:
    """The executor's facts of one run it sent (see `record_offchain`)."""

    workflow_id: int
    run_index: int
    price_source: str | None = None
    triggered_at: datetime | float | None = None
    price: int | None = None
    status: str | None = None
    revert_reason: str | bytes | None = None


_TABLE = cast(Table, Execution.__table__)
_INSERTED = tuple(c.name for c in _TABLE.columns if c.name != "id")


def _new_row(
    chain_id: int, contract: str, workflow_id: int, run_index: int, tx: str, now: datetime | None = None
) -> Execution:
    return Execution(
        chain_id=chain_id,
        contract=contract,
        workflow_id=workflow_id,
        run_index=run_index,
        tx_hash=tx,
        status=RunStatus.PENDING,
        created_at=now or utcnow(),
    )


def _apply_onchain(row: Execution, contract: str, f: OnchainRun, block: int, included: datetime | None) -> None:
    """A log's facts onto its row (the executor column and derived ones are the caller's)."""
    if f.status not in DECIDED_STATUSES:
        raise ValueError(f"on-chain status must be success, failed or skipped, not {f.status!r}")
    row.contract, row.workflow_id, row.run_index = contract, f.workflow_id, f.run_index
    row.log_index, row.block_number, row.status = f.log_index, block, f.status
    row.skip_reason = skip_reason_name(f.skip_reason)
    row.included_at = included
    row.gas_used, row.premium_bps = f.gas_used, f.premium_bps
    row.gas_price, row.fee = _opt_uint(f.gas_price), _opt_uint(f.fee)
    if f.price is not None:
        row.price = to_uint256(f.price)
    row.price_source = _merge_source(row.price_source, price_source_name(f.price_source), onchain=True)
    if f.revert_reason is not None:
        row.revert_reason = hexstr(f.revert_reason)


def _apply_offchain(row: Execution, f: OffchainReport, now: datetime, executor: str | None) -> None:
    """The executor's facts onto the run's row: merged into an indexed one, or kept pending."""
    if f.status is not None and f.status not in STATUSES:
        raise ValueError(f"unknown status {f.status!r}")
    if row.log_index is None:
        if f.status is not None:
            row.status = f.status
        if f.revert_reason is not None:
            row.revert_reason = hexstr(f.revert_reason)
    row.reported_at = now
    row.price_source = _merge_source(row.price_source, price_source_name(f.price_source), onchain=False)
    if f.price is not None and row.price is None:
        row.price = to_uint256(f.price)
    if f.triggered_at is not None:
        row.triggered_at = to_utc(f.triggered_at)
    if executor is not None and row.executor is None:
        row.executor = executor
    _refresh_derived(row)


# record_onchain's look-up, built once (its values bound per call): this log's row, else the
# run's not-yet-indexed one of the same transaction.
_ONCHAIN_LOOKUP = select(Execution).where(
    Execution.chain_id == bindparam("chain_id"),
    Execution.tx_hash == bindparam("tx"),
    or_(
        Execution.log_index == bindparam("log_index"),
        and_(
            Execution.contract == bindparam("contract"),
            Execution.workflow_id == bindparam("wid"),
            Execution.run_index == bindparam("run"),
            Execution.log_index.is_(None),
        ),
    ),
)


def _held_locks(session: Session) -> set[int]:
    """The advisory locks this session's transaction took (a session is one transaction here:
    `write_session` / `shared_transaction` close it at its end)."""
    held: set[int] = session.info.setdefault("autometa.advisory_locks", set())
    return held


def _filters(
    chain_id: int | None,
    contract: str | None,
    workflow_id: int | None,
    owner: str | None,
    status: str | Sequence[str] | None,
    since: datetime | int | None,
    until: datetime | int | None,
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if chain_id is not None:
        where.append(Execution.chain_id == chain_id)
    if contract is not None:
        where.append(Execution.contract == checksum(contract))
    if workflow_id is not None:
        where.append(Execution.workflow_id == workflow_id)
    if owner is not None:
        where.append(
            exists().where(
                Workflow.chain_id == Execution.chain_id,
                Workflow.contract == Execution.contract,
                Workflow.id == Execution.workflow_id,
                Workflow.owner == checksum(owner),
            )
        )
    if status is not None:
        statuses = [status] if isinstance(status, str) else list(status)
        unknown = set(statuses) - set(STATUSES)
        if unknown:
            raise ValueError(f"unknown status(es): {', '.join(sorted(unknown))}")
        where.append(Execution.status.in_(statuses))
    if since is not None:
        where.append(Execution.occurred_at >= to_utc(since))
    if until is not None:
        where.append(Execution.occurred_at < to_utc(until))
    return where


class ExecutionRepository(Repository):
    """Execution rows. Both writers are idempotent: the indexer may replay blocks and the
    executor may report twice; each run attempt still ends up as one row."""

    @contextlib.contextmanager
    def batch(self, runs: Sequence[tuple[int, int, int, str | bytes]] = ()) -> Iterator[None]:
        """Make this thread's writes inside the block one transaction instead of one each (a
        `shared_transaction`: every repository of this store joins it).

        `runs` ((chain id, workflow id, run index, tx hash) of the rows to be written) are locked
        up front in one order, the order every batch takes its locks in, so two batches can never
        wait on each other's locks; `record_onchain` / `record_offchain` inside take the same
        locks again (a no-op). All or nothing: if one write fails, none of the block's is kept."""
        with shared_transaction(self._sessions) as session:
            self._lock_all(session, sorted({_lock_key(c, w, r, hexstr(t)) for c, w, r, t in runs}))
            yield

    def record_onchain(
        self,
        *,
        chain_id: int,
        contract: str,
        workflow_id: int,
        run_index: int,
        tx_hash: str | bytes,
        log_index: int,
        block_number: int,
        status: str,
        included_at: datetime | int | None = None,
        executor: str | None = None,
        skip_reason: int | str | None = None,
        gas_used: int | None = None,
        gas_price: int | None = None,
        fee: int | None = None,
        premium_bps: int | None = None,
        price: int | None = None,
        price_source: int | str | None = None,
        revert_reason: str | bytes | None = None,
    ) -> Execution:
        """Write the facts of a RunExecuted / RunSkipped log (``log_index`` is that log's;
        pass a RunFailed reason of the same run as ``revert_reason``). A replayed log updates
        its row; a row the executor already reported for this run and tx is completed."""
        if status not in DECIDED_STATUSES:
            raise ValueError(f"on-chain status must be success, failed or skipped, not {status!r}")
        tx, core = hexstr(tx_hash), checksum(contract)
        with self._write() as session:
            self._lock(session, chain_id, workflow_id, run_index, tx)
            # This log's row, else the run's not-yet-indexed one of this tx (each unique), in one look-up.
            found = session.scalars(
                _ONCHAIN_LOOKUP,
                {
                    "chain_id": chain_id,
                    "tx": tx,
                    "log_index": log_index,
                    "contract": core,
                    "wid": workflow_id,
                    "run": run_index,
                },
            ).all()
            row = next((r for r in found if r.log_index == log_index), None) or next(iter(found), None)
            if row is None:
                row = _new_row(chain_id, core, workflow_id, run_index, tx)
                session.add(row)
            facts = OnchainRun(
                workflow_id,
                run_index,
                log_index,
                status,
                skip_reason=skip_reason,
                gas_used=gas_used,
                gas_price=gas_price,
                fee=fee,
                premium_bps=premium_bps,
                price=price,
                price_source=price_source,
                revert_reason=revert_reason,
            )
            _apply_onchain(row, core, facts, block_number, to_utc(included_at) if included_at is not None else None)
            if executor is not None:
                row.executor = checksum(executor)
            _refresh_derived(row)
            session.flush()
            on_run_recorded(session, row, fee=fee)  # the notification outbox, in this transaction
            return row

    def record_offchain(
        self,
        *,
        chain_id: int,
        contract: str,
        workflow_id: int,
        run_index: int,
        tx_hash: str | bytes,
        price_source: str | None = None,
        price: int | None = None,
        triggered_at: datetime | int | None = None,
        executor: str | None = None,
        status: str | None = None,
        revert_reason: str | bytes | None = None,
    ) -> Execution:
        """The executor's side of a run it sent in ``tx_hash``: where the price came from and
        when the trigger fired. Merged into the indexed row if there is one, else kept as a
        'pending' row the indexer completes. ``status`` ('failed': the whole transaction
        reverted, so no log will come) only applies while nothing was indexed."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        tx, core = hexstr(tx_hash), checksum(contract)
        now = utcnow()
        with self._write() as session:
            self._lock(session, chain_id, workflow_id, run_index, tx)
            rows = session.scalars(
                select(Execution)
                .where(*_run_key(chain_id, core, workflow_id, run_index, tx))
                .order_by(
                    Execution.log_index.is_(None),  # indexed rows first
                    (Execution.status == RunStatus.SKIPPED),  # a duplicate in a batch is skipped: not it
                    Execution.log_index,
                )
            ).all()
            row = rows[0] if rows else None
            if row is None:
                row = _new_row(chain_id, core, workflow_id, run_index, tx, now)
                session.add(row)
            report = OffchainReport(workflow_id, run_index, price_source, triggered_at, price, status, revert_reason)
            _apply_offchain(row, report, now, checksum(executor) if executor is not None else None)
            session.flush()
            return row

    def record_batch(
        self,
        *,
        chain_id: int,
        contract: str,
        tx_hash: str | bytes,
        block_number: int,
        included_at: datetime | int,
        executor: str,
        onchain: Sequence[OnchainRun],
        offchain: Sequence[OffchainReport] = (),
    ) -> None:
        """One mined transaction's runs in one transaction and a bounded number of statements,
        whatever the batch's size: the executor's whole receipt (`onchain`: its RunExecuted /
        RunSkipped logs, in log order) and then its own facts (`offchain`), with the same
        outcome as `record_onchain` for each log followed by `record_offchain` for each report.

        Written row by row that was ~8 statements a run (a lock, two look-ups, the insert, the
        workflow and subscription reads of the outbox, then the same again off-chain): most of
        a busy executor's CPU. Here: the runs' locks in one statement (PostgreSQL), the
        transaction's existing rows in one SELECT, the merge in Python, then one multi-row
        INSERT (and one executemany UPDATE for rows the indexer or an earlier attempt wrote).
        Recording the same receipt twice (a retry after a crash) updates the same rows."""
        tx, core, now = hexstr(tx_hash), checksum(contract), utcnow()
        included = to_utc(included_at)
        who = checksum(executor)
        with self._write() as session:
            keys = {(f.workflow_id, f.run_index) for f in onchain} | {(f.workflow_id, f.run_index) for f in offchain}
            self._lock_all(session, sorted({_lock_key(chain_id, w, r, tx) for w, r in keys}))
            existing = session.scalars(
                select(Execution).where(Execution.chain_id == chain_id, Execution.tx_hash == tx)
            ).all()
            by_log = {int(r.log_index): r for r in existing if r.log_index is not None}
            by_run: dict[tuple[str, int, int], list[Execution]] = {}
            for r in existing:
                by_run.setdefault((str(r.contract), int(r.workflow_id), int(r.run_index)), []).append(r)
            written: list[tuple[Execution, int | None]] = []
            new: list[Execution] = []  # built here, not added to the session (see below)
            for facts in onchain:
                run = (core, facts.workflow_id, facts.run_index)
                row = by_log.get(facts.log_index)
                if row is None:
                    row = next((r for r in by_run.get(run, ()) if r.log_index is None), None)
                if row is None:
                    row = _new_row(chain_id, core, facts.workflow_id, facts.run_index, tx, now)
                    new.append(row)
                    by_run.setdefault(run, []).append(row)
                elif (was := (str(row.contract), int(row.workflow_id), int(row.run_index))) != run:
                    by_run[was].remove(row)  # a replayed log index now names this run: keep the map true
                    by_run.setdefault(run, []).append(row)
                _apply_onchain(row, core, facts, block_number, included)
                row.executor = who
                _refresh_derived(row)
                by_log[facts.log_index] = row
                written.append((row, facts.fee))
            for report in offchain:
                run = (core, report.workflow_id, report.run_index)
                candidates = sorted(
                    by_run.get(run, ()),
                    key=lambda r: (r.log_index is None, r.status == RunStatus.SKIPPED, r.log_index or 0),
                )
                row = candidates[0] if candidates else None
                if row is None:
                    row = _new_row(chain_id, core, report.workflow_id, report.run_index, tx, now)
                    new.append(row)
                    by_run[run] = [row]
                _apply_offchain(row, report, now, who)
            session.flush()  # the rows that were there: UPDATEs, one executemany per column set
            if new:  # the new ones: one INSERT of every column (ORM objects would go one by one on SQLite)
                session.execute(insert(_TABLE), [{c: getattr(r, c) for c in _INSERTED} for r in new])
            on_runs_recorded(session, written)  # the notification outbox, in this transaction

    def replace_tx_hash(self, chain_id: int, old_hash: str | bytes, new_hash: str | bytes) -> int:
        """Point not-yet-indexed rows at a fee-bumped replacement transaction, so the indexer's
        rows for the replacement find the executor's facts."""
        with self._write() as session:
            result = session.execute(
                update(Execution)
                .where(
                    Execution.chain_id == chain_id,
                    Execution.tx_hash == hexstr(old_hash),
                    Execution.log_index.is_(None),
                )
                .values(tx_hash=hexstr(new_hash))
            )
            return int(getattr(result, "rowcount", 0))

    def delete_from_block(self, chain_id: int, contract: str, block: int) -> int:
        """Reorg rollback of one deployment's indexed rows at or after ``block``. Rows the
        executor reported go back to 'pending' (its facts stay for when the tx is mined again);
        others are deleted. Returns how many rows were deleted or reset."""
        where = (
            Execution.chain_id == chain_id,
            Execution.contract == checksum(contract),
            Execution.block_number >= block,
        )
        with self._write() as session:
            reset = session.scalars(select(Execution).where(*where, Execution.reported_at.is_not(None))).all()
            _back_to_pending(reset)
            session.flush()
            result = session.execute(delete(Execution).where(*where, Execution.reported_at.is_(None)))
            return len(reset) + int(getattr(result, "rowcount", 0))

    def drop_pending(self, chain_id: int, contract: str, workflow_id: int, run_index: int, txs: set[str]) -> None:
        """Delete a run's still-pending rows of transactions `txs` (reports of orphaned ones, once
        the run executed in another)."""
        with self._write() as session:
            session.execute(
                delete(Execution).where(
                    Execution.chain_id == chain_id,
                    Execution.contract == checksum(contract),
                    Execution.workflow_id == workflow_id,
                    Execution.run_index == run_index,
                    Execution.status == RunStatus.PENDING,
                    Execution.tx_hash.in_(sorted(txs)),
                )
            )

    def transactions_in(self, chain_id: int, contract: str, first: int, last: int) -> set[str]:
        """The real transactions (not simulated-skip markers) one deployment's rows place in
        blocks ``first..last``."""
        with self._read() as session:
            return {
                str(tx)
                for tx in session.scalars(
                    select(Execution.tx_hash)
                    .distinct()
                    .where(
                        Execution.chain_id == chain_id,
                        Execution.contract == checksum(contract),
                        Execution.block_number >= first,
                        Execution.block_number <= last,
                        Execution.log_index.is_not(None),
                        Execution.tx_hash.not_like(SIMULATED_SKIP_PREFIX + "%"),
                    )
                ).all()
            }

    def forget_transactions(self, chain_id: int, contract: str, txs: set[str]) -> list[tuple[int, int, str]]:
        """Rows of transactions that are not on the chain (a reorg dropped them, maybe before
        the indexer got to their blocks or while the executor was still recording its receipt,
        so no rollback saw these rows). As in a rollback, reported runs go back to 'pending'
        (returned as (workflow id, run index, tx), for the indexer to drop once the run executes
        elsewhere) and the rest (skips that never happened) are deleted."""
        if not txs:
            return []
        where = (
            Execution.chain_id == chain_id,
            Execution.contract == checksum(contract),
            Execution.tx_hash.in_(sorted(hexstr(t) for t in txs)),
            Execution.log_index.is_not(None),
        )
        with self._write() as session:
            reset = session.scalars(
                select(Execution).where(
                    *where, Execution.reported_at.is_not(None), Execution.status != RunStatus.SKIPPED
                )
            ).all()
            _back_to_pending(reset)
            session.flush()
            session.execute(delete(Execution).where(*where, Execution.status != RunStatus.PENDING))
            return [(int(r.workflow_id), int(r.run_index), str(r.tx_hash)) for r in reset]

    # ------------------------------------------------------------------ reads

    def get(self, execution_id: int) -> Execution | None:
        with self._read() as session:
            return session.get(Execution, execution_id)

    def for_run(self, chain_id: int, contract: str, workflow_id: int, run_index: int) -> list[Execution]:
        """Every attempt at one run (skips, failures, the success), oldest first."""
        with self._read() as session:
            return list(
                session.scalars(
                    select(Execution)
                    .where(
                        Execution.chain_id == chain_id,
                        Execution.contract == checksum(contract),
                        Execution.workflow_id == workflow_id,
                        Execution.run_index == run_index,
                    )
                    .order_by(Execution.occurred_at, Execution.id)
                ).all()
            )

    def list(
        self,
        *,
        chain_id: int | None = None,
        contract: str | None = None,
        workflow_id: int | None = None,
        owner: str | None = None,
        status: str | Sequence[str] | None = None,
        since: datetime | int | None = None,
        until: datetime | int | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> Page[Execution]:
        """Executions newest first; ``owner`` is the workflow's owner; ``since`` is inclusive
        and ``until`` exclusive, on ``occurred_at``."""
        offset, limit = clamp_page(offset, limit)
        where = _filters(chain_id, contract, workflow_id, owner, status, since, until)
        with self._read() as session:
            total = session.scalar(select(func.count()).select_from(Execution).where(*where)) or 0
            items = session.scalars(
                select(Execution)
                .where(*where)
                .order_by(Execution.occurred_at.desc(), Execution.id.desc())
                .offset(offset)
                .limit(limit)
            ).all()
        return Page(list(items), total, offset, limit)

    def stats(
        self,
        *,
        chain_id: int | None = None,
        contract: str | None = None,
        workflow_id: int | None = None,
        owner: str | None = None,
        since: datetime | int | None = None,
        until: datetime | int | None = None,
    ) -> ExecutionStats:
        """Numbers for everything (no scope), one owner, or one workflow. Sums of wei and the
        latency percentiles run in the database on PostgreSQL and in Python on SQLite, which
        has no exact 256-bit sum and no percentile function; both give the same numbers."""
        where = _filters(chain_id, contract, workflow_id, owner, None, since, until)
        with self._read() as session:
            counts: dict[str, int] = {str(s): 0 for s in STATUSES}
            for status, n in session.execute(
                select(Execution.status, func.count()).where(*where).group_by(Execution.status)
            ).all():
                counts[status] = int(n)
            total_gas = session.scalar(select(func.coalesce(func.sum(Execution.gas_used), 0)).where(*where))
            has_latency = (*where, Execution.latency_s.is_not(None))
            if session.get_bind().dialect.name == "postgresql":
                total_fees = session.scalar(select(func.sum(Execution.fee)).where(*where)) or 0
                avg, p50, p95 = session.execute(
                    select(
                        func.avg(Execution.latency_s),
                        func.percentile_cont(0.5).within_group(Execution.latency_s),
                        func.percentile_cont(0.95).within_group(Execution.latency_s),
                    ).where(*has_latency)
                ).one()
                avg = float(avg) if avg is not None else None
                p50 = float(p50) if p50 is not None else None
                p95 = float(p95) if p95 is not None else None
            else:
                fees = session.scalars(select(Execution.fee).where(*where, Execution.fee.is_not(None))).all()
                total_fees = sum(f for f in fees if f is not None)
                latencies = sorted(
                    x for x in session.scalars(select(Execution.latency_s).where(*has_latency)).all() if x is not None
                )
                avg = sum(latencies) / len(latencies) if latencies else None
                p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
        decided = counts[RunStatus.SUCCESS] + counts[RunStatus.FAILED]
        return ExecutionStats(
            total=sum(counts.values()),
            counts=counts,
            success_rate=counts[RunStatus.SUCCESS] / decided if decided else None,
            total_gas=int(total_gas or 0),
            total_fees=int(total_fees),
            avg_latency_s=avg,
            p50_latency_s=p50,
            p95_latency_s=p95,
        )

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _lock(session: Session, *key: object) -> None:
        """Serialise the two writers of one run on PostgreSQL (SQLite's write transactions
        already hold the database lock), so neither inserts a row the other just looked for."""
        ExecutionRepository._advisory_lock(session, _lock_key(*key))

    @staticmethod
    def _lock_all(session: Session, keys: Sequence[int]) -> None:
        """`_advisory_lock` each of `keys` (sorted: the order every batch takes them in) in one
        round trip; unnest yields an array's elements in order."""
        held = _held_locks(session)
        keys = [k for k in keys if k not in held]
        if keys and session.get_bind().dialect.name == "postgresql":
            session.execute(
                text("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(CAST(:keys AS BIGINT[])) AS k"),
                {"keys": keys},
            )
        held.update(keys)

    @staticmethod
    def _advisory_lock(session: Session, key: int) -> None:
        held = _held_locks(session)
        if key in held:  # taken earlier in this transaction (a batch's up-front locks): held till its end
            return
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        held.add(key)
