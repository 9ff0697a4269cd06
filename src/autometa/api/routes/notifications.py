"""Notifications: owners' subscriptions (created, deleted and re-sent with the owner's EIP-712
signature), their delivery log, and the event kinds on offer.

Targets and secrets go in and never come out: listings show ``target_hint`` (scheme and host,
or a masked email) and errors name the field, not its value.
"""

from __future__ import annotations

import secrets as random_secrets
import time
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from autometa.api.deps import ChainDep, RelayerGuard, SettingsDep, StoreDep
from autometa.api.errors import ApiError, invalid
from autometa.api.schemas import ErrorOut, Signature
from autometa.domain.types import Address
from autometa.notify.intents import intent_typed_data, recover
from autometa.notify.operator import check_target
from autometa.notify.targets import AddressGuard, TargetError, hint, parse_networks
from autometa.store.notifications import CHANNELS, EVENT_KINDS, OPERATOR_EVENTS, OWNER_EVENTS
from autometa.store.notify_models import NotifyDelivery, NotifyEvent, NotifySubscription

router = APIRouter(prefix="/api/notifications", tags=["notifications"])

DEADLINE_S = 3600
MAX_DEADLINE_S = 7 * 24 * 3600
MAX_SUBSCRIPTIONS_PER_OWNER = 50
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
_REFUSALS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 401, 403, 404, 409, 422, 429, 503)
}


class SubscriptionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owner: Address
    channel: Literal["webhook", "email", "apprise"]
    target: str = Field(min_length=1, max_length=2048, description="webhook URL, email address or apprise URL")
    secret: str | None = Field(default=None, max_length=256, description="webhook signing key (≥ 16 characters)")
    events: list[str] = Field(min_length=1, max_length=len(EVENT_KINDS) + 1)
    workflow_ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] | None = Field(default=None, max_length=1000)
    runway_runs: int | None = Field(default=None, ge=0, le=10**6, description="default NOTIFY_RUNWAY_RUNS")
    runway_days: float | None = Field(default=None, ge=0, le=3650, description="default NOTIFY_RUNWAY_DAYS")
    name: str = Field(default="", max_length=64)

    def commitment(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class SignedBody(BaseModel):
    signature: Signature
    nonce: int = Field(ge=0, lt=2**256)
    deadline: int = Field(ge=0, lt=2**256)


class SubscribeRequest(SubscriptionConfig, SignedBody):
    pass


class OwnerBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    owner: Address


class OwnerSignedBody(OwnerBody, SignedBody):
    pass


class PreparedNotificationIntent(BaseModel):
    typed_data: dict[str, Any]
    nonce: int
    deadline: int


class SubscriptionOut(BaseModel):
    id: int
    chain_id: int
    owner: str | None
    name: str
    channel: str
    target_hint: str
    events: list[str]
    workflow_ids: list[int] | None
    runway_runs: int
    runway_days: float
    active: bool
    created_at: datetime


class DeliveryOut(BaseModel):
    id: int
    event_key: str
    event_type: str
    workflow_id: int | None
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    event: dict[str, Any]


class DeliveryListOut(BaseModel):
    subscription_id: int
    deliveries: list[DeliveryOut]
    total: int
    offset: int
    limit: int


class AttemptOut(BaseModel):
    attempt: int
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: float
    started_at: datetime


class EventKindsOut(BaseModel):
    owner_events: dict[str, str]
    operator_events: dict[str, str]
    channels: list[str]
    header_scheme: dict[str, str]


def subscription_view(sub: NotifySubscription) -> SubscriptionOut:
    return SubscriptionOut(
        id=sub.id,
        chain_id=sub.chain_id,
        owner=sub.owner,
        name=sub.name,
        channel=sub.channel,
        target_hint=sub.target_hint,
        events=list(sub.events),
        workflow_ids=sub.workflow_ids,
        runway_runs=sub.runway_runs,
        runway_days=sub.runway_days,
        active=sub.active,
        created_at=sub.created_at,
    )


def delivery_view(d: NotifyDelivery, e: NotifyEvent) -> DeliveryOut:
    return DeliveryOut(
        id=d.id,
        event_key=e.key,
        event_type=e.kind,
        workflow_id=e.workflow_id,
        status=d.status,
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
        last_status_code=d.last_status_code,
        last_error=d.last_error,
        delivered_at=d.delivered_at,
        created_at=d.created_at,
        event=dict(e.payload),
    )


async def _validate(config: SubscriptionConfig, settings: Any) -> str:
    unknown = [k for k in config.events if k != "*" and k not in EVENT_KINDS]
    if unknown:
        raise invalid("events", f"unknown event kind(s) {', '.join(unknown)}; see GET /api/notifications/events")
    if any(k in OPERATOR_EVENTS for k in config.events):
        raise invalid("events", "operator events are for the operator's subscriptions (configuration)")
    if config.channel == "email" and settings.NOTIFY_SMTP_URL is None:
        raise invalid("channel", "email is not offered by this deployment (NOTIFY_SMTP_URL is not set)")
    try:
        target = check_target(config.channel, config.target, config.secret, operator=False)
        if config.channel == "webhook":
            guard = AddressGuard(parse_networks(settings.NOTIFY_ALLOW_PRIVATE_TARGETS))
            from urllib.parse import urlsplit

            parts = urlsplit(target)
            await guard.resolve(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
    except TargetError as exc:
        field = "secret" if "secret" in str(exc) else "target"
        raise invalid(field, str(exc)) from None
    return target


def _check_deadline(deadline: int) -> None:
    now = int(time.time())
    if deadline <= now:
        raise ApiError(400, "expired", "deadline: it has passed; prepare again", field="deadline")
    if deadline > now + MAX_DEADLINE_S:
        raise invalid("deadline", f"at most {MAX_DEADLINE_S} s ahead")


async def _verify(chain: ChainDep, body: SignedBody, owner: str, **fields: Any) -> int:
    """Recover the signer of the intent; 401 unless it is ``owner``. Returns the chain id."""
    _check_deadline(body.deadline)
    info = await chain.info()
    typed = intent_typed_data(
        owner=owner, chain_id=info.chain_id, contract=info.contract, nonce=body.nonce, deadline=body.deadline, **fields
    )
    try:
        signer = recover(typed, body.signature)
    except Exception:
        raise ApiError(
            401, "bad_signature", "signature: not a valid signature of this intent", field="signature"
        ) from None
    if signer != owner:
        raise ApiError(
            401,
            "bad_signature",
            "signature: not signed by the owner (the intent or its fields differ)",
            field="signature",
        )
    return info.chain_id


async def _prepare(chain: ChainDep, owner: str, **fields: Any) -> PreparedNotificationIntent:
    info = await chain.info()
    nonce, deadline = random_secrets.randbits(128), int(time.time()) + DEADLINE_S
    typed = intent_typed_data(
        owner=owner, chain_id=info.chain_id, contract=info.contract, nonce=nonce, deadline=deadline, **fields
    )
    return PreparedNotificationIntent(typed_data=typed, nonce=nonce, deadline=deadline)


async def _use_nonce(store: StoreDep, owner: str, nonce: int, action: str) -> None:
    if not await run_in_threadpool(store.notifications.use_nonce, owner, nonce, action):
        raise ApiError(409, "nonce_used", "nonce: this signed intent was already used; prepare again", field="nonce")


async def _owned_subscription(store: StoreDep, subscription_id: int, owner: str | None = None) -> NotifySubscription:
    sub = await run_in_threadpool(store.notifications.get_subscription, subscription_id)
    if sub is None or sub.owner is None:  # the operator's are not served here
        raise ApiError(404, "not_found", f"subscription {subscription_id} does not exist")
    if owner is not None and sub.owner != owner:
        raise ApiError(403, "not_owner", "owner: this subscription belongs to another address", field="owner")
    return sub


def _intent_fields(config: SubscriptionConfig) -> dict[str, Any]:
    return {
        "action": "subscribe",
        "channel": config.channel,
        "events": config.events,
        "workflow_ids": config.workflow_ids,
        "config": config.commitment(),
    }


@router.get("/events", response_model=EventKindsOut)
async def event_kinds(settings: SettingsDep) -> EventKindsOut:
    """What can be subscribed to, through which channels, and the webhook header scheme."""
    from autometa.notify import signing

    channels = [c for c in CHANNELS if c != "email" or settings.NOTIFY_SMTP_URL is not None]
    return EventKindsOut(
        owner_events=OWNER_EVENTS,
        operator_events=OPERATOR_EVENTS,
        channels=channels,
        header_scheme={
            signing.ID_HEADER: "the event's idempotency key (same on retries and re-sends)",
            signing.TIMESTAMP_HEADER: "unix seconds of this attempt",
            signing.SIGNATURE_HEADER: "v1=hex(HMAC-SHA256(secret, timestamp + '.' + raw body))",
            "replay_window_s": str(signing.REPLAY_WINDOW_S),
        },
    )


@router.post(
    "/subscriptions/prepare",
    response_model=PreparedNotificationIntent,
    dependencies=[RelayerGuard],
    responses=_REFUSALS,
)
async def prepare_subscribe(
    body: SubscriptionConfig, store: StoreDep, chain: ChainDep, settings: SettingsDep
) -> PreparedNotificationIntent:
    """Check a subscription and return the typed data for the owner to sign (eth_signTypedData_v4)."""
    await _validate(body, settings)
    return await _prepare(chain, body.owner, **_intent_fields(body))


@router.post(
    "/subscriptions", response_model=SubscriptionOut, status_code=201, dependencies=[RelayerGuard], responses=_REFUSALS
)
async def subscribe(body: SubscribeRequest, store: StoreDep, chain: ChainDep, settings: SettingsDep) -> SubscriptionOut:
    """Create a subscription signed by its owner. The target and secret are never shown again."""
    config = SubscriptionConfig.model_validate(body.model_dump(exclude={"signature", "nonce", "deadline"}))
    target = await _validate(config, settings)
    chain_id = await _verify(chain, body, config.owner, **_intent_fields(config))
    existing = await run_in_threadpool(store.notifications.list_subscriptions, owner=config.owner)
    if len(existing) >= MAX_SUBSCRIPTIONS_PER_OWNER:
        raise ApiError(409, "too_many", f"an owner may have at most {MAX_SUBSCRIPTIONS_PER_OWNER} subscriptions")
    await _use_nonce(store, config.owner, body.nonce, "subscribe")
    name = config.name or f"{config.channel}-{body.nonce % 10**8}"
    if any(s.name == name for s in existing):
        raise invalid("name", "you already have a subscription with this name", status=409)
    sub = await run_in_threadpool(
        lambda: store.notifications.subscribe(
            chain_id=chain_id,
            owner=config.owner,
            name=name,
            channel=config.channel,
            target=target,
            target_hint=hint(config.channel, target),
            secret=config.secret,
            events=config.events,
            workflow_ids=config.workflow_ids,
            runway_runs=config.runway_runs if config.runway_runs is not None else settings.NOTIFY_RUNWAY_RUNS,
            runway_days=config.runway_days if config.runway_days is not None else settings.NOTIFY_RUNWAY_DAYS,
        )
    )
    return subscription_view(sub)


@router.get("/subscriptions", response_model=list[SubscriptionOut], responses={422: {"model": ErrorOut}})
async def list_subscriptions(
    owner: Annotated[Address, Query(description="the owner")],
    store: StoreDep,
    include_inactive: bool = False,
) -> list[SubscriptionOut]:
    """An owner's subscriptions (targets shown as hints only)."""
    subs = await run_in_threadpool(
        lambda: store.notifications.list_subscriptions(owner=owner, include_inactive=include_inactive)
    )
    return [subscription_view(s) for s in subs]


@router.get("/subscriptions/{subscription_id:int}", response_model=SubscriptionOut, responses=_REFUSALS)
async def get_subscription(subscription_id: Id, store: StoreDep) -> SubscriptionOut:
    return subscription_view(await _owned_subscription(store, subscription_id))


@router.post(
    "/subscriptions/{subscription_id:int}/delete/prepare",
    response_model=PreparedNotificationIntent,
    dependencies=[RelayerGuard],
    responses=_REFUSALS,
)
async def prepare_unsubscribe(
    subscription_id: Id, body: OwnerBody, store: StoreDep, chain: ChainDep
) -> PreparedNotificationIntent:
    await _owned_subscription(store, subscription_id, body.owner)
    return await _prepare(chain, body.owner, action="unsubscribe", subscription_id=subscription_id)


@router.delete(
    "/subscriptions/{subscription_id:int}",
    response_model=SubscriptionOut,
    dependencies=[RelayerGuard],
    responses=_REFUSALS,
)
async def unsubscribe(subscription_id: Id, body: OwnerSignedBody, store: StoreDep, chain: ChainDep) -> SubscriptionOut:
    """Delete (deactivate) a subscription: pending deliveries are cancelled, the log stays."""
    await _owned_subscription(store, subscription_id, body.owner)
    await _verify(chain, body, body.owner, action="unsubscribe", subscription_id=subscription_id)
    await _use_nonce(store, body.owner, body.nonce, "unsubscribe")
    await run_in_threadpool(store.notifications.unsubscribe, subscription_id)
    return subscription_view(await _owned_subscription(store, subscription_id))


@router.get("/subscriptions/{subscription_id:int}/deliveries", response_model=DeliveryListOut, responses=_REFUSALS)
async def deliveries(
    subscription_id: Id,
    store: StoreDep,
    status: Annotated[Literal["pending", "delivered", "dead", "cancelled"] | None, Query()] = None,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> DeliveryListOut:
    """The delivery log of a subscription, newest first: status, attempts, last error."""
    await _owned_subscription(store, subscription_id)
    page = await run_in_threadpool(
        lambda: store.notifications.deliveries(subscription_id, status=status, offset=offset, limit=limit)
    )
    return DeliveryListOut(
        subscription_id=subscription_id,
        deliveries=[delivery_view(d, e) for d, e in page.items],
        total=page.total,
        offset=page.offset,
        limit=page.limit,
    )


@router.get("/deliveries/{delivery_id:int}/attempts", response_model=list[AttemptOut], responses=_REFUSALS)
async def attempts(delivery_id: Id, store: StoreDep) -> list[AttemptOut]:
    """Every attempt of one delivery, with its outcome and reason."""
    d = await run_in_threadpool(store.notifications.get_delivery, delivery_id)
    if d is None:
        raise ApiError(404, "not_found", f"delivery {delivery_id} does not exist")
    await _owned_subscription(store, d.subscription_id)
    rows = await run_in_threadpool(store.notifications.attempts, delivery_id)
    return [
        AttemptOut(
            attempt=a.attempt,
            ok=a.ok,
            status_code=a.status_code,
            error=a.error,
            duration_ms=a.duration_ms,
            started_at=a.started_at,
        )
        for a in rows
    ]


async def _owned_delivery(store: StoreDep, delivery_id: int, owner: str) -> None:
    d = await run_in_threadpool(store.notifications.get_delivery, delivery_id)
    if d is None:
        raise ApiError(404, "not_found", f"delivery {delivery_id} does not exist")
    await _owned_subscription(store, d.subscription_id, owner)


@router.post(
    "/deliveries/{delivery_id:int}/resend/prepare",
    response_model=PreparedNotificationIntent,
    dependencies=[RelayerGuard],
    responses=_REFUSALS,
)
async def prepare_resend(
    delivery_id: Id, body: OwnerBody, store: StoreDep, chain: ChainDep
) -> PreparedNotificationIntent:
    await _owned_delivery(store, delivery_id, body.owner)
    return await _prepare(chain, body.owner, action="resend", delivery_id=delivery_id)


@router.post("/deliveries/{delivery_id:int}/resend", status_code=202, dependencies=[RelayerGuard], responses=_REFUSALS)
async def resend(delivery_id: Id, body: OwnerSignedBody, store: StoreDep, chain: ChainDep) -> dict[str, Any]:
    """Send a delivery again (delivered or dead-lettered) with a fresh attempt budget; the
    receiver sees the same idempotency key."""
    await _owned_delivery(store, delivery_id, body.owner)
    await _verify(chain, body, body.owner, action="resend", delivery_id=delivery_id)
    await _use_nonce(store, body.owner, body.nonce, "resend")
    if not await run_in_threadpool(store.notifications.resend, delivery_id):
        raise ApiError(409, "inactive", "the subscription of this delivery was deleted")
    return {"delivery_id": delivery_id, "status": "pending"}
