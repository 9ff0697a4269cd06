"""The notification outbox: events written in the transaction of the fact they report, one
delivery row per interested subscription, and the claims and outcomes of delivery workers.

Why here, in the store: "a run failed" must never be recorded without "tell the owner" being
recorded too, and a crash between the two must not lose either; the same transaction does
that. Events are written only when some subscription wants them, so a deployment nobody
subscribes to pays one indexed SELECT per fact.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, func, or_, select, text, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from autometa.store.base import Page, Repository, clamp_page, insert_for
from autometa.store.models import EscrowEvent, Workflow
from autometa.store.notify_models import (
    NotifyAttempt,
    NotifyDelivery,
    NotifyEvent,
    NotifyIntent,
    NotifySubscription,
)
from autometa.store.types import checksum, to_utc, utcnow

# What an owner can subscribe to (the fact and where it is recorded is in the README).
OWNER_EVENTS: dict[str, str] = {
    "run.executed": "a run executed successfully",
    "run.failed": "a run's action reverted (revert reason included)",
    "run.skipped": "a run was skipped on-chain (reason included)",
    "run.missed": "a due run was not executed within N blocks (NOTIFY_MISSED_BLOCKS)",
    "workflow.auto_paused": "the workflow paused itself after repeated failures",
    "workflow.completed": "the workflow completed (all runs done, or its end time passed)",
    "workflow.status_changed": "the owner paused, resumed or cancelled the workflow",
    "escrow.runway_low": "the escrow pays for fewer than N more runs or N days",
}
# Operator events, reported by the worker processes that observe them (autometa.notify.alerts).
OPERATOR_EVENTS: dict[str, str] = {
    "executor.low_gas": "an executor's balance fell below NOTIFY_LOW_GAS_WEI, or the node refused its batch",
    "scheduler.failover": "a standby scheduler took the lease over from another holder",
    "rpc.down": "every RPC call of a worker process failed for NOTIFY_RPC_DOWN_S seconds",
    "rpc.recovered": "the RPC endpoint answers again after rpc.down",
    "queue.backlog": "due runs waiting longer than NOTIFY_BACKLOG_BLOCKS, or more than NOTIFY_BACKLOG_DEPTH queued",
}
EVENT_KINDS = {**OWNER_EVENTS, **OPERATOR_EVENTS}
DELIVERY_STATUSES = ("pending", "delivered", "dead", "cancelled")
CHANNELS = ("webhook", "email", "apprise")

_CHANGE_BY_FAILURES, _CHANGE_BY_EXPIRY, _CHANGE_BY_COMPLETION = 1, 2, 3  # AutometaTypes.sol CHANGE_*
_RUN_KINDS = {"success": "run.executed", "failed": "run.failed", "skipped": "run.skipped"}
_STATUS_LABELS = {1: "active", 2: "paused", 3: "cancelled", 4: "completed"}
_ESCROW_SIGNS = {
    "deposit": (1, 0),
    "withdraw": (-1, 0),
    "fee": (-1, 1),
    "reimburse": (-1, 1),
    "transfer": (-1, 1),
    "payout": (-1, 0),
}  # mirrors store.escrow.KINDS


def wants(sub: NotifySubscription, kind: str, workflow_id: int | None) -> bool:
    if kind not in sub.events and "*" not in sub.events:
        return False
    return not sub.workflow_ids or workflow_id is None or workflow_id in sub.workflow_ids


def _subscribers(
    session: Session, chain_id: int, kind: str, owner: str | None, workflow_id: int | None
) -> list[NotifySubscription]:
    """Active subscriptions of ``owner`` and the operator's that want this event."""
    subs = _active_subscriptions(session, chain_id)
    return [s for s in subs if (s.owner is None or s.owner == owner) and wants(s, kind, workflow_id)]


def _active_subscriptions(session: Session, chain_id: int) -> Sequence[NotifySubscription]:
    """The chain's active subscriptions, read once per session: a transaction that records many
    facts (the indexer's block, an executor's receipt) asks once, not once per fact."""
    cache: dict[int, Sequence[NotifySubscription]] = session.info.setdefault("autometa.subscriptions", {})
    if chain_id not in cache:
        cache[chain_id] = session.scalars(
            select(NotifySubscription).where(
                NotifySubscription.chain_id == chain_id, NotifySubscription.active.is_(True)
            )
        ).all()
    return cache[chain_id]


