"""Indexer progress and the recent block hashes it checks for reorgs."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select

from autometa.store.base import Repository, upsert
from autometa.store.models import BlockHash, Checkpoint
from autometa.store.types import hexstr, utcnow


class CheckpointRepository(Repository):
    """Checkpoints named per chain (chain 0: not about a chain) plus a sliding window of
    canonical block hashes per chain."""

    def get(self, chain_id: int, name: str) -> Checkpoint | None:
        with self._read() as session:
            return session.get(Checkpoint, (chain_id, name))

    def set(self, chain_id: int, name: str, block: int, block_hash: str | bytes | None = None) -> Checkpoint:
        """Move a checkpoint (forwards, or backwards after a reorg)."""
        values = {
            "chain_id": chain_id,
            "name": name,
            "block_number": block,
            "block_hash": hexstr(block_hash) if block_hash is not None else None,
            "updated_at": utcnow(),
        }
        with self._write() as session:
            upsert(session, Checkpoint, values, keys=["chain_id", "name"])
        got = self.get(chain_id, name)
        assert got is not None
        return got

    def delete(self, chain_id: int, name: str) -> bool:
        with self._write() as session:
            result = session.execute(delete(Checkpoint).where(Checkpoint.chain_id == chain_id, Checkpoint.name == name))
            return bool(getattr(result, "rowcount", 0))

    def remember_block(self, chain_id: int, number: int, block_hash: str | bytes) -> None:
        """Record the canonical hash at a height (a new hash at a known height replaces it)."""
        self.remember_blocks(chain_id, [(number, block_hash)])

    def remember_blocks(self, chain_id: int, blocks: Iterable[tuple[int, str | bytes]]) -> None:
        """``remember_block`` for a batch, in one transaction."""
        rows = [{"chain_id": chain_id, "block_number": n, "block_hash": hexstr(h)} for n, h in blocks]
        if not rows:
            return
        with self._write() as session:
            for values in rows:
                upsert(session, BlockHash, values, keys=["chain_id", "block_number"])

    def block_hash(self, chain_id: int, number: int) -> str | None:
        with self._read() as session:
            row = session.get(BlockHash, (chain_id, number))
            return row.block_hash if row is not None else None

    def recent_blocks(self, chain_id: int, limit: int = 128) -> list[tuple[int, str]]:
        """Remembered (number, hash) pairs, highest first: walk them back against the node to
        find the last common ancestor after a reorg."""
        with self._read() as session:
            rows = session.execute(
                select(BlockHash.block_number, BlockHash.block_hash)
                .where(BlockHash.chain_id == chain_id)
                .order_by(BlockHash.block_number.desc())
                .limit(limit)
            ).all()
            return [(int(n), str(h)) for n, h in rows]

    def forget_from(self, chain_id: int, block: int) -> int:
        """Reorg rollback: drop hashes at or after ``block`` (they are no longer canonical)."""
        with self._write() as session:
            result = session.execute(
                delete(BlockHash).where(BlockHash.chain_id == chain_id, BlockHash.block_number >= block)
            )
            return int(getattr(result, "rowcount", 0))

    def prune(self, chain_id: int, below: int) -> int:
        """Drop hashes of blocks below ``below``: deeper than any reorg we still handle."""
        with self._write() as session:
            result = session.execute(
                delete(BlockHash).where(BlockHash.chain_id == chain_id, BlockHash.block_number < below)
            )
            return int(getattr(result, "rowcount", 0))
