"""The dashboard's endpoints: the page and its files, the escrow account, the form's validation,
and the live feed (what it sends, and that it ends when the client leaves or the server stops)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from autometa.api import create_app
from autometa.api.server import EmbeddedServer
from autometa.chain.accounts import dev_account
from autometa.chain.anvil import free_port
from autometa.chain.contracts import autometa
from autometa.chain.deploy import transact
from autometa.domain.kinds import PRICE_DECIMALS
from tests.api.conftest import RECIPIENT, USER, Api, close_api, open_api
from tests.conftest import DevChain
from tests.support.coingecko_stub import CoinGeckoStub

SEED = {
    "trigger_type": 2,
    "trigger_data": {"token": "ethereum", "comparator": 0, "price_usd": "3200"},
    "action_type": 0,
    "action_data": {"to": RECIPIENT, "amount_wei": "1000000000000000000"},
    "max_fee_per_run_wei": "10000000000000000",
}


async def test_the_page_and_its_modules_are_served(api_embedded: Api) -> None:
    page = await api_embedded.client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/app.js">' in page.text
    for name in ("app.js", "api.js", "wallet.js", "form.js", "charts.js", "units.js", "admin.js", "style.css"):
        got = await api_embedded.client.get(f"/static/{name}")
        assert got.status_code == 200, name
    missing = await api_embedded.client.get("/static/nope.js")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


async def test_escrow_account_balance_runway_and_deposit_call(api_embedded: Api) -> None:
    fresh = dev_account(8).address
    empty = (await api_embedded.client.get(f"/api/escrow/{fresh}")).json()
    assert empty["balance_wei"] == "0" and empty["runway_runs"] is None and empty["active_workflows"] == 0
    contract = api_embedded.chain.deployment.address
    assert empty["deposit"]["to"].lower() == contract.lower() and empty["deposit"]["chain_id"] == 31337
    core = autometa(api_embedded.chain.w3, contract)
    assert empty["deposit"]["data"] == core.encode_abi("deposit", args=[])

    transact(api_embedded.chain.w3, USER, core.functions.deposit(), value=3 * 10**18)
    created = await api_embedded.typed.create_signed(USER, {**SEED, "user_address": USER.address})
    await _index(api_embedded)  # no indexer runs here: index by hand
    account = (await api_embedded.client.get(f"/api/escrow/{USER.address.lower()}")).json()
    balance = core.functions.balanceOf(USER.address).call()
    per_run = 10**16 + 10**18  # fee cap + the native amount
    expected = {
        "address": USER.address,
        "balance_wei": str(balance),
        "source": "chain",
        "active_workflows": 1,
        "per_run_wei": str(per_run),
        "runway_runs": balance // per_run,
    }
    assert {k: account[k] for k in expected} == expected and created.workflow_id >= 1


async def _index(api: Api) -> None:
    """Run the event indexer once over the chain, as `autometa up` does continuously."""
    from autometa.chain.indexer import EventIndexer

    indexer = EventIndexer(api.chain.w3, api.store, api.chain.deployment.address, api.chain.deployment.block)
    await asyncio.to_thread(indexer.sync)


async def test_escrow_without_a_chain_is_a_503_with_the_reason(
    dev_chain: DevChain, coingecko: CoinGeckoStub, tmp_path: Path
) -> None:
    api, prefix = await open_api(
        "embedded", dev_chain, coingecko, tmp_path, None, MOONBASE_RPC=f"http://127.0.0.1:{free_port()}"
    )
    try:
        got = await api.client.get(f"/api/escrow/{USER.address}")
        assert got.status_code == 503 and got.json()["error"] == "chain_unavailable", got.text
        got = await api.client.get("/api/utils/admin/pending")
        assert got.status_code == 503 and got.json()["error"] == "chain_unavailable", got.text
    finally:
        await close_api(api, prefix)


@pytest.mark.parametrize("address", ["0x1234", "not-an-address", "0x" + "g" * 40])
async def test_escrow_refuses_a_bad_address_with_a_reason(api_embedded: Api, address: str) -> None:
    got = await api_embedded.client.get(f"/api/escrow/{address}")
    assert got.status_code == 422 and got.json()["field"] == "address"


async def test_validate_accepts_a_good_body_and_resolves_its_defaults(api_embedded: Api) -> None:
    got = await api_embedded.client.post("/api/dashboard/validate", json={**SEED, "user_address": USER.address})
    body = got.json()
    assert got.status_code == 200 and body["ok"] is True and body["errors"] == []
    assert body["spec"]["max_runs"] == 1 and body["spec"]["gas_limit"] == 30_000


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (
            {"trigger_data": {"token": "ethereum", "comparator": 0, "price_usd": "abc"}},
            "trigger_data.price_usd",
            "must be a number",
        ),
        ({"trigger_data": {"token": "solana", "comparator": 0, "price_usd": "1"}}, "trigger_data.token", "supported"),
        ({"trigger_type": 0, "trigger_data": {"at": 1_000_000}}, "trigger_data.at", "future"),
        ({"action_data": {"to": "0x12", "amount_wei": "1"}}, "action_data.to", ""),
        ({"action_data": {"to": RECIPIENT, "amount_wei": "-1"}}, "action_data.amount_wei", ""),
        ({"user_address": None}, "user_address", ""),
        ({"trigger_type": 1, "trigger_data": {"interval": 0}}, "trigger_data.interval", "greater than or equal to 1"),
        ({"action_type": 2, "action_data": {"target": RECIPIENT, "data": "0x123"}}, "action_data.data", "even"),
    ],
)
async def test_validate_names_each_problem_on_its_field(
    api_embedded: Api, change: dict[str, Any], field: str, words: str
) -> None:
    draft = {**SEED, "user_address": USER.address, **change}
    got = await api_embedded.client.post("/api/dashboard/validate", json=draft)
    body = got.json()
    assert got.status_code == 200 and body["ok"] is False, body
    assert any(e["field"] == field and words in e["message"] for e in body["errors"]), body


@pytest.mark.parametrize(("content", "status"), [(b"[1, 2]", 422), (b"{not json", 400), (b'"text"', 422)])
async def test_validate_refuses_what_is_not_a_json_object(api_embedded: Api, content: bytes, status: int) -> None:
    got = await api_embedded.client.post(
        "/api/dashboard/validate", content=content, headers={"Content-Type": "application/json"}
    )
    assert got.status_code == status and got.json()["message"]


# ---------------------------------------------------------------------------- live feed


@asynccontextmanager
async def serving(api: Api) -> AsyncIterator[tuple[str, EmbeddedServer]]:
    """The app under a real uvicorn (ASGITransport buffers whole responses, so no streaming)."""
    port = free_port()
    server = EmbeddedServer(
        uvicorn.Config(
            create_app(api.settings, services=api.services),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
        )
    )
    task = asyncio.create_task(server.serve())
    for _ in range(400):  # 20 s at most
        if server.started:
            break
        assert not task.done(), "uvicorn did not start"
        await asyncio.sleep(0.05)
    assert server.started, "uvicorn did not start in 20 s"
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def _run(api: Api, workflow_id: int, run_index: int, **onchain: Any) -> None:
    tx = "0x" + f"{workflow_id:032x}{run_index:032x}"
    api.store.executions.record_offchain(
        chain_id=31337,
        contract=api.chain.deployment.address,
        workflow_id=workflow_id,
        run_index=run_index,
        tx_hash=tx,
        price_source="backend-redis",
        triggered_at=int(time.time()),
    )
    if onchain:
        api.store.executions.record_onchain(
            chain_id=31337,
            contract=api.chain.deployment.address,
            workflow_id=workflow_id,
            run_index=run_index,
            tx_hash=tx,
            log_index=0,
            block_number=5,
            included_at=int(time.time()),
            **onchain,
        )


async def _events(lines: AsyncIterator[str], n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async for line in lines:
        if line.startswith("data: "):
            out.append(json.loads(line[6:]))
            if len(out) == n:
                break
    return out


async def test_the_feed_sends_the_backlog_then_new_and_changed_rows(api_embedded: Api) -> None:
    _run(api_embedded, 1, 0, status="success", gas_used=60_000, gas_price=10**9, fee=7 * 10**13)
    _run(api_embedded, 2, 0)
    async with serving(api_embedded) as (url, _), httpx.AsyncClient(timeout=10) as client:
        async with client.stream("GET", f"{url}/api/executions/stream?backlog=1") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.aiter_lines()
            (backlog,) = await asyncio.wait_for(_events(lines, 1), 5)
            assert (backlog["workflow_id"], backlog["status"]) == (2, "pending")  # only the newest
            price = 3198_15 * 10 ** (PRICE_DECIMALS - 2)
            await asyncio.to_thread(_run, api_embedded, 3, 0)
            await asyncio.to_thread(
                _run,
                api_embedded,
                2,
                0,
                status="success",
                gas_used=61_000,
                gas_price=10**9,
                fee=10**14,
                price=price,
                price_source=1,
            )
            got = await asyncio.wait_for(_events(lines, 2), 5)
    new, changed = sorted(got, key=lambda e: e["workflow_id"], reverse=True)
    assert (new["workflow_id"], new["status"]) == (3, "pending")
    assert (changed["workflow_id"], changed["status"], changed["gas_used"]) == (2, "success", 61_000)
    assert changed["price_usd"] == "3198.15" and changed["fee_wei"] == str(10**14) and changed["tx_hash"]


async def test_the_feed_resumes_after_last_event_id_and_filters_by_owner(api_embedded: Api) -> None:
    _run(api_embedded, 1, 0)
    async with serving(api_embedded) as (url, _), httpx.AsyncClient(timeout=10) as client:
        async with client.stream("GET", f"{url}/api/executions/stream", headers={"Last-Event-ID": "0"}) as response:
            (first,) = await asyncio.wait_for(_events(response.aiter_lines(), 1), 5)
        assert first["workflow_id"] == 1
        bad = await client.get(f"{url}/api/executions/stream", headers={"Last-Event-ID": "abc"})
        assert bad.status_code == 422 and bad.json()["field"] == "Last-Event-ID"
        bad = await client.get(f"{url}/api/executions/stream?user=0x12")
        assert bad.status_code == 422 and bad.json()["field"] == "user"
        async with client.stream("GET", f"{url}/api/executions/stream?after_id=0&user={RECIPIENT}") as response:
            with pytest.raises(TimeoutError):  # workflow 1 is not the recipient's
                await asyncio.wait_for(_events(response.aiter_lines(), 1), 1.5)


async def test_the_feed_ends_when_the_client_leaves_and_when_the_server_stops(api_embedded: Api) -> None:
    async with serving(api_embedded) as (url, server):
        async with httpx.AsyncClient(timeout=10) as client:
            async with client.stream("GET", f"{url}/api/executions/stream") as response:
                await response.aiter_lines().__anext__()  # retry: …
                assert len(server.server_state.tasks) == 1
        deadline = time.monotonic() + 3
        while server.server_state.tasks and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not server.server_state.tasks, "the stream kept running after its client left"

        client = httpx.AsyncClient(timeout=10)
        async with client.stream("GET", f"{url}/api/executions/stream") as response:
            lines = response.aiter_lines()
            await lines.__anext__()
            started = time.monotonic()
            server.should_exit = True  # what Ctrl-C does
            rest = [line async for line in lines]  # the server ends the open stream
            assert time.monotonic() - started < 3 and all(not line.startswith("data:") for line in rest)
        await client.aclose()