def emit(
    session: Session,
    *,
    chain_id: int,
    kind: str,
    key: str,
    data: dict[str, Any],
    owner: str | None = None,
    workflow_id: int | None = None,
    occurred_at: datetime | None = None,
    subscriptions: Sequence[NotifySubscription] | None = None,
) -> int | None:
    """Record event ``key`` and a pending delivery for each interested subscription, inside the
    caller's transaction. Returns the event id, or None when nobody wants it or it was already
    recorded (a replayed log): the key makes the write idempotent."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown notification event {kind!r}")
    subs = (
        list(subscriptions) if subscriptions is not None else _subscribers(session, chain_id, kind, owner, workflow_id)
    )
    if not subs:
        return None
    now = utcnow()
    when = occurred_at or now
    payload = {
        "id": key,
        "type": kind,
        "chain_id": chain_id,
        "owner": owner,
        "workflow_id": workflow_id,
        "occurred_at": when.isoformat(),
        "data": data,
    }
    table = cast(Table, NotifyEvent.__table__)
    stmt: Any = insert_for(session, table).values(
        key=key,
        chain_id=chain_id,
        kind=kind,
        owner=owner,
        workflow_id=workflow_id,
        payload=payload,
        occurred_at=when,
        created_at=now,
    )
    stmt = stmt.on_conflict_do_nothing(index_elements=["key"]).returning(table.c.id)
    event_id = session.execute(stmt).scalar()
    if event_id is None:
        return None
    session.add_all(
        NotifyDelivery(
            event_id=event_id,
            subscription_id=s.id,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
        for s in subs
    )
    session.flush()
    return int(event_id)


# ---------------------------------------------------------------- hooks called by fact writers


def on_run_recorded(session: Session, row: Any, *, fee: int | None = None) -> None:
    """Hook of ``ExecutionRepository.record_onchain``: run.executed / run.failed / run.skipped,
    and escrow.runway_low when this run's fee crossed a subscriber's threshold."""
    if _RUN_KINDS.get(row.status) is None:
        return
    wf = session.get(Workflow, (int(row.chain_id), str(row.contract), int(row.workflow_id)))
    _run_recorded(session, row, wf, fee, None)


def on_runs_recorded(session: Session, rows: Sequence[tuple[Any, int | None]]) -> None:
    """`on_run_recorded` for a transaction's rows ((row, fee) each) in a few statements: the
    chain's active subscriptions once; with none (the common case) nothing more, else the rows'
    workflows in one SELECT and each event written as before."""
    rows = [(row, fee) for row, fee in rows if _RUN_KINDS.get(row.status) is not None]
    if not rows:
        return
    subs = [
        s
        for chain_id in sorted({int(row.chain_id) for row, _ in rows})
        for s in _active_subscriptions(session, chain_id)
    ]
    if not subs:
        return
    keys = {(int(r.chain_id), str(r.contract), int(r.workflow_id)) for r, _ in rows}
    workflows = {
        (int(w.chain_id), str(w.contract), int(w.id)): w
        for w in session.scalars(
            select(Workflow).where(tuple_(Workflow.chain_id, Workflow.contract, Workflow.id).in_(sorted(keys)))
        ).all()
    }
    for row, fee in rows:
        wf = workflows.get((int(row.chain_id), str(row.contract), int(row.workflow_id)))
        owner = wf.owner if wf is not None else None
        # what `_subscribers` would select for this row: the chain's, the operator's or the owner's
        mine = [s for s in subs if s.chain_id == row.chain_id and (s.owner is None or s.owner == owner)]
        _run_recorded(session, row, wf, fee, mine)


def _run_recorded(
    session: Session, row: Any, wf: Workflow | None, fee: int | None, subs: Sequence[NotifySubscription] | None
) -> None:
    """One recorded run's events; `subs`: the candidate subscriptions when the caller read them
    already (None: select them here)."""
    status = row.status
    kind = _RUN_KINDS[status]
    owner = wf.owner if wf is not None else None
    chain_id, wid, run = int(row.chain_id), int(row.workflow_id), int(row.run_index)
    data: dict[str, Any] = {
        "run_index": run,
        "tx_hash": row.tx_hash,
        "block_number": row.block_number,
        "executor": row.executor,
    }
    if status == "skipped":
        data["skip_reason"] = row.skip_reason
        key = f"{kind}:{chain_id}:{wid}:{run}:{row.tx_hash}:{row.log_index}"
    else:
        data |= {"gas_used": row.gas_used, "fee_wei": str(row.fee) if row.fee is not None else None}
        if status == "failed":
            data["revert_reason"] = row.revert_reason
        key = f"{kind}:{chain_id}:{wid}:{run}:{row.tx_hash}"
    emit(
        session,
        chain_id=chain_id,
        kind=kind,
        key=key,
        data=data,
        owner=owner,
        workflow_id=wid,
        occurred_at=row.occurred_at,
        subscriptions=None if subs is None else [s for s in subs if wants(s, kind, wid)],
    )
    if wf is not None and status != "skipped" and fee:
        runway = None if subs is None else [s for s in subs if wants(s, "escrow.runway_low", int(wf.id))]
        _check_runway(
            session, wf, int(fee), success=status == "success", key_tail=f"{row.tx_hash}:{row.log_index}", subs=runway
        )


def on_status_changed(
    session: Session,
    chain_id: int,
    contract: str,
    workflow_id: int,
    status: int,
    reason: int | None,
    block: int,
    log_index: int,
) -> None:
    """Hook of ``WorkflowRepository.apply_status``: auto-pause, completion, owner changes."""
    wf = session.get(Workflow, (chain_id, contract, workflow_id))
    if reason is None or wf is None:
        return
    owner, chain_id = wf.owner, int(wf.chain_id)
    kind = "workflow.status_changed"
    if reason == _CHANGE_BY_FAILURES:
        kind = "workflow.auto_paused"
    elif reason in (_CHANGE_BY_COMPLETION, _CHANGE_BY_EXPIRY):
        kind = "workflow.completed"
    data = {
        "status": _STATUS_LABELS.get(status, str(status)),
        "block_number": block,
        "reason": {0: "by_owner", 1: "by_failures", 2: "by_expiry", 3: "by_completion"}.get(reason, str(reason)),
        "failures": wf.failures,
    }
    emit(
        session,
        chain_id=chain_id,
        kind=kind,
        key=f"{kind}:{chain_id}:{workflow_id}:{block}:{log_index}",
        data=data,
        owner=owner,
        workflow_id=workflow_id,
    )


def _ledger_balance(session: Session, chain_id: int, contract: str, account: str) -> int:
    rows = session.execute(
        select(EscrowEvent.kind, EscrowEvent.account, EscrowEvent.counterparty, EscrowEvent.amount).where(
            EscrowEvent.chain_id == chain_id,
            EscrowEvent.contract == contract,
            or_(EscrowEvent.account == account, EscrowEvent.counterparty == account),
        )
    ).all()
    total = 0
    for kind, who, other, amount in rows:
        own, their = _ESCROW_SIGNS.get(kind, (0, 0))
        total += own * int(amount) if who == account else 0
        total += their * int(amount) if other == account else 0
    return total


def _check_runway(
    session: Session,
    wf: Workflow,
    fee: int,
    *,
    success: bool,
    key_tail: str,
    subs: Sequence[NotifySubscription] | None = None,
) -> None:
    """The owner's escrow before this run's fee (the indexer records the fee right after the run,
    so the ledger still holds the balance before it) and after; a subscriber hears of the run
    whose fee took the runway below its threshold, once per crossing."""
    if subs is None:
        subs = _subscribers(session, int(wf.chain_id), "escrow.runway_low", wf.owner, int(wf.id))
    if not subs:
        return
    value = int(wf.amount) if int(wf.action_kind) != 1 else 0  # ERC-20 amounts are not escrowed
    per_run = int(wf.max_fee_per_run) + value
    if per_run <= 0:
        return
    before = _ledger_balance(session, int(wf.chain_id), wf.contract, wf.owner)
    after = before - fee - (value if success else 0)
    runs_before, runs_after = max(before, 0) // per_run, max(after, 0) // per_run
    interval = int(wf.interval or 0)

    def low(runs: int, sub: NotifySubscription) -> bool:
        return runs < sub.runway_runs or (interval > 0 and runs * interval < sub.runway_days * 86400)

    crossing = [s for s in subs if low(runs_after, s) and not low(runs_before, s)]
    if not crossing:
        return
    data = {
        "balance_wei": str(max(after, 0)),
        "per_run_wei": str(per_run),
        "runway_runs": runs_after,
        "runway_days": round(runs_after * interval / 86400, 3) if interval else None,
    }
    emit(
        session,
        chain_id=int(wf.chain_id),
        kind="escrow.runway_low",
        key=f"escrow.runway_low:{wf.chain_id}:{wf.id}:{key_tail}",
        data=data,
        owner=wf.owner,
        workflow_id=int(wf.id),
        subscriptions=crossing,
    )


# ---------------------------------------------------------------- workers' view


@dataclass(frozen=True)
class Claimed:
    """One delivery a worker holds: everything it needs to send it, secrets included (they stay
    in memory, never in a log line)."""

    delivery_id: int
    subscription_id: int
    attempt: int  # the number of this attempt, from 1
    channel: str
    target: str
    secret: str | None
    event_key: str
    payload: dict[str, Any]
    event_created_at: datetime
    operator: bool = False  # the operator's own subscription: trusted with private addresses


@dataclass(frozen=True)
class Outcome:
    delivery_id: int
    subscription_id: int
    attempt: int
    ok: bool
    started_at: datetime
    duration_ms: float
    status_code: int | None = None
    error: str | None = None
    retry_at: datetime | None = None  # None on failure: dead-lettered


class NotificationRepository(Repository):
    """Subscriptions, the delivery log, and the claims of delivery workers."""

    # ------------------------------------------------------------ subscriptions

    def any_active(self, chain_id: int) -> bool:
        """Whether the chain has an active subscription (read once per transaction, as the
        outbox's hooks read it): without one, no hook writes anything, so the order in which a
        writer records its facts cannot change what subscribers hear."""
        with self._read() as session:
            return bool(_active_subscriptions(session, chain_id))

    def subscribe(
        self,
        *,
        chain_id: int,
        owner: str | None,
        name: str,
        channel: str,
        target: str,
        target_hint: str,
        events: Iterable[str],
        secret: str | None = None,
        workflow_ids: Iterable[int] | None = None,
        runway_runs: int = 3,
        runway_days: float = 1.0,
    ) -> NotifySubscription:
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}; expected one of {', '.join(CHANNELS)}")
        kinds = sorted(set(events))
        unknown = [k for k in kinds if k != "*" and k not in EVENT_KINDS]
        if unknown or not kinds:
            raise ValueError(f"unknown event kind(s): {', '.join(unknown) or '(none given)'}")
        sub = NotifySubscription(
            chain_id=chain_id,
            owner=checksum(owner) if owner else None,
            name=name,
            channel=channel,
            target=target,
            target_hint=target_hint[:255],
            secret=secret,
            events=kinds,
            workflow_ids=sorted(set(workflow_ids)) if workflow_ids else None,
            runway_runs=runway_runs,
            runway_days=runway_days,
            active=True,
            created_at=utcnow(),
        )
        try:
            with self._write() as session:
                session.add(sub)
                session.flush()
        except IntegrityError:
            # Not the driver's message: it quotes the statement's parameters, target and secret included.
            raise ValueError(f"a subscription named {name!r} already exists for this owner") from None
        return sub

    def sync_operator(self, chain_id: int, wanted: Sequence[dict[str, Any]]) -> list[NotifySubscription]:
        """Make the operator's subscriptions (owner NULL) those of the configuration: same name
        updated in place (its delivery log kept), new ones added, removed ones deactivated."""
        with self._write() as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _key("notify-operator-sync")})
            current = {
                s.name: s
                for s in session.scalars(
                    select(NotifySubscription).where(
                        NotifySubscription.owner.is_(None), NotifySubscription.chain_id == chain_id
                    )
                ).all()
            }
            kept = []
            for spec in wanted:
                sub = current.pop(spec["name"], None)
                if sub is None:
                    sub = NotifySubscription(chain_id=chain_id, owner=None, name=spec["name"], created_at=utcnow())
                    session.add(sub)
                sub.channel, sub.target, sub.target_hint = spec["channel"], spec["target"], spec["target_hint"]
                sub.secret, sub.events = spec.get("secret"), sorted(set(spec["events"]))
                sub.workflow_ids = spec.get("workflow_ids") or None
                sub.runway_runs, sub.runway_days = spec.get("runway_runs", 3), spec.get("runway_days", 1.0)
                sub.active = True
                kept.append(sub)
            for gone in current.values():
                gone.active = False
            session.flush()
            return kept

    def get_subscription(self, subscription_id: int) -> NotifySubscription | None:
        with self._read() as session:
            return session.get(NotifySubscription, subscription_id)

    def list_subscriptions(
        self, *, owner: str | None = None, operator: bool = False, include_inactive: bool = False
    ) -> list[NotifySubscription]:
        stmt = select(NotifySubscription).order_by(NotifySubscription.id)
        if operator:
            stmt = stmt.where(NotifySubscription.owner.is_(None))
        elif owner is not None:
            stmt = stmt.where(NotifySubscription.owner == checksum(owner))
        if not include_inactive:
            stmt = stmt.where(NotifySubscription.active.is_(True))
        with self._read() as session:
            return list(session.scalars(stmt).all())

    def unsubscribe(self, subscription_id: int) -> bool:
        """Deactivate (the delivery log stays readable) and cancel what was still pending."""
        now = utcnow()
        with self._write() as session:
            sub = session.get(NotifySubscription, subscription_id)
            if sub is None or not sub.active:
                return False
            sub.active = False
            session.execute(
                update(NotifyDelivery)
                .where(NotifyDelivery.subscription_id == subscription_id, NotifyDelivery.status == "pending")
                .values(status="cancelled", updated_at=now, lease_token=None, lease_until=None)
            )
            return True

    def use_nonce(self, owner: str, nonce: int, action: str) -> bool:
        """Consume a signed intent's nonce; False if it was used before (a replay)."""
        table = cast(Table, NotifyIntent.__table__)
        with self._write() as session:
            stmt: Any = insert_for(session, table).values(
                owner=checksum(owner), nonce=str(nonce), action=action, created_at=utcnow()
            )
            result = session.execute(stmt.on_conflict_do_nothing())
            return bool(getattr(result, "rowcount", 0))

    # ------------------------------------------------------------ delivery log

    def deliveries(
        self, subscription_id: int, *, status: str | None = None, offset: int = 0, limit: int = 50
    ) -> Page[tuple[NotifyDelivery, NotifyEvent]]:
        offset, limit = clamp_page(offset, limit)
        where: list[Any] = [NotifyDelivery.subscription_id == subscription_id]
        if status is not None:
            if status not in DELIVERY_STATUSES:
                raise ValueError(f"unknown delivery status {status!r}; expected one of {', '.join(DELIVERY_STATUSES)}")
            where.append(NotifyDelivery.status == status)
        with self._read() as session:
            total = session.scalar(select(func.count()).select_from(NotifyDelivery).where(*where)) or 0
            rows = session.execute(
                select(NotifyDelivery, NotifyEvent)
                .join(NotifyEvent, NotifyEvent.id == NotifyDelivery.event_id)
                .where(*where)
                .order_by(NotifyDelivery.id.desc())
                .offset(offset)
                .limit(limit)
            ).all()
        return Page([(d, e) for d, e in rows], total, offset, limit)

    def attempts(self, delivery_id: int, limit: int = 100) -> list[NotifyAttempt]:
        with self._read() as session:
            return list(
                session.scalars(
                    select(NotifyAttempt)
                    .where(NotifyAttempt.delivery_id == delivery_id)
                    .order_by(NotifyAttempt.id)
                    .limit(limit)
                ).all()
            )

    def get_delivery(self, delivery_id: int) -> NotifyDelivery | None:
        with self._read() as session:
            return session.get(NotifyDelivery, delivery_id)

    def resend(self, delivery_id: int) -> bool:
        """Deliver again now (a delivered, dead or pending row), with a fresh attempt budget;
        the receiver sees the same idempotency key. False if unknown or its subscription is gone."""
        now = utcnow()
        with self._write() as session:
            row = session.get(NotifyDelivery, delivery_id)
            if row is None:
                return False
            sub = session.get(NotifySubscription, row.subscription_id)
            if sub is None or not sub.active:
                return False
            row.status, row.attempts, row.next_attempt_at, row.updated_at = "pending", 0, now, now
            row.lease_token = row.lease_until = None
            return True

    def counts(self) -> dict[str, int]:
        """Deliveries by status, plus ``due`` (pending and due now): what an operator watches."""
        with self._read() as session:
            counts = dict.fromkeys(DELIVERY_STATUSES, 0)
            for status, n in session.execute(
                select(NotifyDelivery.status, func.count()).group_by(NotifyDelivery.status)
            ).all():
                counts[str(status)] = int(n)
            counts["due"] = int(
                session.scalar(
                    select(func.count()).where(
                        NotifyDelivery.status == "pending", NotifyDelivery.next_attempt_at <= utcnow()
                    )
                )
                or 0
            )
        return counts

    def emit_operator(self, chain_id: int, kind: str, key: str, data: dict[str, Any]) -> int | None:
        """Record an operator event (its own transaction: operator facts live outside the store)."""
        if kind not in OPERATOR_EVENTS:
            raise ValueError(f"not an operator event: {kind!r}")
        with self._write() as session:
            return emit(session, chain_id=chain_id, kind=kind, key=key, data=data)

    def emit_workflows(
        self,
        chain_id: int,
        kind: str,
        events: Sequence[tuple[int, str, dict[str, Any]]],
        contract: str | None = None,
    ) -> int:
        """Record owner events observed by a worker (no store fact behind them, e.g. run.missed),
        ``(workflow id, key, data)`` each, in one transaction; each workflow's owner is looked
        up in it, in ``contract`` on the chain. Without ``contract`` the id is looked up on the
        chain and its owner used only if one deployment there has that id. Returns how many
        were new and wanted."""
        if kind not in OWNER_EVENTS:
            raise ValueError(f"not an owner event: {kind!r}")
        written = 0
        with self._write() as session:
            for workflow_id, key, data in events:
                where = [Workflow.chain_id == chain_id, Workflow.id == workflow_id]
                if contract is not None:
                    where.append(Workflow.contract == checksum(contract))
                owners = session.scalars(select(Workflow.owner).where(*where).limit(2)).all()
                owner = owners[0] if len(owners) == 1 else None
                written += (
                    emit(
                        session, chain_id=chain_id, kind=kind, key=key, data=data, owner=owner, workflow_id=workflow_id
                    )
                    is not None
                )
        return written

    # ------------------------------------------------------------ claims

    def claim(self, token: str, limit: int, lease_s: float, now: datetime | None = None) -> list[Claimed]:
        """Lease up to ``limit`` due deliveries to the caller (see ``cycle``)."""
        return self.cycle(token, (), limit, lease_s, now)

    def finish(self, token: str, outcomes: Sequence[Outcome]) -> None:
        """Record a batch of attempts (see ``cycle``)."""
        self.cycle(token, outcomes, 0, 0)

    def cycle(
        self, token: str, outcomes: Sequence[Outcome], limit: int, lease_s: float, now: datetime | None = None
    ) -> list[Claimed]:
        """One worker round trip, one transaction: record finished attempts, then lease up to
        ``limit`` due deliveries.

        Recording: a success is final even if the lease ran out meanwhile (someone else may be
        sending it too: at least once); a failure only reschedules a row this worker still holds.
        Claiming: PostgreSQL uses FOR UPDATE SKIP LOCKED, so concurrent workers take disjoint rows
        without waiting; on SQLite the write transaction holds the database lock, so the
        select-then-update cannot interleave with another worker's. Losing this transaction in a
        crash loses nothing (the rows are leased or sent again), so on PostgreSQL it commits
        without waiting for the WAL flush."""
        now = to_utc(now) if now is not None else utcnow()
        if not outcomes and (limit <= 0 or not self._any_due(now)):
            return []  # an idle poll takes no write lock (SQLite has one for the whole database)
        with self._write() as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(text("SET LOCAL synchronous_commit = off"))
            if outcomes:
                self._record(session, token, outcomes, now)
            return self._lease(session, token, limit, lease_s, now) if limit > 0 else []

    def _any_due(self, now: datetime) -> bool:
        with self._read() as session:
            return session.scalar(select(NotifyDelivery.id).where(*_due(now)).limit(1)) is not None

    @staticmethod
    def _record(session: Session, token: str, outcomes: Sequence[Outcome], now: datetime) -> None:
        ok = [o for o in outcomes if o.ok]
        for code in {o.status_code for o in ok}:
            session.execute(
                update(NotifyDelivery)
                .where(
                    NotifyDelivery.id.in_([o.delivery_id for o in ok if o.status_code == code]),
                    NotifyDelivery.status == "pending",
                )
                .values(
                    status="delivered",
                    delivered_at=now,
                    attempts=NotifyDelivery.attempts + 1,
                    last_error=None,
                    last_status_code=code,
                    lease_token=None,
                    lease_until=None,
                    updated_at=now,
                )
            )
        for o in outcomes:
            if o.ok:
                continue
            values: dict[str, Any] = {
                "attempts": o.attempt,
                "last_error": o.error,
                "updated_at": now,
                "last_status_code": o.status_code,
                "lease_token": None,
                "lease_until": None,
            }
            if o.retry_at is None:
                values["status"] = "dead"
            else:
                values["next_attempt_at"] = o.retry_at
            session.execute(
                update(NotifyDelivery)
                .where(
                    NotifyDelivery.id == o.delivery_id,
                    NotifyDelivery.status == "pending",
                    NotifyDelivery.lease_token == token,
                )
                .values(**values)
            )
        session.execute(
            insert_for(session, cast(Table, NotifyAttempt.__table__)),
            [
                {
                    "delivery_id": o.delivery_id,
                    "subscription_id": o.subscription_id,
                    "attempt": o.attempt,
                    "ok": o.ok,
                    "status_code": o.status_code,
                    "error": o.error,
                    "duration_ms": round(o.duration_ms, 3),
                    "worker": token[:128],
                    "started_at": o.started_at,
                }
                for o in outcomes
            ],
        )

    @staticmethod
    def _lease(session: Session, token: str, limit: int, lease_s: float, now: datetime) -> list[Claimed]:
        pick = (
            select(NotifyDelivery.id)
            .where(*_due(now))
            .order_by(NotifyDelivery.next_attempt_at, NotifyDelivery.id)
            .limit(limit)
        )
        if session.get_bind().dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        ids = list(session.scalars(pick).all())
        if not ids:
            return []
        session.execute(
            update(NotifyDelivery)
            .where(NotifyDelivery.id.in_(ids))
            .values(lease_token=token, lease_until=now + timedelta(seconds=lease_s))
        )
        rows = session.execute(
            select(
                NotifyDelivery.id,
                NotifyDelivery.attempts,
                NotifyEvent.key,
                NotifyEvent.payload,
                NotifyEvent.created_at,
                NotifySubscription.id,
                NotifySubscription.channel,
                NotifySubscription.target,
                NotifySubscription.secret,
                NotifySubscription.owner,
            )
            .join(NotifyEvent, NotifyEvent.id == NotifyDelivery.event_id)
            .join(NotifySubscription, NotifySubscription.id == NotifyDelivery.subscription_id)
            .where(NotifyDelivery.id.in_(ids))
        ).all()
        return [
            Claimed(
                int(did),
                int(sid),
                int(attempts) + 1,
                channel,
                target,
                secret,
                key,
                dict(payload),
                created,
                owner is None,
            )
            for did, attempts, key, payload, created, sid, channel, target, secret, owner in rows
        ]

    def release(self, token: str, delivery_ids: Sequence[int]) -> None:
        """Give back claimed rows unsent (a worker stopping cleanly)."""
        if not delivery_ids:
            return
        with self._write() as session:
            session.execute(
                update(NotifyDelivery)
                .where(NotifyDelivery.id.in_(list(delivery_ids)), NotifyDelivery.lease_token == token)
                .values(lease_token=None, lease_until=None)
            )


def _due(now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        NotifyDelivery.status == "pending",
        NotifyDelivery.next_attempt_at <= now,
        or_(NotifyDelivery.lease_until.is_(None), NotifyDelivery.lease_until < now),
    )


def _key(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)
