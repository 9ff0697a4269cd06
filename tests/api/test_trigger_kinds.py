"""The API takes its trigger kinds from the registry: names or numbers, an unknown kind is a 422
naming `trigger_type`, STATE prepares with its packed triggerData, and the schema, the error fields and
the dashboard's kind list are the registry's."""

from __future__ import annotations

from typing import Any

import pytest

from autometa.api.dashboard import STATIC_DIR
from autometa.api.errors import _field
from autometa.chain.contracts import autometa
from autometa.chain.deploy import transact
from autometa.domain.triggers import all_kinds, creatable_kinds
from tests.api.conftest import USER, Api, seed_body

STATE = {
    "target": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "calldata": "0x18160ddd",
    "comparator": ">",
    "threshold": 1,
}


@pytest.mark.parametrize("kind", ["hourly", 9, "9", -1, None, [2]])
async def test_an_unknown_kind_is_a_422_naming_trigger_type(api_embedded: Api, kind: Any) -> None:
    for path in ("/api/workflow/prepare", "/api/workflow/create"):
        reply = await api_embedded.client.post(path, json=seed_body(trigger_type=kind))
        assert reply.status_code == 422, (path, reply.text)
        body = reply.json()
        assert body["field"] == "trigger_type", body
        details = [d for d in body.get("details", []) if d["field"] == "trigger_type"]
        assert details and "unknown trigger kind" in details[0]["message"] or "unknown trigger kind" in body["message"]
    validated = (await api_embedded.client.post("/api/dashboard/validate", json=seed_body(trigger_type=kind))).json()
    assert validated["ok"] is False
    assert any(e["field"] == "trigger_type" and "unknown trigger kind" in e["message"] for e in validated["errors"])


async def test_state_triggers_prepare_with_their_trigger_data(api_embedded: Api) -> None:
    core = autometa(api_embedded.chain.w3, api_embedded.chain.deployment.address)
    transact(api_embedded.chain.w3, USER, core.functions.deposit(), value=10**18)
    for kind in ("state", 3):
        reply = await api_embedded.client.post(
            "/api/workflow/prepare", json=seed_body(trigger_type=kind, trigger_data=STATE)
        )
        assert reply.status_code == 200, reply.text
        spec = reply.json()["typed_data"]["message"]["spec"]
        packed = bytes.fromhex(spec["triggerData"].removeprefix("0x"))
        assert int(spec["triggerKind"]) == 3 and packed[:20].hex() == STATE["target"][2:].lower()
        assert packed[59:] == bytes.fromhex("18160ddd")  # the calldata follows the 59-byte head
    bad = await api_embedded.client.post(
        "/api/workflow/prepare", json=seed_body(trigger_type="state", trigger_data={**STATE, "comparator": "<>"})
    )
    assert bad.status_code == 422 and bad.json()["field"].startswith("trigger_data"), bad.text


@pytest.mark.parametrize("kind", ["price", "PRICE", "2"])
async def test_a_kind_by_name_prepares_like_its_number(api_embedded: Api, kind: str) -> None:
    core = autometa(api_embedded.chain.w3, api_embedded.chain.deployment.address)
    transact(api_embedded.chain.w3, USER, core.functions.deposit(), value=10**18)
    by_name = await api_embedded.client.post("/api/workflow/prepare", json=seed_body(trigger_type=kind))
    by_number = await api_embedded.client.post("/api/workflow/prepare", json=seed_body())
    assert by_name.status_code == by_number.status_code == 200, by_name.text
    assert by_name.json()["typed_data"]["message"]["spec"] == by_number.json()["typed_data"]["message"]["spec"]


async def test_schema_errors_and_dashboard_take_the_kinds_from_the_registry(api_embedded: Api) -> None:
    creatable = creatable_kinds()
    openapi = (await api_embedded.client.get("/openapi.json")).json()
    schemas = openapi["components"]["schemas"]
    body = next(s for name, s in schemas.items() if name.startswith("WorkflowCreateBody"))
    numbers, names = body["properties"]["trigger_type"]["anyOf"]
    assert numbers["enum"] == sorted(k.code for k in creatable) and names["enum"] == sorted(k.name for k in creatable)

    for kind in all_kinds():  # a union tag in an error's location never reaches the field name
        assert _field(("body", "trigger_data", kind.name, "x")) == "trigger_data.x"

    listed = (await api_embedded.client.get("/api/dashboard/trigger-kinds")).json()
    assert [(k["name"], k["code"]) for k in listed] == [(k.name, k.code) for k in creatable]
    for k in listed:  # each kind's form fragment is served
        assert (await api_embedded.client.get(f"/static/triggers/{k['name']}.js")).status_code == 200
    fragments = {p.stem for p in (STATIC_DIR / "triggers").glob("*.js")}
    assert fragments == {k.name for k in creatable}, "a form fragment without a creatable kind (or the reverse)"
