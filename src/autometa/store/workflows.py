"""Workflows as indexed from the chain's events."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, delete, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from autometa.store.base import Page, Repository, clamp_page, upsert
from autometa.store.models import Workflow
from autometa.store.notifications import on_status_changed
from autometa.store.types import Uint256, checksum, hexstr, to_uint256

STATUS_ACTIVE = 1  # AutometaTypes.sol STATUS_ACTIVE

_COLUMNS = frozenset(c.name for c in Workflow.__table__.columns)
_UINT256 = frozenset(c.name for c in Workflow.__table__.columns if isinstance(c.type, Uint256))
_REQUIRED = frozenset(
    {
        "id",
        "chain_id",
        "contract",
        "owner",
        "status",
        "trigger_kind",
        "action_kind",
        "target",
        "gas_limit",
        "max_fee_per_run",
        "created_block",
    }
)


def workflow_values(row: Mapping[str, Any] | Any) -> dict[str, Any]:
    """Column values from a mapping, a dataclass or a pydantic model, normalised (checksummed
    addresses, 0x-hex, ``asset`` decoded from bytes32). Unknown keys are an error, so a renamed
    field fails loudly instead of being dropped."""
    if isinstance(row, Mapping):
        values = dict(row)
    elif dataclasses.is_dataclass(row) and not isinstance(row, type):
        values = dataclasses.asdict(row)
    elif hasattr(row, "model_dump"):
        values = dict(row.model_dump())
    else:
        raise TypeError(f"cannot read a workflow from {type(row).__name__}")
    unknown = set(values) - _COLUMNS
    if unknown:
        raise ValueError(f"unknown workflow field(s): {', '.join(sorted(unknown))}")
    missing = _REQUIRED - {k for k, v in values.items() if v is not None}
    if missing:
        raise ValueError(f"missing workflow field(s): {', '.join(sorted(missing))}")
    for name in ("owner", "target", "contract"):
        values[name] = checksum(values[name])
    if values.get("token") is not None:
        values["token"] = checksum(values["token"])
    for name in ("data", "trigger_data", "created_tx"):
        if values.get(name) is not None:
            values[name] = hexstr(values[name])
    asset = values.get("asset")
    if isinstance(asset, bytes | bytearray):
        values["asset"] = bytes(asset).rstrip(b"\0").decode()
    values.setdefault("updated_block", values["created_block"])
    values.setdefault("updated_log_index", -1)
    defaults: dict[str, Any] = {"comparator": 0, "start_time": 0, "end_time": 0, "interval": 0, "price_usd": 0}
    defaults |= {"asset": "", "amount": 0, "data": "0x", "trigger_data": "0x", "max_runs": 0, "run_count": 0}
    defaults |= {"last_run": 0, "failures": 0}
    for name, default in defaults.items():
        if values.get(name) is None:
            values[name] = default
    for name in _UINT256:
        values[name] = to_uint256(values[name])
    return values


def _key(chain_id: int, contract: str, workflow_id: int | None = None) -> list[Any]:
    where: list[Any] = [Workflow.chain_id == chain_id, Workflow.contract == checksum(contract)]
    if workflow_id is not None:
        where.append(Workflow.id == workflow_id)
    return where


# The columns the run and status events change (`write_loaded` writes them all).
_FOLDED = ("failures", "last_run", "run_count", "status", "updated_block", "updated_log_index")

_PLUS_ONE = object()  # `apply_run`'s failures: the stored value + 1


@functools.lru_cache(maxsize=16)
def _event_update(columns: tuple[str, ...], plus_one: tuple[str, ...]) -> Any:
    """`UPDATE workflows SET columns … WHERE key AND (block, log index) is after the last
    applied event's` (replays are no-ops), built once per shape with its values bound at
    execution: building it per event cost more of the indexer's CPU than running it."""
    table = cast(Table, Workflow.__table__)
    t = table.c
    values: dict[str, Any] = {c: bindparam(f"v_{c}") for c in columns}
    values |= {c: t[c] + 1 for c in plus_one}
    block: Any = bindparam("k_block")
    log_index: Any = bindparam("k_log_index")
    return (
        update(table)
        .where(
            t.chain_id == bindparam("k_chain_id"),
            t.contract == bindparam("k_contract"),
            t.id == bindparam("k_id"),
            or_(t.updated_block < block, and_(t.updated_block == block, t.updated_log_index < log_index)),
        )
        .values(values)
    )


