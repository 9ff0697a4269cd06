"""The webhook signature scheme a receiver checks (README's header scheme): what `verify`
refuses — a tampered body, a re-signed timestamp, a replay outside the window, another secret,
missing headers — and what it accepts, including two signatures while a secret is rotated."""

from __future__ import annotations

import pytest

from autometa.notify.signing import (
    REPLAY_WINDOW_S,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    sign,
    signed_headers,
    verify,
)

SECRET = "whsec-test-4f1c"
BODY = b'{"kind":"run.executed","workflow_id":7}'
T0 = 1_800_000_000


def headers(**overrides: str) -> dict[str, str]:
    return {**signed_headers(SECRET, "evt-1", "run.executed", BODY, timestamp=T0), **overrides}


def test_a_genuine_webhook_verifies_to_its_idempotency_key() -> None:
    assert verify(SECRET, headers(), BODY, now=T0 + 5) == "evt-1"
    lowercase = {k.lower(): v for k, v in headers().items()}  # proxies may lower-case header names
    assert verify(SECRET, lowercase, BODY, now=T0) == "evt-1"


@pytest.mark.parametrize(
    "body",
    [BODY.replace(b"7", b"8"), BODY + b" ", b""],
    ids=["changed", "appended", "empty"],
)
def test_a_tampered_body_is_refused(body: bytes) -> None:
    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, headers(), body, now=T0)


def test_a_changed_timestamp_breaks_the_signature() -> None:
    """The timestamp is signed: moving it into the window does not make an old request valid."""
    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, headers(**{TIMESTAMP_HEADER: str(T0 + 1000)}), BODY, now=T0 + 1000)


@pytest.mark.parametrize("skew", [REPLAY_WINDOW_S + 1, -(REPLAY_WINDOW_S + 1), 86_400])
def test_a_replay_outside_the_window_is_refused(skew: int) -> None:
    with pytest.raises(SignatureError, match="replay window"):
        verify(SECRET, headers(), BODY, now=T0 + skew)
    assert verify(SECRET, headers(), BODY, now=T0 + (REPLAY_WINDOW_S if skew > 0 else -REPLAY_WINDOW_S)) == "evt-1"


def test_another_secret_is_refused_and_a_rotation_pair_is_accepted() -> None:
    with pytest.raises(SignatureError, match="does not match"):
        verify("whsec-other", headers(), BODY, now=T0)
    both = f"{sign('whsec-old', T0, BODY)} {sign(SECRET, T0, BODY)}"
    assert verify(SECRET, headers(**{SIGNATURE_HEADER: both}), BODY, now=T0) == "evt-1"


@pytest.mark.parametrize("drop", ["Autometa-Webhook-Id", TIMESTAMP_HEADER, SIGNATURE_HEADER])
def test_a_missing_header_is_refused(drop: str) -> None:
    partial = {k: v for k, v in headers().items() if k != drop}
    with pytest.raises(SignatureError, match="missing"):
        verify(SECRET, partial, BODY, now=T0)


def test_a_timestamp_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(SignatureError, match="not an integer"):
        verify(SECRET, headers(**{TIMESTAMP_HEADER: "soon"}), BODY, now=T0)
