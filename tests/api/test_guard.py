"""API key, per-client rate limits (in-process and Redis), CORS; the relayer key never shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.conftest import RELAYER, close_api, open_api, seed_body
from tests.conftest import DevChain
from tests.support.coingecko_stub import CoinGeckoStub


async def test_api_key_protects_relayer_endpoints_only(
    dev_chain: DevChain, coingecko: CoinGeckoStub, tmp_path: Path
) -> None:
    api, prefix = await open_api("embedded", dev_chain, coingecko, tmp_path, None, API_KEY="s3cret-key")
    try:
        body = seed_body(max_fee_per_run_wei="10000000000000000")
        missing = await api.client.post("/api/workflow/prepare", json=body)
        assert missing.status_code == 401 and missing.json()["field"] == "X-API-Key"
        wrong = await api.client.post("/api/workflow/prepare", json=body, headers={"X-API-Key": "nope"})
        assert wrong.status_code == 401
        ok = await api.client.post("/api/workflow/prepare", json=body, headers={"X-API-Key": "s3cret-key"})
        assert ok.status_code == 402  # past the key: the user simply has no escrow yet
        assert (await api.client.get("/api/price/assets")).status_code == 200
        assert "s3cret-key" not in repr(api.settings) and bytes(RELAYER.key).hex() not in repr(api.settings)
    finally:
        await close_api(api, prefix)


@pytest.mark.parametrize("backend", ["embedded", pytest.param("distributed", marks=pytest.mark.redis)])
async def test_rate_limit_per_client(
    request: pytest.FixtureRequest, backend: str, dev_chain: DevChain, coingecko: CoinGeckoStub, tmp_path: Path
) -> None:
    pg = request.getfixturevalue("pg_url") if backend == "distributed" else None
    api, prefix = await open_api(backend, dev_chain, coingecko, tmp_path, pg, RATE_LIMIT_PER_MINUTE=3)
    try:
        codes = [(await api.client.post("/api/workflow/prepare", json=seed_body())).status_code for _ in range(4)]
        assert codes[:3] == [402, 402, 402] and codes[3] == 429
        limited = await api.client.post("/api/workflow/create", json=seed_body())
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert (await api.client.get("/api/price/assets")).status_code == 200  # reads are not limited
    finally:
        await close_api(api, prefix)


async def test_cors_is_configurable(dev_chain: DevChain, coingecko: CoinGeckoStub, tmp_path: Path) -> None:
    api, prefix = await open_api("embedded", dev_chain, coingecko, tmp_path, None, CORS_ORIGINS="https://app.example")
    try:
        headers = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
        allowed = await api.client.options("/api/workflow/prepare", headers=headers)
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        other = await api.client.get("/api/price/assets", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
    finally:
        await close_api(api, prefix)
