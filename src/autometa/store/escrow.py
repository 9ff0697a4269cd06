"""Escrow movements from the chain's events, and the balances they add up to."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, NotRequired, TypedDict, Unpack

from sqlalchemy import Numeric, case, delete, func, literal, select, type_coerce, union_all

from autometa.store.base import Page, Repository, clamp_page, upsert_many
from autometa.store.models import EscrowEvent
from autometa.store.types import checksum, hexstr, to_uint256

# kind -> (sign for ``account``, sign for ``counterparty``). Fees and relayer reimbursements
# move coin from the owner's balance into the payee's balance (the contract credits the
# executor / relayer in escrow); a payout is a run's native value leaving escrow to its target.
KINDS: dict[str, tuple[int, int]] = {
    "deposit": (1, 0),  # Deposited(user=account, from=counterparty)
    "withdraw": (-1, 0),  # Withdrawn(user=account, to=counterparty)
    "fee": (-1, 1),  # RunExecuted fee: owner=account -> executor=counterparty
    "reimburse": (-1, 1),  # RelayerReimbursed(owner=account, relayer=counterparty)
    "transfer": (-1, 1),  # any other escrow-to-escrow move
    "payout": (-1, 0),  # a successful run's native amount, owner=account -> target=counterparty
}


_KEYS = ("chain_id", "tx_hash", "log_index", "kind")
_UPDATED = ("contract", "block_number", "account", "counterparty", "amount", "workflow_id")


class Movement(TypedDict):
    """One ledger movement, as `record` takes it (a log's facts)."""

    chain_id: int
    contract: str
    block_number: int
    tx_hash: str | bytes
    log_index: int
    kind: str
    account: str
    amount: int
    counterparty: NotRequired[str | None]
    workflow_id: NotRequired[int | None]


def escrow_values(movement: Movement) -> dict[str, Any]:
    """One movement's column values, checked and normalised (checksummed, 0x-hex, uint256)."""
    kind, counterparty = movement["kind"], movement.get("counterparty")
    if kind not in KINDS:
        raise ValueError(f"unknown escrow kind {kind!r}; expected one of {', '.join(KINDS)}")
    if KINDS[kind][1] and counterparty is None:
        raise ValueError(f"a {kind!r} needs the counterparty whose balance it credits")
    return {
        "chain_id": movement["chain_id"],
        "contract": checksum(movement["contract"]),
        "block_number": movement["block_number"],
        "tx_hash": hexstr(movement["tx_hash"]),
        "log_index": movement["log_index"],
        "kind": kind,
        "account": checksum(movement["account"]),
        "counterparty": checksum(counterparty) if counterparty is not None else None,
        "amount": to_uint256(movement["amount"]),
        "workflow_id": movement.get("workflow_id"),
    }


class EscrowRepository(Repository):
    """An append-only ledger keyed by log; replaying a log updates rather than duplicates."""

    def record(self, **movement: Unpack[Movement]) -> None:
        self.record_many([movement])

    def record_many(self, movements: Sequence[Movement]) -> None:
        """`record` for each of `movements`, in one executemany: the indexer writes a fee and a
        payout row per run, two statements a run one by one. Same key and idempotency as one
        by one: a replayed log updates its row."""
        if not movements:
            return
        values = [escrow_values(m) for m in movements]
        with self._write() as session:
            upsert_many(session, EscrowEvent, values, keys=_KEYS, update=_UPDATED)

    def list(
        self, chain_id: int, contract: str, account: str | None = None, offset: int = 0, limit: int = 50
    ) -> Page[EscrowEvent]:
        """Movements newest first; with ``account``, those touching it on either side."""
        offset, limit = clamp_page(offset, limit)
        where: list[Any] = [EscrowEvent.chain_id == chain_id, EscrowEvent.contract == checksum(contract)]
        if account is not None:
            addr = checksum(account)
            where.append((EscrowEvent.account == addr) | (EscrowEvent.counterparty == addr))
        with self._read() as session:
            total = session.scalar(select(func.count()).select_from(EscrowEvent).where(*where)) or 0
            items = session.scalars(
                select(EscrowEvent)
                .where(*where)
                .order_by(EscrowEvent.block_number.desc(), EscrowEvent.log_index.desc(), EscrowEvent.id.desc())
                .offset(offset)
                .limit(limit)
            ).all()
        return Page(list(items), total, offset, limit)

    def balances(self, chain_id: int, contract: str, account: str | None = None) -> dict[str, int]:
        """Every account's escrow balance in one deployment implied by the recorded events, to
        compare with the contract's ``balanceOf``. Exact on both backends (SQLite sums in Python)."""
        addr = checksum(account) if account is not None else None
        core = checksum(contract)
        with self._read() as session:
            if session.get_bind().dialect.name == "postgresql":
                return self._balances_sql(session, chain_id, core, addr)
            where: list[Any] = [EscrowEvent.chain_id == chain_id, EscrowEvent.contract == core]
            if addr is not None:
                where.append((EscrowEvent.account == addr) | (EscrowEvent.counterparty == addr))
            totals: dict[str, int] = defaultdict(int)
            rows = session.execute(
                select(EscrowEvent.kind, EscrowEvent.account, EscrowEvent.counterparty, EscrowEvent.amount).where(
                    *where
                )
            ).all()
            for kind, who, other, amount in rows:
                own, their = KINDS[kind]
                totals[who] += own * amount
                if their and other is not None:
                    totals[other] += their * amount
        return {k: v for k, v in totals.items() if addr is None or k == addr}

    def balance(self, chain_id: int, contract: str, account: str) -> int:
        addr = checksum(account)
        return self.balances(chain_id, contract, addr).get(addr, 0)

    def delete_from_block(self, chain_id: int, contract: str, block: int) -> int:
        """Reorg rollback: forget one deployment's movements at or after ``block``."""
        with self._write() as session:
            result = session.execute(
                delete(EscrowEvent).where(
                    EscrowEvent.chain_id == chain_id,
                    EscrowEvent.contract == checksum(contract),
                    EscrowEvent.block_number >= block,
                )
            )
            return int(getattr(result, "rowcount", 0))

    @staticmethod
    def _balances_sql(session: Any, chain_id: int, contract: str, addr: str | None) -> dict[str, int]:
        amount = type_coerce(EscrowEvent.amount, Numeric(78, 0))
        own = case(*((EscrowEvent.kind == k, literal(s)) for k, (s, _) in KINDS.items()), else_=0)
        their = case(*((EscrowEvent.kind == k, literal(s)) for k, (_, s) in KINDS.items()), else_=0)
        base = (EscrowEvent.chain_id == chain_id) & (EscrowEvent.contract == contract)
        sides = union_all(
            select(EscrowEvent.account.label("who"), (own * amount).label("delta")).where(
                base, *([EscrowEvent.account == addr] if addr else [])
            ),
            select(EscrowEvent.counterparty.label("who"), (their * amount).label("delta")).where(
                base,
                EscrowEvent.counterparty.is_not(None),
                their != 0,
                *([EscrowEvent.counterparty == addr] if addr else []),
            ),
        ).subquery()
        rows = session.execute(select(sides.c.who, func.sum(sides.c.delta)).group_by(sides.c.who)).all()
        return {str(who): int(total) for who, total in rows}
