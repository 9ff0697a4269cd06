"""The dashboard on an API serving two chains (issue 16): it follows the wallet's chain (on
connect and on every network switch), says when the wallet's chain is not served, and lists the
owner's workflows on every chain with a chain column."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from autometa.api import Services, create_app
from autometa.chain.accounts import dev_account
from autometa.chain.anvil import Anvil, free_port
from autometa.chain.contracts import autometa
from autometa.chain.deploy import transact
from autometa.chain.devnet import setup_dev_stack
from autometa.chain.indexer import EventIndexer
from autometa.chain.web3 import connect
from autometa.config import Settings
from autometa.domain.workflow import WorkflowSpec
from autometa.store import Store
from tests.conftest import DevChain
from tests.dashboard.conftest import InjectedWallet
from tests.support.coingecko_stub import CoinGeckoStub

pytestmark = pytest.mark.slow
SECOND = 31338
OWNER = dev_account(8)


def _seed(chain: DevChain, amount_wei: str) -> None:
    """A deposit and one interval workflow of OWNER on `chain`."""
    core = autometa(chain.w3, chain.deployment.address)
    transact(chain.w3, OWNER, core.functions.deposit(), value=10**17)
    spec = WorkflowSpec.model_validate(
        {
            "trigger_type": "interval",
            "trigger_data": {"interval": 3600},
            "action_type": "native",
            "action_data": {"to": dev_account(9).address, "amount_wei": amount_wei},
        }
    )
    transact(chain.w3, OWNER, core.functions.createWorkflow(spec.to_abi()))


@pytest.fixture(scope="module")
def two_chains(
    dev_chain_session: DevChain, coingecko_server: CoinGeckoStub, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, DevChain]]:
    """The API (no workers) on the session's dev chain and a second one, one SQLite store."""
    data = tmp_path_factory.mktemp("two-chains")
    with Anvil(chain_id=SECOND) as anvil:
        w3 = connect(anvil.url)
        second = DevChain(anvil, w3, setup_dev_stack(w3))
        first = dev_chain_session
        snapshot = first.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
        _seed(first, "1")
        _seed(second, "2")
        chains = [
            {"chain_id": 31337, "name": "dev", "rpc": first.url, "contract": first.deployment.address},
            {"chain_id": SECOND, "name": "dev2", "rpc": second.url, "contract": second.deployment.address},
        ]
        port = free_port()
        settings = Settings(
            _env_file=None,
            CHAINS=json.dumps(chains),
            DATA_DIR=str(data),
            DATABASE_URL=f"sqlite:///{data / 'api.db'}",
            API_PORT=port,
            REDIS_URL=None,
            PRICE_FEED_URL=coingecko_server.url,
            NOTIFY_ENABLED=False,
            RATE_LIMIT_PER_MINUTE=10_000,
        )  # type: ignore[call-arg]
        with Store.open(settings.database_url) as store:
            for chain in (first, second):
                EventIndexer(chain.w3, store, chain.deployment.address, chain.deployment.block).sync()
        holder: dict[str, Any] = {}

        def serve() -> None:
            async def main() -> None:
                services = await Services.from_settings(settings)
                config = uvicorn.Config(create_app(settings, services=services), port=port, log_level="warning")
                holder["server"] = server = uvicorn.Server(config)
                try:
                    await server.serve()
                finally:
                    await services.aclose()

            asyncio.run(main())

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/api/chains", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and thread.is_alive(), "the API did not come up"
            time.sleep(0.2)
        try:
            yield url, second
        finally:
            holder["server"].should_exit = True
            thread.join(timeout=20)
            first.w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]


def test_the_dashboard_follows_the_wallets_chain_and_lists_every_chain(
    two_chains: tuple[str, DevChain], browser: Any, artifacts: Path
) -> None:
    url, second = two_chains
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        wallet = InjectedWallet(OWNER, second.w3)  # on the second chain
        wallet.install(page)
        page.goto(url + "/")
        page.wait_for_selector("body[data-ready='1']")
        assert page.locator("[data-testid=chain-select] option").all_inner_texts() == ["dev (31337)", "dev2 (31338)"]
        assert page.input_value("[data-testid=chain-select]") == "dev"  # the default, before a wallet
        page.click("[data-testid=connect]")
        page.wait_for_function("() => document.getElementById('chain-select').value === 'dev2'")
        page.wait_for_function("() => document.getElementById('chain').textContent.startsWith('chain 31338')")
        # Every chain's workflows, each row naming its chain.
        page.wait_for_function("() => document.querySelectorAll('#wf-rows tr').length === 2")
        rows = {r.get_attribute("data-chain"): r.inner_text() for r in page.locator("#wf-rows tr").all()}
        assert set(rows) == {"dev", "dev2"} and all("#1" in text for text in rows.values()), rows
        page.screenshot(path=str(artifacts / "chains-01-on-dev2.png"), full_page=True)

        wallet.switch_chain(page, 31337)
        page.wait_for_function("() => document.getElementById('chain-select').value === 'dev'")
        page.wait_for_function("() => document.getElementById('chain').textContent.startsWith('chain 31337')")

        page.uncheck("[data-testid=every-chain]")  # only the chain the wallet is on
        page.wait_for_function("() => document.querySelectorAll('#wf-rows tr').length === 1")
        assert page.get_attribute("#wf-rows tr", "data-chain") == "dev"

        wallet.switch_chain(page, 8453)  # a chain this API does not serve: said, not guessed
        page.wait_for_function("() => document.getElementById('banner-text').textContent.includes('does not serve')")
        assert "8453" in page.inner_text("[data-testid=banner]")
        assert page.input_value("[data-testid=chain-select]") == "dev"
        assert not errors, errors
    finally:
        context.close()