def _status_values(status: int, block: int, log_index: int) -> dict[str, Any]:
    """WorkflowStatusChanged's columns."""
    return {"status": status, "updated_block": block, "updated_log_index": log_index}


def _run_values(
    run_index: int, success: bool, status: int, block: int, timestamp: int, log_index: int, failures: Any
) -> dict[str, Any]:
    """RunExecuted's columns the way the contract applies it: a success consumes the run and
    clears the failure streak; a failure only extends it (`failures`: the streak's new value,
    or `_PLUS_ONE` for the stored value + 1)."""
    values = _status_values(status, block, log_index)
    if success:
        return values | {"run_count": run_index + 1, "last_run": timestamp, "failures": 0}
    return values | {"failures": failures}


def _fold(row: Workflow, block: int, log_index: int, values: Mapping[str, Any]) -> bool:
    """An event's `values` onto a loaded `row` as committed state (written later by
    `write_loaded`), unless it or a later event already was (a replay). True if folded."""
    if (int(row.updated_block), int(row.updated_log_index)) >= (block, log_index):
        return False
    for name, value in values.items():
        set_committed_value(row, name, value)
    return True


def _apply_event(
    session: Session,
    chain_id: int,
    contract: str,
    workflow_id: int,
    block: int,
    log_index: int,
    values: Mapping[str, Any],
) -> bool:
    """Apply an event's `values` to one workflow unless it or a later event already was (a replay);
    the session's loaded object of it, if any, follows. True if applied."""
    plus_one = tuple(sorted(c for c, v in values.items() if v is _PLUS_ONE))
    columns = tuple(sorted(c for c in values if c not in plus_one))
    params = {f"v_{c}": values[c] for c in columns}
    params |= {"k_chain_id": chain_id, "k_contract": checksum(contract), "k_id": workflow_id}
    params |= {"k_block": block, "k_log_index": log_index}
    result = session.connection().execute(_event_update(columns, plus_one), params)
    applied = bool(getattr(result, "rowcount", 0))
    if applied:
        _sync_loaded(session, chain_id, contract, workflow_id, values)
    return applied


def _sync_loaded(session: Session, chain_id: int, contract: str, workflow_id: int, values: Mapping[str, Any]) -> None:
    """After an applied UPDATE of one workflow: the session's object of it, if it holds one,
    gets the new values (as committed state, nothing to flush). SQLAlchemy's own synchronising
    evaluates the UPDATE's criteria against every object the session holds: quadratic in an
    indexer's range, where the range's workflows are held (most of the scheduler's CPU)."""
    loaded = session.identity_map.get(identity_key(Workflow, (chain_id, checksum(contract), workflow_id)))
    if loaded is None:
        return
    for name, value in values.items():
        if value is _PLUS_ONE:
            value = int(loaded.failures) + 1
        set_committed_value(loaded, name, value)


