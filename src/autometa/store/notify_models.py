"""Notification tables: subscriptions, the event outbox, one delivery per (event, subscription)
and the attempt log. Written by the store's fact writers (in the fact's own transaction) and by
the delivery workers; see ``autometa.notify``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from autometa.store.models import Base
from autometa.store.types import BigIntPK, JSONDoc, UTCDateTime, utcnow


class NotifySubscription(Base):
    """Who wants which events, where. ``owner`` is None for operator subscriptions (from the
    configuration, keyed by ``name``). ``target`` and ``secret`` are secrets: never logged or
    returned by the API (views show ``target_hint`` only)."""

    __tablename__ = "notify_subscriptions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    owner: Mapped[str | None] = mapped_column(String(42), nullable=True)
    name: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(Text)
    target_hint: Mapped[str] = mapped_column(String(255))
    secret: Mapped[str | None] = mapped_column(Text, nullable=True)
    events: Mapped[list[str]] = mapped_column(JSONDoc)
    workflow_ids: Mapped[list[int] | None] = mapped_column(JSONDoc, nullable=True)
    runway_runs: Mapped[int] = mapped_column(Integer, default=3)
    runway_days: Mapped[float] = mapped_column(Float, default=1.0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index(None, "chain_id", "owner", "active"), UniqueConstraint("owner", "name"))


class NotifyEvent(Base):
    """One fact worth telling, written once: ``key`` is the idempotency key receivers see."""

    __tablename__ = "notify_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(48))
    owner: Mapped[str | None] = mapped_column(String(42), nullable=True)
    workflow_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index(None, "chain_id", "kind", "created_at"),)


class NotifyDelivery(Base):
    """The outbox row a worker claims: 'pending' until 'delivered', or 'dead' after the last
    attempt. A claim is a lease (``lease_token`` until ``lease_until``), so a worker killed
    mid-delivery only delays the row until the lease runs out."""

    __tablename__ = "notify_deliveries"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(BigInteger)
    subscription_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_token: Mapped[str | None] = mapped_column(String(36), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("event_id", "subscription_id"),
        Index(None, "status", "next_attempt_at"),
        Index(None, "subscription_id", "id"),
    )


class NotifyAttempt(Base):
    """The delivery log: one row per attempt with its outcome and reason."""

    __tablename__ = "notify_attempts"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(BigInteger)
    subscription_id: Mapped[int] = mapped_column(BigInteger)
    attempt: Mapped[int] = mapped_column(Integer)
    ok: Mapped[bool] = mapped_column(Boolean)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    duration_ms: Mapped[float] = mapped_column(Float)
    worker: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index(None, "subscription_id", "id"), Index(None, "delivery_id"))


class NotifyIntent(Base):
    """Nonces of signed notification intents already used, so a signature works once."""

    __tablename__ = "notify_intents"

    owner: Mapped[str] = mapped_column(String(42), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(78), primary_key=True)
    action: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
