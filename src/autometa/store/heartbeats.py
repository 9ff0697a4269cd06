"""Worker liveness, for `autometa status` and the API's health view."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from autometa.store.base import Repository, upsert
from autometa.store.models import Heartbeat
from autometa.store.types import checksum, to_utc, utcnow

ROLES = ("executor", "scheduler", "api", "indexer")


class HeartbeatRepository(Repository):
    """One row per (chain, worker id), overwritten on every beat; chain 0 for a process bound
    to no chain (the API, the notification worker)."""

    def beat(
        self,
        chain_id: int,
        worker_id: str,
        role: str,
        address: str | None = None,
        version: str | None = None,
        *,
        host: str | None = None,
        pid: int | None = None,
        extra: dict[str, Any] | None = None,
        started_at: datetime | None = None,
        now: datetime | None = None,
    ) -> Heartbeat:
        """Record that ``worker_id`` is alive. ``started_at`` defaults to the first beat and is
        kept on later beats unless given (a restarted process passes its new start time)."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        seen = to_utc(now) if now is not None else utcnow()
        values: dict[str, Any] = {
            "chain_id": chain_id,
            "worker_id": worker_id,
            "role": role,
            "address": checksum(address) if address is not None else None,
            "version": version,
            "host": host,
            "pid": pid,
            "extra": extra,
            "started_at": to_utc(started_at) if started_at is not None else seen,
            "last_seen": seen,
        }
        update = [k for k in values if k != "started_at" or started_at is not None]
        with self._write() as session:
            upsert(session, Heartbeat, values, keys=["chain_id", "worker_id"], update=update)
        got = self.get(chain_id, worker_id)
        assert got is not None
        return got

    def get(self, chain_id: int, worker_id: str) -> Heartbeat | None:
        with self._read() as session:
            return session.get(Heartbeat, (chain_id, worker_id))

    def active(
        self,
        within_seconds: float,
        role: str | None = None,
        now: datetime | None = None,
        *,
        chain_id: int | None = None,
    ) -> list[Heartbeat]:
        """Workers seen in the last ``within_seconds``, most recently seen first; on one chain
        or, without ``chain_id``, on all."""
        cutoff = (to_utc(now) if now is not None else utcnow()) - timedelta(seconds=within_seconds)
        stmt = select(Heartbeat).where(Heartbeat.last_seen >= cutoff)
        if role is not None:
            stmt = stmt.where(Heartbeat.role == role)
        if chain_id is not None:
            stmt = stmt.where(Heartbeat.chain_id == chain_id)
        with self._read() as session:
            return list(session.scalars(stmt.order_by(Heartbeat.last_seen.desc(), Heartbeat.worker_id)).all())

    def all(self) -> list[Heartbeat]:
        with self._read() as session:
            return list(session.scalars(select(Heartbeat).order_by(Heartbeat.chain_id, Heartbeat.worker_id)).all())

    def remove(self, chain_id: int, worker_id: str) -> bool:
        """A clean shutdown removes its row, so it is not reported as a dead worker."""
        with self._write() as session:
            result = session.execute(
                delete(Heartbeat).where(Heartbeat.chain_id == chain_id, Heartbeat.worker_id == worker_id)
            )
            return bool(getattr(result, "rowcount", 0))

    def prune(self, older_than_seconds: float, now: datetime | None = None) -> int:
        """Forget workers silent for longer than ``older_than_seconds``."""
        cutoff = (to_utc(now) if now is not None else utcnow()) - timedelta(seconds=older_than_seconds)
        with self._write() as session:
            result = session.execute(delete(Heartbeat).where(Heartbeat.last_seen < cutoff))
            return int(getattr(result, "rowcount", 0))
