"""Delivery against a real local receiver and a real local SMTP server: signatures, retries,
dead letters, every kind of bad target recorded with its reason, no secret anywhere."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from structlog.testing import capture_logs

from autometa.notify.targets import AddressGuard, parse_networks
from autometa.notify.worker import DeliveryConfig, DeliveryWorker
from autometa.store import Store
from tests.notify.conftest import SECRET
from tests.notify.helpers import CHAIN, OWNER, add_workflow, record_run
from tests.notify.receiver import Receiver

LOOPBACK = AddressGuard(parse_networks(["127.0.0.0/8"]))
FAST = DeliveryConfig(
    concurrency=8,
    poll_s=0.05,
    lease_s=5,
    max_attempts=3,
    backoff_base_s=0.05,
    backoff_max_s=0.2,
    timeout_s=1.0,
    max_response_bytes=4096,
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(f"sqlite:///{tmp_path / 'n.db'}") as s:
        add_workflow(s)
        yield s


def _sub(store: Store, target: str, channel: str = "webhook", secret: str | None = SECRET) -> int:
    sub = store.notifications.subscribe(
        chain_id=CHAIN,
        owner=OWNER,
        name=target[:60],
        channel=channel,
        target=target,
        target_hint="hidden",
        secret=secret,
        events=["*"],
    )
    return int(sub.id)


async def _deliver_until(
    store: Store,
    done: Any,
    *,
    guard: AddressGuard = LOOPBACK,
    config: DeliveryConfig = FAST,
    smtp_url: str | None = None,
    timeout: float = 20,
) -> DeliveryWorker:
    worker = DeliveryWorker(store, config, guard=guard, smtp_url=smtp_url)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    deadline = asyncio.get_running_loop().time() + timeout
    while not done() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    stop.set()
    await task
    return worker


def _deliveries(store: Store, sub: int) -> list[Any]:
    return [d for d, _ in store.notifications.deliveries(sub).items]


async def test_signed_webhook_is_delivered_and_verifies(store: Store, receiver: Receiver) -> None:
    sub = _sub(store, receiver.url)
    record_run(store, 1, 0, status="failed", revert_reason=b"\x01")
    await _deliver_until(store, lambda: receiver.keys)
    [key] = receiver.keys
    assert key == f"run.failed:{CHAIN}:1:0:0x{1:032x}{0:032x}"
    assert receiver.bodies[key]["data"]["revert_reason"] == "0x01" and receiver.bad_signatures == 0
    [d] = _deliveries(store, sub)
    assert d.status == "delivered" and d.attempts == 1 and d.last_status_code == 200


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("error", "HTTP 500"),
        ("slow", "timed out after 1 s"),
        ("redirect", "redirect refused: 10.255.255.1"),
        ("huge", "response larger than 4096 bytes"),
    ],
)
async def test_bad_receivers_are_retried_then_dead_lettered(
    store: Store, receiver: Receiver, mode: str, reason: str
) -> None:
    receiver.mode, receiver.slow_s = mode, 3.0
    sub = _sub(store, receiver.url)
    record_run(store, 1, 0)
    await _deliver_until(store, lambda: _deliveries(store, sub)[0].status == "dead")
    [d] = _deliveries(store, sub)
    assert d.status == "dead" and d.attempts == FAST.max_attempts
    assert reason in (d.last_error or "")
    attempts = store.notifications.attempts(d.id)
    assert [a.attempt for a in attempts] == [1, 2, 3] and not any(a.ok for a in attempts)
    if mode != "slow":  # a slow receiver still handles what we gave up waiting for: the key dedups it
        assert receiver.keys == {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_unreachable_and_private_targets(store: Store) -> None:
    down = _sub(store, f"http://127.0.0.1:{_free_port()}/hook")
    private = _sub(store, "http://192.168.77.1/hook")
    record_run(store, 1, 0)
    await _deliver_until(store, lambda: all(_deliveries(store, s)[0].status == "dead" for s in (down, private)))
    assert "unreachable" in (_deliveries(store, down)[0].last_error or "")
    assert "192.168.77.1, a private/loopback/reserved address: refused" in (
        _deliveries(store, private)[0].last_error or ""
    )
    # Loopback is refused too unless the operator allows it.
    guard = AddressGuard()
    with pytest.raises(ValueError, match="refused"):
        await guard.resolve("localhost", 80)


async def test_failure_then_recovery_and_resend(store: Store, receiver: Receiver) -> None:
    receiver.mode = "error"
    sub = _sub(store, receiver.url)
    record_run(store, 1, 0)
    config = DeliveryConfig(**{**FAST.__dict__, "max_attempts": 50})
    worker = DeliveryWorker(store, config, guard=LOOPBACK)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    while _deliveries(store, sub)[0].attempts < 2:
        await asyncio.sleep(0.05)
    receiver.mode = "ok"
    while _deliveries(store, sub)[0].status != "delivered":
        await asyncio.sleep(0.05)
    [d] = _deliveries(store, sub)
    assert store.notifications.resend(d.id)  # on request: the same key once more
    while sum(receiver.keys.values()) < 2:
        await asyncio.sleep(0.05)
    stop.set()
    await task
    assert list(receiver.keys.values()) == [2]  # one key: the receiver can tell it is a re-send


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd API
        self.messages.append(envelope)
        return "250 OK"


async def test_email_through_a_local_smtp_server(store: Store) -> None:
    inbox = _Inbox()
    port = _free_port()
    smtp = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        auth_require_tls=False,
        authenticator=lambda *_: AuthResult(success=True),
    )
    smtp.start()
    try:
        sub = _sub(store, "owner@example.org", channel="email", secret=None)
        record_run(store, 1, 0, status="skipped", skip_reason="insufficient_escrow")
        password = "smtp-pass-Secret-42"
        url = f"mailto://127.0.0.1:{port}?mode=insecure&from=autometa@example.net&user=ops&pass={password}"
        with capture_logs() as logs:
            await _deliver_until(
                store,
                lambda: _deliveries(store, sub)[0].status == "delivered",
                smtp_url=url,
                config=DeliveryConfig(**{**FAST.__dict__, "timeout_s": 10}),
            )
        [msg] = inbox.messages
        assert msg.rcpt_tos == ["owner@example.org"]
        assert b"run.skipped" in msg.content and b"insufficient_escrow" in msg.content
        assert _deliveries(store, sub)[0].status == "delivered"
        assert password not in repr(logs)
    finally:
        smtp.stop()


async def test_secrets_never_in_errors_logs_or_log_records(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    token = "123456789:AAE-bot-Token-Secret"
    chat = _sub(store, f"tgram://{token}/424242", channel="apprise", secret=None)
    hook_secret = "whsec_do_not_leak_0123456789"
    hook = _sub(store, f"http://127.0.0.1:{_free_port()}/hook?key=QuerySecret99", secret=hook_secret)
    record_run(store, 1, 0)
    caplog.set_level(logging.DEBUG)
    with capture_logs() as logs:
        # Telegram is unreachable from here: apprise fails, and says why without the token.
        await _deliver_until(
            store,
            lambda: all(_deliveries(store, s)[0].status == "dead" for s in (chat, hook)),
            config=DeliveryConfig(**{**FAST.__dict__, "max_attempts": 1, "timeout_s": 5}),
        )
    text = repr(logs) + caplog.text
    for sub in (chat, hook):
        d = _deliveries(store, sub)[0]
        text += repr(d.last_error) + repr([a.error for a in store.notifications.attempts(d.id)])
        assert d.last_error
    for secret in (token, "AAE-bot-Token-Secret", hook_secret, "QuerySecret99"):
        assert secret not in text
