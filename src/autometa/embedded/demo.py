"""The seed's end-to-end flow, told step by step: deposit, signed creation through the relayer,
the price moves, the worker fires, the money arrives — against a real embedded stack."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from web3 import Web3

from autometa.chain.accounts import dev_role
from autometa.chain.contracts import autometa
from autometa.chain.deploy import set_dev_price, transact
from autometa.client import AutometaClient
from autometa.config import Settings
from autometa.domain.outcomes import RunStatus
from autometa.embedded.api import make_api_runner
from autometa.embedded.devchain import DevChain
from autometa.embedded.stack import run_stack, stack_settings

THRESHOLD = Decimal("3200")
NEW_PRICE = Decimal("3198.15")
AMOUNT_WEI = 10**18


class DemoFailed(Exception):
    pass


def seed_body(user: str, recipient: str) -> dict[str, Any]:
    """The seed's create request (ethereum below $3200 → send 1 coin)."""
    return {
        "user_address": user,
        "trigger_type": 2,
        "trigger_data": {"token": "ethereum", "comparator": 0, "price_usd": float(THRESHOLD)},
        "action_type": 0,
        "action_data": {"to": recipient, "amount_wei": str(AMOUNT_WEI)},
    }


def _seconds(value: float | None) -> str:
    return f"{value:.1f} s" if value is not None else "not recorded"


def run_demo(chain: DevChain, settings: Settings, say: Callable[[str], None], timeout: float = 45.0) -> dict[str, Any]:
    """Run the stack in a thread, walk the flow, stop the stack. Raises DemoFailed with what
    went wrong."""
    settings = stack_settings(settings, chain)
    stop_holder: dict[str, Any] = {}
    errors: list[BaseException] = []

    def serve() -> None:
        async def main() -> None:
            stop = asyncio.Event()
            stop_holder["stop"], stop_holder["loop"] = stop, asyncio.get_running_loop()
            await run_stack(chain, settings, stop, api=make_api_runner(chain.deployment.feeds))

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to the main thread
            errors.append(exc)

    thread = threading.Thread(target=serve, name="autometa-stack", daemon=True)
    thread.start()
    try:
        return _flow(chain, settings, say, timeout, errors)
    finally:
        if "loop" in stop_holder:
            stop_holder["loop"].call_soon_threadsafe(stop_holder["stop"].set)
        thread.join(timeout=20)


def _flow(
    chain: DevChain, settings: Settings, say: Callable[[str], None], timeout: float, errors: list[BaseException]
) -> dict[str, Any]:
    w3, core = chain.w3, autometa(chain.w3, chain.deployment.address)
    user, recipient = dev_role("user"), dev_role("recipient")
    api_url = f"http://{settings.API_HOST}:{settings.API_PORT}"
    client = AutometaClient(api_url, timeout=30)
    try:
        return _steps(chain, settings, say, timeout, errors, client, w3, core, user, recipient, api_url)
    finally:
        client.close()


def _steps(  # noqa: PLR0913
    chain: DevChain,
    settings: Settings,
    say: Callable[[str], None],
    timeout: float,
    errors: list[BaseException],
    client: AutometaClient,
    w3: Any,
    core: Any,
    user: Any,
    recipient: Any,
    api_url: str,
) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        if errors:
            raise DemoFailed(f"the stack failed to start: {errors[0]!r}")
        try:
            health = client.healthz()
            break
        except Exception:
            if time.monotonic() > deadline:
                raise DemoFailed(f"the API at {api_url} did not come up within 30 s") from None
            time.sleep(0.2)
    say(f"1. stack ready: API {api_url}, chain {health.chain_id}, contract {chain.deployment.address}")

    transact(w3, user, core.functions.deposit(), value=2 * AMOUNT_WEI)
    escrow = core.functions.balanceOf(user.address).call()
    say(f"2. user {user.address} deposited 2 coins; escrow balance {Web3.from_wei(escrow, 'ether')}")

    created = client.create_signed(user, seed_body(user.address, recipient.address))
    relayer_fee = Web3.from_wei(created.relayer_fee_wei, "ether")
    say(
        f"3. workflow {created.workflow_id} created through POST /api/workflow/create "
        f"(signed by the user, relayed in {created.tx_hash}, relayer fee {relayer_fee})"
    )
    say(f"   trigger: ethereum below ${THRESHOLD} → send 1 coin to {recipient.address}")

    before = w3.eth.get_balance(recipient.address)
    price_before = client.price("ethereum")
    say(f"4. ethereum is ${price_before.usd} (from {price_before.source}); condition not met yet")
    set_dev_price(w3, dev_role("admin"), chain.deployment.feeds["ethereum"], NEW_PRICE)
    say(f"5. the ethereum feed moves to ${NEW_PRICE}")

    execution = None
    end = time.monotonic() + timeout
    while time.monotonic() < end and execution is None:
        if errors:
            raise DemoFailed(f"a service crashed: {errors[0]!r}")
        page = client.executions(workflow_id=created.workflow_id)
        execution = next((e for e in page.items if e.status in (RunStatus.SUCCESS, RunStatus.FAILED)), None)
        if execution is None:
            time.sleep(0.5)
    if execution is None:
        raise DemoFailed(
            f"no execution of workflow {created.workflow_id} within {timeout:.0f} s (check the logs above)"
        )
    if execution.status != RunStatus.SUCCESS:
        raise DemoFailed(f"the run failed on-chain: {execution.revert_reason}")
    # The indexer may record the run (from its event) a moment before the executor adds when the
    # trigger held; the latency needs both.
    settle = time.monotonic() + 10
    while execution.latency_s is None and time.monotonic() < settle:
        time.sleep(0.3)
        items = client.executions(workflow_id=created.workflow_id).items
        execution = next(
            (e for e in items if e.tx_hash == execution.tx_hash and e.status == RunStatus.SUCCESS), execution
        )
    after = w3.eth.get_balance(recipient.address)
    _, price, source = core.functions.currentPrice(b"ethereum".ljust(32, b"\0"), 0).call()
    shown_price = Decimal(price) / 10**8
    say(f"6. trigger condition met: ethereum ${shown_price} < ${THRESHOLD} (price from {execution.price_source})")
    say(
        f"7. executed in {execution.tx_hash} (block {execution.block_number}), gas {execution.gas_used}, "
        f"fee charged {Web3.from_wei(execution.fee_wei or 0, 'ether')} coin, trigger-to-inclusion "
        f"{_seconds(execution.latency_s)}"
    )
    say(
        f"8. recipient balance {Web3.from_wei(before, 'ether')} → {Web3.from_wei(after, 'ether')} "
        f"(+{Web3.from_wei(after - before, 'ether')})"
    )
    if after - before != AMOUNT_WEI:
        raise DemoFailed(f"the recipient received {after - before} wei, expected {AMOUNT_WEI}")
    listed = client.executions(workflow_id=created.workflow_id)
    say(f"9. GET /api/executions lists it: {len(listed.items)} execution(s), status {execution.status}")
    return {
        "workflow_id": created.workflow_id,
        "create_tx": created.tx_hash,
        "execution_tx": execution.tx_hash,
        "price_usd": str(shown_price),
        "price_source": execution.price_source,
        "fee_wei": execution.fee_wei,
        "recipient_delta_wei": after - before,
        "latency_s": execution.latency_s,
    }
