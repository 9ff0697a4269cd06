"""Webhook signatures: HMAC-SHA256 over ``"{timestamp}.{body}"``, in three headers.

    Autometa-Webhook-Id         the event's idempotency key (same on every retry and re-send)
    Autometa-Webhook-Timestamp  unix seconds when this attempt was signed
    Autometa-Webhook-Signature  "v1=" + hex HMAC-SHA256(secret, timestamp + "." + raw body)

A receiver recomputes the HMAC over the raw body bytes, compares in constant time, refuses a
timestamp outside its replay window (default 300 s either way) and drops an id it has already
processed. ``verify`` does the first three; it is what our own tests' receiver uses.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

ID_HEADER = "Autometa-Webhook-Id"
TIMESTAMP_HEADER = "Autometa-Webhook-Timestamp"
SIGNATURE_HEADER = "Autometa-Webhook-Signature"
EVENT_HEADER = "Autometa-Event"
SCHEME = "v1"
REPLAY_WINDOW_S = 300


class SignatureError(ValueError):
    """A webhook whose signature, timestamp or headers do not check out."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def signed_headers(secret: str, event_id: str, kind: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json",
        ID_HEADER: event_id,
        TIMESTAMP_HEADER: str(ts),
        SIGNATURE_HEADER: sign(secret, ts, body),
        EVENT_HEADER: kind,
        "User-Agent": "Autometa-Webhooks/1",
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: int = REPLAY_WINDOW_S,
    now: float | None = None,
) -> str:
    """Check a received webhook; returns its idempotency key, or raises SignatureError."""
    lower = {k.lower(): v for k, v in headers.items()}
    event_id = lower.get(ID_HEADER.lower())
    raw_ts = lower.get(TIMESTAMP_HEADER.lower())
    given = lower.get(SIGNATURE_HEADER.lower())
    if not event_id or not raw_ts or not given:
        raise SignatureError("missing Autometa-Webhook-Id, -Timestamp or -Signature header")
    try:
        ts = int(raw_ts)
    except ValueError:
        raise SignatureError("the timestamp is not an integer") from None
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_s:
        raise SignatureError(f"the timestamp is outside the {tolerance_s} s replay window")
    expected = sign(secret, ts, body)
    # Several signatures may be sent space-separated while a secret is being rotated.
    if not any(hmac.compare_digest(expected, candidate) for candidate in given.split()):
        raise SignatureError("the signature does not match")
    return event_id
