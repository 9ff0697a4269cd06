"""Dashboard fixtures: one embedded stack (dev chain with 1 s blocks, SQLite, API, scheduler,
executor) per module, headless Debian Chromium driven by Playwright, and a test wallet injected
into the page whose EIP-1193 `request()` is answered by Python signing with eth_account."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from web3 import Web3

from autometa.chain.anvil import free_port
from autometa.config import Settings
from autometa.embedded.api import make_api_runner
from autometa.embedded.devchain import DevChain, start_dev_chain
from autometa.embedded.stack import run_stack, stack_settings
from tests.api.conftest import api_embedded, coingecko, coingecko_server  # noqa: F401  (endpoint tests)

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("DASHBOARD_ARTIFACTS", REPO / "test-artifacts" / "dashboard"))


@dataclass
class Stack:
    chain: DevChain
    settings: Settings
    url: str
    errors: list[BaseException] = field(default_factory=list)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """`autometa up`'s services in a thread, as the demo runs them."""
    data = tmp_path_factory.mktemp("dashboard-stack")
    base = Settings(
        _env_file=None,
        DATA_DIR=str(data),
        API_HOST="127.0.0.1",
        API_PORT=free_port(),  # type: ignore[call-arg]
        LOG_LEVEL="WARNING",
        REDIS_URL=None,
        DATABASE_URL=None,
        RATE_LIMIT_PER_MINUTE=10_000,
    )
    chain = start_dev_chain(base, block_time=1)
    settings = stack_settings(base, chain)
    holder: dict[str, Any] = {}
    made = Stack(chain, settings, f"http://127.0.0.1:{settings.API_PORT}")

    def serve() -> None:
        async def main() -> None:
            holder["stop"], holder["loop"] = asyncio.Event(), asyncio.get_running_loop()
            await run_stack(chain, settings, holder["stop"], api=make_api_runner(chain.deployment.feeds))

        try:
            asyncio.run(main())
        except BaseException as exc:
            made.errors.append(exc)

    thread = threading.Thread(target=serve, name="dashboard-stack", daemon=True)
    thread.start()
    deadline = time.monotonic() + 40
    while True:
        assert not made.errors, f"the stack failed: {made.errors[0]!r}"
        try:
            if httpx.get(made.url + "/api/utils/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the embedded stack did not come up in 40 s"
        time.sleep(0.2)
    try:
        yield made
    finally:
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(timeout=20)
        chain.stop()
        assert not thread.is_alive(), "the stack did not stop within 20 s (an open live feed must not hold it)"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium; a missing one fails loudly (scripts/setup installs it)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run scripts/setup (apt-get install chromium) or set CHROMIUM")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield launched
        finally:
            launched.close()


WALLET_SHIM = """
window.ethereum = {
  isAutometaInjectedWallet: true,
  async request({ method, params }) {
    const answer = JSON.parse(await window.__testWallet(JSON.stringify({ method, params: params || [] })));
    if (answer.error) { const e = new Error(answer.error.message); e.code = answer.error.code; throw e; }
    return answer.result;
  },
  _listeners: {},
  on(event, handler) { (this._listeners[event] ||= []).push(handler); },
  removeListener() {},
  __emit(event, value) { (this._listeners[event] || []).forEach((handler) => handler(value)); },
};
"""


class InjectedWallet:
    """What a browser wallet does, in Python: accounts, eth_signTypedData_v4, eth_sendTransaction.
    `reject` makes it answer like a user pressing "Reject" (EIP-1193 code 4001)."""

    def __init__(self, account: LocalAccount, w3: Web3) -> None:
        self.account, self.w3 = account, w3
        self.chain_id: int | None = None  # the network the wallet says it is on (default: w3's)
        self.reject = False
        self.signed: list[dict[str, Any]] = []
        self.calls: list[str] = []

    def switch_chain(self, page: Any, chain_id: int) -> None:
        """What a wallet does when its user picks another network: says so with `chainChanged`."""
        self.chain_id = chain_id
        page.evaluate("id => window.ethereum.__emit('chainChanged', '0x' + id.toString(16))", chain_id)

    def install(self, page: Any) -> None:
        page.expose_function("__testWallet", self.handle)
        page.add_init_script(WALLET_SHIM)

    def handle(self, payload: str) -> str:
        call = json.loads(payload)
        method, params = call["method"], call["params"]
        self.calls.append(method)
        try:
            return json.dumps({"result": self._answer(method, params)})
        except _Rejected:
            return json.dumps({"error": {"code": 4001, "message": "User rejected the request."}})

    def _answer(self, method: str, params: list[Any]) -> Any:
        if method in ("eth_requestAccounts", "eth_accounts"):
            return [self.account.address]
        if method == "eth_chainId":
            return hex(self.chain_id if self.chain_id is not None else self.w3.eth.chain_id)
        if method == "eth_signTypedData_v4":
            if self.reject:
                raise _Rejected
            assert Web3.to_checksum_address(params[0]) == self.account.address
            typed = json.loads(params[1])
            self.signed.append(typed)
            return "0x" + bytes(self.account.sign_message(encode_typed_data(full_message=typed)).signature).hex()
        if method == "eth_sendTransaction":
            if self.reject:
                raise _Rejected
            tx = params[0]
            me = self.account.address
            built = {
                "from": me,
                "to": Web3.to_checksum_address(tx["to"]),
                "data": tx.get("data", "0x"),
                "value": int(tx.get("value", "0x0"), 16),
                "nonce": self.w3.eth.get_transaction_count(me),
                "chainId": self.w3.eth.chain_id,
                "gasPrice": self.w3.eth.gas_price,
            }
            built["gas"] = self.w3.eth.estimate_gas(built)  # type: ignore[arg-type]
            signed = self.account.sign_transaction(built)  # type: ignore[arg-type]
            return "0x" + bytes(self.w3.eth.send_raw_transaction(signed.raw_transaction)).hex()
        raise AssertionError(f"the dashboard asked the wallet for {method}, which a test wallet does not expect")


class _Rejected(Exception):
    pass


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
