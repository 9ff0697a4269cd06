"""Bad input is a 4xx naming the field, never a 500; the body size is bounded."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import USER, Api, chain_now, seed_body


def _field(reply: Any) -> str:
    body = reply.json()
    return str(body.get("field"))


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"user_address": USER.address[:-1]}, 422, "user_address"),
        ({"user_address": USER.address[:-1] + ("a" if USER.address[-1] != "a" else "b")}, 422, "user_address"),
        ({"user_address": "0x" + "0" * 40}, 422, "user_address"),
        ({"user_address": 42}, 422, "user_address"),
        ({"trigger_type": "two"}, 422, "trigger_type"),
        ({"trigger_type": 9}, 422, "trigger_type"),
        ({"trigger_data": {"token": "ethereum", "comparator": 0, "price_usd": -1}}, 422, "trigger_data.price_usd"),
        ({"trigger_data": {"token": "ethereum", "comparator": 0, "price_usd": "1e40"}}, 422, "trigger_data.price_usd"),
        (
            {"trigger_data": {"token": "ethereum", "comparator": 0, "price_usd": 1.123456789}},
            422,
            "trigger_data.price_usd",
        ),
        ({"trigger_data": {"token": "dogecoin", "comparator": 0, "price_usd": 1}}, 422, "trigger_data.token"),
        ({"trigger_data": {"token": "ÉTHER", "comparator": 0, "price_usd": 1}}, 422, "trigger_data"),
        ({"action_data": {"to": USER.address, "amount_wei": str(2**96)}}, 422, "action_data"),
        ({"action_data": {"to": USER.address, "amount_wei": str(2**256)}}, 422, "action_data.amount_wei"),
        ({"action_data": {"to": USER.address, "amount_wei": -1}}, 422, "action_data.amount_wei"),
        ({"action_data": {"to": USER.address, "amount_wei": True}}, 422, "action_data.amount_wei"),
        ({"max_runs": 0}, 422, "max_runs"),
        ({"max_runs": 2**32}, 422, "max_runs"),
        ({"gas_limit": 9_999}, 422, "gas_limit"),
        ({"max_fee_per_run_wei": str(2**80)}, 422, "body"),
        ({"unexpected": 1}, 422, "unexpected"),
        ({"nonce": -1}, 422, "nonce"),
        ({"signature": "0xzz"}, 422, "signature"),
        ({"signature": "0x" + "00" * 4096}, 422, "signature"),
    ],
)
async def test_bad_create_bodies_name_the_field(
    api_embedded: Api, change: dict[str, Any], status: int, field: str
) -> None:
    for path in ("/api/workflow/create", "/api/workflow/prepare"):
        if path.endswith("prepare") and set(change) & {"nonce", "signature"}:
            continue
        reply = await api_embedded.client.post(path, json={**seed_body(), **change})
        assert reply.status_code == status, (path, reply.text)
        assert _field(reply) == field, (path, reply.text)


async def test_times_in_the_past_are_refused(api_embedded: Api) -> None:
    past = chain_now(api_embedded.chain) - 10
    reply = await api_embedded.client.post(
        "/api/workflow/prepare", json=seed_body(trigger_type=0, trigger_data={"at": past}, max_runs=1)
    )
    assert reply.status_code == 422 and _field(reply) == "trigger_data.at"


async def test_malformed_json_wrong_types_and_oversize(api_embedded: Api) -> None:
    client = api_embedded.client
    json_type = {"content-type": "application/json"}
    bad = await client.post("/api/workflow/prepare", content=b'{"user_address": ', headers=json_type)
    assert bad.status_code == 400 and _field(bad) == "body"
    listed = await client.post("/api/workflow/prepare", json=[1, 2, 3])
    assert listed.status_code == 422
    huge = await client.post(
        "/api/workflow/create", content=b"{" + b" " * 70_000 + b"}", headers={"content-type": "application/json"}
    )
    assert huge.status_code == 413 and _field(huge) == "body"
    unicode = await client.post("/api/workflow/prepare", json={**seed_body(), "user_address": "0x😀" * 10})
    assert unicode.status_code == 422 and _field(unicode) == "user_address"


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/workflow/0", "workflow_id"),
        (f"/api/workflow/{2**63}", "workflow_id"),
        ("/api/workflow/user/0x123", "address"),
        ("/api/workflow/user/" + USER.address[:-1] + "X", "address"),
        ("/api/workflow/user/" + USER.address + "?limit=0", "limit"),
        ("/api/workflow/user/" + USER.address + "?offset=-1", "offset"),
        ("/api/executions?status=done", "status"),
        ("/api/executions?user=bob", "user"),
        ("/api/executions?since=yesterday", "since"),
        ("/api/executions?since=-5", "since"),
        ("/api/executions?limit=501", "limit"),
        ("/api/stats?workflow_id=-5", "workflow_id"),
        ("/api/workers?within_s=0", "within_s"),
    ],
)
async def test_bad_query_and_path_values_name_the_field(api_embedded: Api, path: str, field: str) -> None:
    reply = await api_embedded.client.get(path)
    assert reply.status_code == 422, reply.text
    assert _field(reply) == field


async def test_a_path_that_is_no_workflow_id_is_not_found(api_embedded: Api) -> None:
    # `{workflow_id:int}`: "abc" names no workflow route (so GET /api/workflow/create is a 405)
    reply = await api_embedded.client.get("/api/workflow/abc")
    assert reply.status_code == 404 and reply.json()["error"] == "not_found"


async def test_unknown_op_and_method(api_embedded: Api) -> None:
    reply = await api_embedded.client.post("/api/workflow/1/explode", json={"user_address": USER.address})
    assert reply.status_code == 422 and _field(reply) == "op"
    assert (await api_embedded.client.delete("/api/workflow/1")).status_code == 405