class WorkflowRepository(Repository):
    """Workflow rows keyed by (chain id, contract, on-chain id); the indexer writes, the API and
    workers read. Every method names the chain and contract: ids repeat across deployments."""

    def upsert(self, row: Mapping[str, Any] | Any) -> Workflow:
        """Insert or fully overwrite a workflow (from WorkflowCreated, or a fresh read of the
        contract's view after a reorg: pass ``updated_block`` = the block read at). The row
        carries its ``chain_id`` and ``contract``."""
        values = workflow_values(row)
        with self._write() as session:
            upsert(session, Workflow, values, keys=["chain_id", "contract", "id"])
            # read back in the same session, refreshing an object it may hold from before the upsert
            got = session.get(Workflow, (values["chain_id"], values["contract"], values["id"]), populate_existing=True)
        assert got is not None
        return got

    def get(self, chain_id: int, contract: str, workflow_id: int) -> Workflow | None:
        with self._read() as session:
            return session.get(Workflow, (chain_id, checksum(contract), workflow_id))

    def get_many(self, chain_id: int, contract: str, workflow_ids: Iterable[int]) -> list[Workflow]:
        """The indexed ones of `workflow_ids`, by id, in one SELECT (however many)."""
        ids = sorted(set(workflow_ids))
        if not ids:
            return []
        with self._read() as session:
            return list(
                session.scalars(
                    select(Workflow).where(*_key(chain_id, contract), Workflow.id.in_(ids)).order_by(Workflow.id)
                )
            )

    def list_by_owner(
        self,
        owner: str,
        offset: int = 0,
        limit: int = 50,
        *,
        chain_id: int | None = None,
        contract: str | None = None,
    ) -> Page[Workflow]:
        """An owner's workflows, newest first; on one chain (and contract) or, without
        ``chain_id``, on every chain the database holds (ordered by chain, then id)."""
        offset, limit = clamp_page(offset, limit)
        where: list[Any] = [Workflow.owner == checksum(owner)]
        if chain_id is not None:
            where.append(Workflow.chain_id == chain_id)
        if contract is not None:
            where.append(Workflow.contract == checksum(contract))
        with self._read() as session:
            total = session.scalar(select(func.count()).select_from(Workflow).where(*where)) or 0
            items = session.scalars(
                select(Workflow)
                .where(*where)
                .order_by(Workflow.chain_id, Workflow.contract, Workflow.id.desc())
                .offset(offset)
                .limit(limit)
            ).all()
        return Page(list(items), total, offset, limit)

    def list_active(self, chain_id: int, contract: str) -> list[Workflow]:
        """Every active workflow of one deployment, oldest first: what the scheduler evaluates
        each tick."""
        stmt = select(Workflow).where(*_key(chain_id, contract), Workflow.status == STATUS_ACTIVE).order_by(Workflow.id)
        with self._read() as session:
            return list(session.scalars(stmt).all())

    def active_pages(self, chain_id: int, contract: str, page: int = 1000) -> Iterator[list[Workflow]]:
        """`list_active` a page of rows at a time (by id): a scheduler's start converts each page
        and drops it, instead of holding every row and every state at once (the peak stays in
        the process's memory long after: freed memory is rarely given back to the system)."""
        after = -1
        while True:
            stmt = (
                select(Workflow)
                .where(*_key(chain_id, contract), Workflow.status == STATUS_ACTIVE, Workflow.id > after)
                .order_by(Workflow.id)
                .limit(page)
            )
            with self._read() as session:
                rows = list(session.scalars(stmt).all())
            if not rows:
                return
            yield rows
            after = rows[-1].id

    def apply_status(
        self,
        chain_id: int,
        contract: str,
        workflow_id: int,
        status: int,
        block: int,
        log_index: int,
        reason: int | None = None,
    ) -> bool:
        """Apply WorkflowStatusChanged; False if unknown or already applied (a replay). With the
        event's ``reason``, the change is also written to the notification outbox."""
        values = _status_values(status, block, log_index)
        with self._write() as session:
            applied = _apply_event(session, chain_id, contract, workflow_id, block, log_index, values)
            if applied:
                on_status_changed(session, chain_id, checksum(contract), workflow_id, status, reason, block, log_index)
            return applied

    def apply_run(
        self,
        chain_id: int,
        contract: str,
        workflow_id: int,
        run_index: int,
        success: bool,
        status: int,
        block: int,
        timestamp: int,
        log_index: int,
    ) -> bool:
        """Apply RunExecuted the way the contract does (`_run_values`). False if already applied."""
        values = _run_values(run_index, success, status, block, timestamp, log_index, _PLUS_ONE)
        with self._write() as session:
            return _apply_event(session, chain_id, contract, workflow_id, block, log_index, values)

    def apply_status_loaded(
        self,
        row: Workflow,
        status: int,
        block: int,
        log_index: int,
        reason: int | None = None,
    ) -> bool:
        """`apply_status` onto `row`, a loaded object of this session, only (its DB row is
        written later by `write_loaded`): the indexer's bulk path, which folds a range's run and
        status events in order in Python. False if the event was already applied (a replay)."""
        if not _fold(row, block, log_index, _status_values(status, block, log_index)):
            return False
        with self._write() as session:
            chain_id, contract, wid = int(row.chain_id), str(row.contract), int(row.id)
            on_status_changed(session, chain_id, contract, wid, status, reason, block, log_index)
        return True

    @staticmethod
    def apply_run_loaded(
        row: Workflow, run_index: int, success: bool, status: int, block: int, timestamp: int, log_index: int
    ) -> bool:
        """`apply_run` onto `row`, a loaded object, only (see `apply_status_loaded`)."""
        values = _run_values(run_index, success, status, block, timestamp, log_index, int(row.failures) + 1)
        return _fold(row, block, log_index, values)

    def write_loaded(self, rows: Iterable[Workflow]) -> None:
        """Write what `apply_*_loaded` folded into `rows` in one executemany UPDATE, each row
        under the same guard as a single event's (applied only over older events), with the
        position of the last event folded in."""
        params = [
            {f"v_{c}": getattr(row, c) for c in _FOLDED}
            | {
                "k_chain_id": int(row.chain_id),
                "k_contract": str(row.contract),
                "k_id": int(row.id),
                "k_block": int(row.updated_block),
                "k_log_index": int(row.updated_log_index),
            }
            for row in rows
        ]
        if not params:
            return
        with self._write() as session:
            session.connection().execute(_event_update(_FOLDED, ()), params)

    def delete_from_block(self, chain_id: int, contract: str, block: int) -> int:
        """Reorg rollback: forget workflows created at or after ``block``. Workflows created
        earlier but changed since (``changed_since``) must be re-read from the chain."""
        with self._write() as session:
            result = session.execute(delete(Workflow).where(*_key(chain_id, contract), Workflow.created_block >= block))
            return int(getattr(result, "rowcount", 0))

    def changed_since(self, chain_id: int, contract: str, block: int) -> list[int]:
        """Ids of workflows whose last applied event is at or after ``block``: after a reorg at
        ``block`` these hold state from orphaned events and need a fresh ``upsert``."""
        with self._read() as session:
            return list(
                session.scalars(
                    select(Workflow.id)
                    .where(*_key(chain_id, contract), Workflow.updated_block >= block)
                    .order_by(Workflow.id)
                ).all()
            )

    def count(
        self,
        *,
        chain_id: int | None = None,
        contract: str | None = None,
        owner: str | None = None,
        status: int | None = None,
    ) -> int:
        stmt = select(func.count()).select_from(Workflow)
        if chain_id is not None:
            stmt = stmt.where(Workflow.chain_id == chain_id)
        if contract is not None:
            stmt = stmt.where(Workflow.contract == checksum(contract))
        if owner is not None:
            stmt = stmt.where(Workflow.owner == checksum(owner))
        if status is not None:
            stmt = stmt.where(Workflow.status == status)
        with self._read() as session:
            return session.scalar(stmt) or 0

    def max_id(self, chain_id: int, contract: str) -> int | None:
        """The highest indexed workflow id of one deployment (to compare with its counter)."""
        with self._read() as session:
            return session.scalar(select(func.max(Workflow.id)).where(*_key(chain_id, contract)))
