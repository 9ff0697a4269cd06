"""Issue 21's scenario: distributed mode (`autometa api`, `scheduler`, `executor` processes,
PostgreSQL, Redis) behind an RPC endpoint that allows 25 requests/s and answers HTTP 429 +
`Retry-After` beyond it, as public providers do. The seed's flow, then 50 workflow creations
from 10 users at once. What users are told must match the chain: every create the API confirms
exists on-chain, every workflow on-chain was confirmed (or answered pending with its hash) to its
creator, no answer is a 5xx, the relayer sends no filler transactions, nothing is created twice."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from decimal import Decimal
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from autometa.chain.accounts import dev_role
from autometa.chain.anvil import free_port
from autometa.chain.contracts import autometa
from autometa.chain.deploy import set_dev_price, transact
from autometa.client import AsyncAutometaClient, AutometaClient, RelayPending
from autometa.domain.workflow import WorkflowSpec
from tests.conftest import fresh_pg_database
from tests.support.coingecko_stub import CoinGeckoStub
from tests.support.rpc_proxy import RpcProxy
from tests.support.stack import Stack, distributed_stack

RATE = 25  # requests/s the endpoint allows
USERS, PER_USER = 10, 5


class Recording(httpx.AsyncHTTPTransport):
    """Counts every HTTP status the API answers (creates, prepares and status polls)."""

    def __init__(self, statuses: Counter[int]) -> None:
        super().__init__()
        self.statuses = statuses

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        self.statuses[response.status_code] += 1
        return response


class RecordingSync(httpx.HTTPTransport):
    def __init__(self, statuses: Counter[int]) -> None:
        super().__init__()
        self.statuses = statuses

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.statuses[response.status_code] += 1
        return response


def body(owner: str, price: float, to: str) -> dict[str, Any]:
    return {
        "user_address": owner,
        "trigger_type": 2,
        "trigger_data": {"token": "ethereum", "comparator": 0, "price_usd": price},
        "action_type": 0,
        "action_data": {"to": to, "amount_wei": "1000000000000000"},
    }


async def one_user(url: str, user: LocalAccount, index: int, statuses: Counter[int]) -> list[tuple[str, Any]]:
    """PER_USER creates, one after another (as a person would): what each was answered."""
    out: list[tuple[str, Any]] = []
    to = dev_role("recipient").address
    async with AsyncAutometaClient(url, timeout=120, transport=Recording(statuses), follow_timeout=240) as client:
        for k in range(PER_USER):
            price = float(100 + index * PER_USER + k)  # unique per create; far below the price: never due
            try:
                created = await client.create_signed(user, body(user.address, price, to))
                out.append(("confirmed", (created.workflow_id, created.tx_hash.lower(), price)))
            except RelayPending as pending:
                out.append(("pending", (pending.pending.tx_hash.lower(), price)))
            except Exception as exc:  # an answer a user would read as "failed"
                out.append(("failed", (repr(exc)[:300], price)))
    return out


def relayer_self_transfers(stack: Stack, relayer: str, start: int) -> int:
    """Zero-value transfers from the relayer to itself: what a nonce-gap filler sends."""
    count = 0
    for number in range(start, int(stack.w3.eth.block_number) + 1):
        for tx in stack.w3.eth.get_block(number, full_transactions=True)["transactions"]:
            if tx["from"] == relayer and tx.get("to") == relayer:  # type: ignore[union-attr]
                count += 1
    return count


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
def test_seed_flow_and_50_creates_through_a_rate_limited_rpc() -> None:
    relayer_key = dev_role("relayer")
    seed_user, recipient = dev_role("user"), dev_role("recipient")
    users = [Account.create() for _ in range(USERS)]
    statuses: Counter[int] = Counter()
    prices = {"ethereum": 3250, "bitcoin": 95000}
    with (
        fresh_pg_database("autometa_ratelimit") as db_url,
        distributed_stack(db_url, executors=(5,), owners=()) as stack,
        RpcProxy(stack.anvil.url) as proxy,
        CoinGeckoStub(prices) as stub,
    ):
        w3, core = stack.w3, autometa(stack.w3, stack.dep.address)
        for user in users:  # set-up straight on the chain, not through the limited endpoint
            w3.provider.make_request("anvil_setBalance", [user.address, hex(10**19)])  # type: ignore[arg-type]
            transact(w3, user, core.functions.deposit(), value=10**18)
        transact(w3, seed_user, core.functions.deposit(), value=2 * 10**18)
        start_block = int(w3.eth.block_number)

        proxy.rate_limit(RATE, retry_after=1)
        stack.settings["MOONBASE_RPC"] = proxy.url  # every process talks to the limited endpoint
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        stack.start(
            "api",
            "api",
            API_PORT=str(port),
            RELAYER_PRIVATE_KEY="0x" + bytes(relayer_key.key).hex(),
            PRICE_FEED_URL=stub.url,
            BACKEND_API_URL=url,
            RATE_LIMIT_PER_MINUTE="100000",
        )
        stack.start_workers({"executor-1": 5})
        client = AutometaClient(url, timeout=120, transport=RecordingSync(statuses), follow_timeout=240)
        stack.wait_for("the API", lambda: _up(client), timeout=60)

        # the seed's flow: a signed create through the relayer, then the price crosses
        seed = client.create_signed(
            seed_user,
            body(seed_user.address, 3200.0, recipient.address)
            | {"action_data": {"to": recipient.address, "amount_wei": "1000000000000000000"}},
        )
        before = w3.eth.get_balance(recipient.address)
        set_dev_price(w3, dev_role("admin"), stack.dep.feeds["ethereum"], Decimal("3198.15"))
        stack.wait_for(
            "the seed workflow to run",
            lambda: any(e.status == "success" for e in client.executions(workflow_id=seed.workflow_id).items),
            timeout=120,
        )
        assert w3.eth.get_balance(recipient.address) - before == 10**18

        # 50 creations from 10 users at once
        started = time.monotonic()

        async def everyone() -> list[list[tuple[str, Any]]]:
            return await asyncio.gather(*(one_user(url, u, i, statuses) for i, u in enumerate(users)))

        answers = {u.address: a for u, a in zip(users, asyncio.run(everyone()), strict=True)}
        took = time.monotonic() - started
        time.sleep(3)  # anything still pending gets mined
        client.close()

        # the chain's truth, read around the limited endpoint
        created_logs = core.events.WorkflowCreated().get_logs(from_block=start_block, to_block="latest")
        on_chain: dict[str, list[tuple[int, str, float]]] = {}
        for log in created_logs:
            view = core.functions.getWorkflow(int(log.args.workflowId)).call()
            price = float(WorkflowSpec.from_abi(view[6]).trigger_data.price_usd)  # type: ignore[union-attr]
            tx = "0x" + bytes(log.transactionHash).hex()
            on_chain.setdefault(log.args.owner, []).append((int(log.args.workflowId), tx.lower(), price))
        relayer = relayer_key.address
        filler = relayer_self_transfers(stack, relayer, start_block)
        api_log = stack.log_text("api")
        runs = stack.run_counts()

    summary = dict(Counter(kind for a in answers.values() for kind, _ in a))
    print(
        f"[rate-limited] {USERS * PER_USER} creates in {took:.1f} s: {summary}; HTTP {dict(statuses)}; "
        f"429s by the endpoint {sum(proxy.limited.values())} {dict(proxy.limited.most_common(5))}"
    )
    failed = [(owner, detail) for owner, a in answers.items() for kind, detail in a if kind == "failed"]
    assert not [s for s in statuses if s >= 500], (dict(statuses), failed)
    assert proxy.limited, "the endpoint never rate-limited: the test did not test anything"
    assert filler == 0 and "tx.nonce_gap_filled" not in api_log
    assert all(n == 1 for n in runs.values()), runs
    for user in users:
        chain_rows = on_chain.get(user.address, [])
        confirmed = {
            (wid, tx, price)
            for kind, (wid, tx, price) in ((k, d) for k, d in answers[user.address] if k == "confirmed")
        }
        pending = {(tx, price) for kind, (tx, price) in ((k, d) for k, d in answers[user.address] if k == "pending")}
        # every create the API confirmed exists on-chain, exactly as answered
        assert confirmed <= set(chain_rows), (user.address, confirmed - set(chain_rows))
        # every workflow on-chain was confirmed, or answered pending with its transaction hash
        for row in chain_rows:
            assert row in confirmed or (row[1], row[2]) in pending, (user.address, row, answers[user.address])
        # nothing created twice (each create had its own price)
        prices = Counter(price for _, _, price in chain_rows)
        assert all(n == 1 for n in prices.values()), prices
    assert not failed, failed  # with retries honouring Retry-After, no create is refused either
    assert sum(len(rows) for owner, rows in on_chain.items() if owner != seed_user.address) == USERS * PER_USER


def _up(client: AutometaClient) -> bool:
    try:
        client.healthz()
        return True
    except Exception:
        return False
