"""The notification API: subscriptions only with the owner's signature, refusals with reasons,
targets and secrets never in an answer, the delivery log and re-send."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from autometa.chain.accounts import dev_role
from autometa.domain.eip712 import sign_typed_data
from autometa.store.notifications import Outcome
from tests.api.conftest import Api, close_api, open_api
from tests.conftest import DevChain
from tests.notify.helpers import add_workflow, record_run
from tests.support.coingecko_stub import CoinGeckoStub

USER = dev_role("user")
SECRET = "whsec_api_test_0123456789"
HOOK = "http://127.0.0.1:9/hook?token=QueryTokenSecret"


@pytest.fixture
async def api(dev_chain: DevChain, coingecko: CoinGeckoStub, tmp_path: Path) -> AsyncIterator[Api]:
    opened, prefix = await open_api(
        "embedded", dev_chain, coingecko, tmp_path, None, NOTIFY_ALLOW_PRIVATE_TARGETS=["127.0.0.0/8"]
    )
    try:
        yield opened
    finally:
        await close_api(opened, prefix)


def _body(**extra: Any) -> dict[str, Any]:
    body = {
        "owner": USER.address,
        "channel": "webhook",
        "target": HOOK,
        "secret": SECRET,
        "events": ["run.failed", "workflow.auto_paused"],
        "name": "ops",
    }
    body.update(extra)
    return body


async def _signed(api: Api, prepare: str, body: dict[str, Any], account: Any = USER) -> dict[str, Any]:
    reply = await api.client.post(prepare, json=body)
    assert reply.status_code == 200, reply.text
    data = reply.json()
    return {
        "signature": sign_typed_data(account, data["typed_data"]),
        "nonce": data["nonce"],
        "deadline": data["deadline"],
    }


async def _subscribe(api: Api, **extra: Any) -> dict[str, Any]:
    body = _body(**extra)
    signed = await _signed(api, "/api/notifications/subscriptions/prepare", body)
    reply = await api.client.post("/api/notifications/subscriptions", json=body | signed)
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


def _no_secrets(*texts: str) -> None:
    for text in texts:
        for secret in (SECRET, "QueryTokenSecret", HOOK):
            assert secret not in text


async def test_subscribe_list_and_never_show_the_target(api: Api) -> None:
    sub = await _subscribe(api)
    assert sub["target_hint"] == "http://127.0.0.1:9/…" and sub["chain_id"] == 31337
    listed = await api.client.get("/api/notifications/subscriptions", params={"owner": USER.address.lower()})
    assert [s["id"] for s in listed.json()] == [sub["id"]]
    one = await api.client.get(f"/api/notifications/subscriptions/{sub['id']}")
    _no_secrets(json.dumps(sub), listed.text, one.text)
    kinds = (await api.client.get("/api/notifications/events")).json()
    assert "run.failed" in kinds["owner_events"] and "email" not in kinds["channels"]


async def test_refusals_name_the_field_and_keep_secrets(api: Api) -> None:
    body = _body()
    signed = await _signed(api, "/api/notifications/subscriptions/prepare", body)
    stranger = Account.create()
    forged = await _signed(api, "/api/notifications/subscriptions/prepare", body, stranger)
    cases = [
        (body | forged, 401, "signature"),
        (body | signed | {"events": ["run.executed"]}, 401, "signature"),  # not what was signed
        (body | signed | {"deadline": int(time.time()) - 1}, 400, "deadline"),
        (body | signed | {"target": "http://10.1.2.3/hook?token=QueryTokenSecret"}, 422, "target"),
        (body | signed | {"secret": "short"}, 422, "secret"),
        (body | signed | {"events": ["nope"]}, 422, "events"),
        (body | signed | {"events": ["executor.low_gas"]}, 422, "events"),
        (body | signed | {"channel": "email", "target": "me@example.org"}, 422, "channel"),
        (body | signed | {"channel": "apprise", "target": "json://example.org/x"}, 422, "target"),
        (body | signed | {"target": "ftp://example.org/"}, 422, "target"),
        (body | signed | {"owner": "0x123"}, 422, "owner"),
    ]
    for payload, status, field in cases:
        reply = await api.client.post("/api/notifications/subscriptions", json=payload)
        assert (reply.status_code, reply.json()["field"]) == (status, field), (payload, reply.text)
        _no_secrets(reply.text)
    ok = await api.client.post("/api/notifications/subscriptions", json=body | signed)
    assert ok.status_code == 201
    again = await api.client.post("/api/notifications/subscriptions", json=body | signed)
    assert (again.status_code, again.json()["field"]) == (409, "nonce")  # a signature works once


async def test_delivery_log_resend_and_unsubscribe(api: Api) -> None:
    add_workflow(api.store, 1, owner=USER.address)
    sub = await _subscribe(api)
    record_run(api.store, 1, 0, status="failed", revert_reason=b"\x2a")
    log = (await api.client.get(f"/api/notifications/subscriptions/{sub['id']}/deliveries")).json()
    [d] = log["deliveries"]
    assert (d["status"], d["event_type"], d["attempts"]) == ("pending", "run.failed", 0)
    assert d["event"]["data"]["revert_reason"] == "0x2a"
    # A worker claims it and gives up (one attempt allowed here): dead-lettered with its reason.
    claimed = api.store.notifications.claim("w", 10, 30)
    assert [c.delivery_id for c in claimed] == [d["id"]]
    api.store.notifications.finish(
        "w",
        [Outcome(d["id"], sub["id"], 1, False, datetime.now(UTC), 1.0, 500, "HTTP 500 Internal Server Error", None)],
    )
    log = (await api.client.get(f"/api/notifications/subscriptions/{sub['id']}/deliveries?status=dead")).json()
    assert log["deliveries"][0]["last_error"] == "HTTP 500 Internal Server Error"
    attempts = (await api.client.get(f"/api/notifications/deliveries/{d['id']}/attempts")).json()
    assert [(a["attempt"], a["ok"], a["status_code"]) for a in attempts] == [(1, False, 500)]

    owner = {"owner": USER.address}
    stranger = Account.create()
    refused = await api.client.post(
        f"/api/notifications/deliveries/{d['id']}/resend/prepare", json={"owner": stranger.address}
    )
    assert (refused.status_code, refused.json()["field"]) == (403, "owner")
    signed = await _signed(api, f"/api/notifications/deliveries/{d['id']}/resend/prepare", owner)
    bad = await api.client.post(f"/api/notifications/deliveries/{d['id'] + 1}/resend", json=owner | signed)
    assert bad.status_code == 404
    resent = await api.client.post(f"/api/notifications/deliveries/{d['id']}/resend", json=owner | signed)
    assert resent.status_code == 202, resent.text
    assert api.store.notifications.get_delivery(d["id"]).status == "pending"  # type: ignore[union-attr]

    signed = await _signed(api, f"/api/notifications/subscriptions/{sub['id']}/delete/prepare", owner)
    gone = await api.client.request("DELETE", f"/api/notifications/subscriptions/{sub['id']}", json=owner | signed)
    assert gone.status_code == 200 and gone.json()["active"] is False
    assert api.store.notifications.get_delivery(d["id"]).status == "cancelled"  # type: ignore[union-attr]
    listed = await api.client.get("/api/notifications/subscriptions", params={"owner": USER.address})
    assert listed.json() == []


async def test_the_api_process_hosts_delivery_and_the_operator_subscriptions(api: Api) -> None:
    import asyncio

    from pydantic import SecretStr

    from autometa.api.app import _host_notifications
    from tests.notify.receiver import Receiver

    receiver = Receiver(SECRET).start()
    try:
        ops = [
            {
                "name": "ops",
                "channel": "webhook",
                "target": receiver.url,
                "secret": SECRET,
                "events": ["executor.low_gas"],
            }
        ]
        settings = api.settings.model_copy(
            update={"NOTIFY_OPERATOR_SUBSCRIPTIONS": SecretStr(json.dumps(ops)), "NOTIFY_POLL_S": 0.05}
        )
        halt = _host_notifications(settings, api.services)
        try:
            for _ in range(200):
                if api.store.notifications.list_subscriptions(operator=True):
                    break
                await asyncio.sleep(0.05)
            [sub] = api.store.notifications.list_subscriptions(operator=True)
            assert sub.chain_id == 31337 and sub.target_hint == f"http://127.0.0.1:{receiver.port}/…"
            api.store.notifications.emit_operator(31337, "executor.low_gas", "low-gas:31337:test", {"balance_wei": "0"})
            for _ in range(200):
                if receiver.keys:
                    break
                await asyncio.sleep(0.05)
            assert dict(receiver.keys) == {"low-gas:31337:test": 1}
        finally:
            await halt()
    finally:
        receiver.stop()
