"""The worker's start-up check of the backend (the seed's log lines): healthy with contract
addresses, or down with a warning and a fallback — never a failed start."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog

from autometa.chain.anvil import free_port
from autometa.config import load_settings
from autometa.worker.startup import check_backend
from tests.support.coingecko_stub import CONTRACTS, BackendStub, CoinGeckoStub


@pytest.fixture(autouse=True)
def _default_logging() -> Iterator[None]:
    """capture_logs sees only what the wrapper class lets through: another test in the same
    worker may have left a level-filtering configuration behind (LOG_LEVEL=WARNING)."""
    saved = structlog.get_config()
    structlog.reset_defaults()
    try:
        yield
    finally:
        structlog.configure(**saved)


async def test_healthy_backend_logs_its_contract_addresses() -> None:
    with CoinGeckoStub({"ethereum": 3198.15}) as gecko, BackendStub(gecko.url) as backend:
        settings = load_settings(BACKEND_API_URL=backend.url)
        with structlog.testing.capture_logs() as logs:
            assert await check_backend(settings) is True
    events = {entry["event"]: entry for entry in logs}
    assert "backend is healthy" in events
    assert events["backend contract addresses"]["WorkflowRegistry"] == CONTRACTS["WorkflowRegistry"]


async def test_backend_down_warns_and_continues() -> None:
    settings = load_settings(BACKEND_API_URL=f"http://127.0.0.1:{free_port()}")
    with structlog.testing.capture_logs() as logs:
        assert await check_backend(settings) is False
    assert any(e["log_level"] == "warning" and "falls back" in e["event"] for e in logs)


async def test_integration_disabled_skips_the_backend() -> None:
    settings = load_settings(USE_BACKEND_INTEGRATION=False, BACKEND_API_URL=f"http://127.0.0.1:{free_port()}")
    assert await check_backend(settings) is False
