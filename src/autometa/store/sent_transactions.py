"""The transaction sender's journal.

A transaction is journaled after signing and before broadcasting. On restart the sender reads
``pending`` back and rebroadcasts, waits for or replaces each one, instead of signing a fresh
transaction at a nonce that may already be taken.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, update

from autometa.store.base import Repository
from autometa.store.models import SentTransaction
from autometa.store.types import checksum, hexstr, to_uint256, utcnow

TX_TYPES = ("eip1559", "legacy")
TX_STATUSES = ("pending", "mined", "confirmed", "failed", "replaced", "dropped")
# Still undecided: the nonce may yet be taken by any of these.
OPEN_STATUSES = ("pending", "replaced")


def _opt_uint(value: int | None) -> int | None:
    return to_uint256(value) if value is not None else None


class SentTransactionRepository(Repository):
    """Rows keyed by tx hash; several rows may share a nonce (a transaction and its
    replacements) until one of them is mined."""

    def add(
        self,
        *,
        chain_id: int,
        sender: str,
        nonce: int,
        tx_hash: str | bytes,
        raw_tx: str | bytes,
        tx_type: str,
        gas_limit: int,
        purpose: str,
        max_fee_per_gas: int | None = None,
        max_priority_fee_per_gas: int | None = None,
        gas_price: int | None = None,
        status: str = "pending",
    ) -> SentTransaction:
        """Journal a signed transaction. Adding the same hash twice is a no-op (returns the
        existing row), so a crash between journaling and broadcasting is harmless."""
        if tx_type not in TX_TYPES:
            raise ValueError(f"unknown tx_type {tx_type!r}; expected one of {', '.join(TX_TYPES)}")
        if status not in TX_STATUSES:
            raise ValueError(f"unknown status {status!r}")
        if tx_type == "eip1559" and (max_fee_per_gas is None or max_priority_fee_per_gas is None):
            raise ValueError("an eip1559 transaction needs max_fee_per_gas and max_priority_fee_per_gas")
        if tx_type == "legacy" and gas_price is None:
            raise ValueError("a legacy transaction needs gas_price")
        tx = hexstr(tx_hash)
        now = utcnow()
        with self._write() as session:
            existing = session.scalars(select(SentTransaction).where(SentTransaction.tx_hash == tx)).one_or_none()
            if existing is not None:
                return existing
            row = SentTransaction(
                chain_id=chain_id,
                sender=checksum(sender),
                nonce=nonce,
                tx_hash=tx,
                raw_tx=hexstr(raw_tx),
                tx_type=tx_type,
                max_fee_per_gas=_opt_uint(max_fee_per_gas),
                max_priority_fee_per_gas=_opt_uint(max_priority_fee_per_gas),
                gas_price=_opt_uint(gas_price),
                gas_limit=gas_limit,
                status=status,
                purpose=purpose,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            return row

    def get(self, tx_hash: str | bytes) -> SentTransaction | None:
        with self._read() as session:
            return session.scalars(
                select(SentTransaction).where(SentTransaction.tx_hash == hexstr(tx_hash))
            ).one_or_none()

    def pending(self, chain_id: int, sender: str, statuses: Sequence[str] = ("pending",)) -> list[SentTransaction]:
        """The sender's undecided transactions in nonce order (oldest first within a nonce):
        the order they must be rebroadcast in. Pass ``statuses=("pending", "mined")`` to also
        get those still waiting for confirmations."""
        with self._read() as session:
            return list(
                session.scalars(
                    select(SentTransaction)
                    .where(
                        SentTransaction.chain_id == chain_id,
                        SentTransaction.sender == checksum(sender),
                        SentTransaction.status.in_(list(statuses)),
                    )
                    .order_by(SentTransaction.nonce, SentTransaction.id)
                ).all()
            )

    def by_nonce(self, chain_id: int, sender: str, nonce: int) -> list[SentTransaction]:
        """Every transaction tried at one nonce, first attempt first."""
        with self._read() as session:
            return list(
                session.scalars(
                    select(SentTransaction)
                    .where(
                        SentTransaction.chain_id == chain_id,
                        SentTransaction.sender == checksum(sender),
                        SentTransaction.nonce == nonce,
                    )
                    .order_by(SentTransaction.id)
                ).all()
            )

    def set_status(self, tx_hash: str | bytes, status: str, block_number: int | None = None) -> bool:
        """Move one transaction to ``status`` (``block_number`` when mined); False if unknown."""
        if status not in TX_STATUSES:
            raise ValueError(f"unknown status {status!r}")
        values: dict[str, object] = {"status": status, "updated_at": utcnow()}
        if block_number is not None or status in OPEN_STATUSES:
            values["block_number"] = block_number
        with self._write() as session:
            result = session.execute(
                update(SentTransaction).where(SentTransaction.tx_hash == hexstr(tx_hash)).values(**values)
            )
            return bool(getattr(result, "rowcount", 0))

    def mark_replaced(self, old_hash: str | bytes, new_hash: str | bytes) -> bool:
        """Record that ``new_hash`` (already ``add``-ed, same nonce) supersedes ``old_hash``.
        Only a pending transaction can be replaced; False otherwise."""
        old, new = hexstr(old_hash), hexstr(new_hash)
        with self._write() as session:
            rows = {
                r.tx_hash: r
                for r in session.scalars(select(SentTransaction).where(SentTransaction.tx_hash.in_([old, new])))
            }
            if old not in rows or new not in rows:
                raise LookupError("both transactions must be journaled before marking a replacement")
            a, b = rows[old], rows[new]
            if (a.chain_id, a.sender, a.nonce) != (b.chain_id, b.sender, b.nonce):
                raise ValueError("a replacement must have the same chain, sender and nonce")
            if a.status != "pending":
                return False
            a.status, a.replaced_by, a.updated_at = "replaced", new, utcnow()
            return True

    def resolve_nonce(self, chain_id: int, sender: str, nonce: int, mined_hash: str | bytes, block_number: int) -> None:
        """One transaction at ``nonce`` was mined: mark it, and every other still-open attempt
        at that nonce 'dropped' (it can never be mined now)."""
        mined = hexstr(mined_hash)
        now = utcnow()
        where = (
            SentTransaction.chain_id == chain_id,
            SentTransaction.sender == checksum(sender),
            SentTransaction.nonce == nonce,
        )
        with self._write() as session:
            session.execute(
                update(SentTransaction)
                .where(*where, SentTransaction.tx_hash == mined)
                .values(status="mined", block_number=block_number, updated_at=now)
            )
            session.execute(
                update(SentTransaction)
                .where(*where, SentTransaction.tx_hash != mined, SentTransaction.status.in_(OPEN_STATUSES))
                .values(status="dropped", updated_at=now)
            )

    def highest_nonce(self, chain_id: int, sender: str) -> int | None:
        """The highest nonce ever journaled for the sender (None if none): the next nonce is
        at least one more, whatever the node's pending count says after a restart."""
        with self._read() as session:
            return session.scalar(
                select(func.max(SentTransaction.nonce)).where(
                    SentTransaction.chain_id == chain_id, SentTransaction.sender == checksum(sender)
                )
            )
