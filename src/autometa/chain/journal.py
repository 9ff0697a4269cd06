"""The sender's journal: every signed transaction is written here *before* it is broadcast.

A restarted process reads the pending entries of its key and follows, rebroadcasts or replaces
them instead of signing a second transaction for the same work. `TxJournal` is the interface the
sender needs; `InMemoryJournal` serves tests and throw-away runs (no persistence).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

# Journal statuses.
PENDING = "pending"  # signed and (about to be) broadcast, not yet mined
MINED = "mined"  # mined with receipt status 1
REVERTED = "reverted"  # mined with receipt status 0
REPLACED = "replaced"  # another transaction with the same nonce (ours) was mined
FAILED = "failed"  # the node refused the broadcast: never in a mempool, nonce released
DROPPED = "dropped"  # the nonce was used by a transaction not in the journal

FINAL_STATUSES = frozenset({MINED, REVERTED, REPLACED, FAILED, DROPPED})


@dataclass(frozen=True)
class JournalEntry:
    """One signed transaction. `raw_tx` is the 0x-hex signed payload: enough to rebroadcast."""

    chain_id: int
    sender: str
    nonce: int
    tx_hash: str
    raw_tx: str
    tx_type: str  # "eip1559" | "legacy"
    gas_limit: int
    purpose: str
    status: str = PENDING
    max_fee_per_gas: int | None = None
    max_priority_fee_per_gas: int | None = None
    gas_price: int | None = None
    block_number: int | None = None
    replaced_by: str | None = None


@runtime_checkable
class TxJournal(Protocol):
    """Where the sender persists its transactions. Methods are synchronous and must be durable
    when they return (the sender broadcasts only after `add` returns)."""

    def add(self, entry: JournalEntry) -> None: ...

    def pending(self, chain_id: int, sender: str) -> list[JournalEntry]:
        """Entries of this key with status PENDING, by nonce then insertion order."""
        ...

    def set_status(self, tx_hash: str, status: str, block_number: int | None = None) -> None: ...

    def mark_replaced(self, tx_hash: str, replaced_by: str) -> None: ...


class InMemoryJournal:
    """A `TxJournal` in a dict. Shared by several sender instances it simulates a restart."""

    def __init__(self) -> None:
        self._entries: dict[str, JournalEntry] = {}
        self._lock = threading.Lock()

    def add(self, entry: JournalEntry) -> None:
        with self._lock:
            self._entries[entry.tx_hash.lower()] = entry

    def pending(self, chain_id: int, sender: str) -> list[JournalEntry]:
        with self._lock:
            rows = [
                e
                for e in self._entries.values()
                if e.chain_id == chain_id and e.sender.lower() == sender.lower() and e.status == PENDING
            ]
        return sorted(rows, key=lambda e: e.nonce)

    def set_status(self, tx_hash: str, status: str, block_number: int | None = None) -> None:
        with self._lock:
            key = tx_hash.lower()
            if key in self._entries:
                self._entries[key] = replace(self._entries[key], status=status, block_number=block_number)

    def mark_replaced(self, tx_hash: str, replaced_by: str) -> None:
        with self._lock:
            key = tx_hash.lower()
            if key in self._entries:
                self._entries[key] = replace(self._entries[key], status=REPLACED, replaced_by=replaced_by)

    # ------------------------------------------------------------------ for tests and tools

    def get(self, tx_hash: str) -> JournalEntry | None:
        with self._lock:
            return self._entries.get(tx_hash.lower())

    def all(self) -> list[JournalEntry]:
        with self._lock:
            return list(self._entries.values())


PURPOSE_MAX = 64  # the store's column width; the sender truncates purposes to it


class StoreJournal:
    """`TxJournal` on `autometa.store` (`Store.open(url).sent_transactions`): SQLite or
    PostgreSQL, so a restarted process finds what it signed.

    Status mapping: the store has no "reverted" status, so a mined transaction whose receipt
    failed is journaled "mined" (the nonce is used either way; the receipt holds the outcome).
    """

    def __init__(self, repository: Any) -> None:
        self.repository = repository

    @classmethod
    def open(cls, url: str, migrate: bool = True) -> StoreJournal:
        from autometa.store import Store

        return cls(Store.open(url, migrate=migrate).sent_transactions)

    def add(self, entry: JournalEntry) -> None:
        self.repository.add(
            chain_id=entry.chain_id,
            sender=entry.sender,
            nonce=entry.nonce,
            tx_hash=entry.tx_hash,
            raw_tx=entry.raw_tx,
            tx_type=entry.tx_type,
            gas_limit=entry.gas_limit,
            purpose=entry.purpose[:PURPOSE_MAX],
            max_fee_per_gas=entry.max_fee_per_gas,
            max_priority_fee_per_gas=entry.max_priority_fee_per_gas,
            gas_price=entry.gas_price,
            status=entry.status,
        )

    def pending(self, chain_id: int, sender: str) -> list[JournalEntry]:
        return [
            JournalEntry(
                chain_id=int(row.chain_id),
                sender=str(row.sender),
                nonce=int(row.nonce),
                tx_hash=str(row.tx_hash),
                raw_tx=str(row.raw_tx),
                tx_type=str(row.tx_type),
                gas_limit=int(row.gas_limit),
                purpose=str(row.purpose),
                status=str(row.status),
                max_fee_per_gas=row.max_fee_per_gas,
                max_priority_fee_per_gas=row.max_priority_fee_per_gas,
                gas_price=row.gas_price,
                block_number=row.block_number,
                replaced_by=row.replaced_by,
            )
            for row in self.repository.pending(chain_id, sender)
        ]

    def set_status(self, tx_hash: str, status: str, block_number: int | None = None) -> None:
        self.repository.set_status(tx_hash, MINED if status == REVERTED else status, block_number)

    def mark_replaced(self, tx_hash: str, replaced_by: str) -> None:
        try:
            done = self.repository.mark_replaced(tx_hash, replaced_by)
        except (LookupError, ValueError):
            done = False
        if not done:
            self.repository.set_status(tx_hash, REPLACED)
