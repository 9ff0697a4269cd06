"""CoinGecko client against a real local stand-in: one request per batch, polite retries,
and values that cannot be prices never come out."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import format_datetime

import pytest
from structlog.testing import capture_logs

from autometa.prices import CoinGeckoClient, ManualClock, PriceError, PriceSource, RateLimited, parse_retry_after
from autometa.prices.models import parse_usd
from tests.support.coingecko_stub import CoinGeckoStub

from .conftest import PRICES, usd


async def test_many_assets_in_one_request(coingecko: CoinGeckoStub, cg_client: CoinGeckoClient) -> None:
    assets = [f"token-{i}" for i in range(20)]
    coingecko.prices.update({a: 1 + i for i, a in enumerate(assets)})
    prices = await cg_client.fetch(assets)
    assert coingecko.requests == 1
    assert sorted(coingecko.request_ids[0]) == sorted(assets)
    assert prices["token-3"].usd == Decimal(4)
    assert {p.source for p in prices.values()} == {PriceSource.COINGECKO_DIRECT}


async def test_prices_are_exact_decimals(cg_client: CoinGeckoClient) -> None:
    prices = await cg_client.fetch(["ethereum"])
    assert prices["ethereum"].usd == usd(PRICES["ethereum"])  # Decimal("3198.15"), not a float


async def test_429_waits_retry_after_seconds(coingecko: CoinGeckoStub, clock: ManualClock) -> None:
    coingecko.fail_next(429, retry_after="7")
    client = CoinGeckoClient(coingecko.url, clock=clock, sleep=clock.sleep, backoff_base=0.5)
    prices = await client.fetch(["ethereum"])
    await client.aclose()
    assert prices["ethereum"].usd == usd(PRICES["ethereum"])
    assert coingecko.requests == 2
    assert 7 <= sum(clock.slept) <= 7.5  # Retry-After plus at most one jitter step


async def test_429_with_http_date(coingecko: CoinGeckoStub, clock: ManualClock) -> None:
    when = datetime.fromtimestamp(clock() + 12, tz=UTC)
    coingecko.fail_next(429, retry_after=format_datetime(when, usegmt=True))
    client = CoinGeckoClient(coingecko.url, clock=clock, sleep=clock.sleep)
    assert "ethereum" in await client.fetch(["ethereum"])
    await client.aclose()
    assert 12 <= sum(clock.slept) <= 13


async def test_long_retry_after_fails_fast_and_blocks_later_calls(coingecko: CoinGeckoStub, clock: ManualClock) -> None:
    coingecko.fail_next(429, retry_after="600")
    client = CoinGeckoClient(coingecko.url, clock=clock, sleep=clock.sleep, max_wait=30)
    with pytest.raises(RateLimited) as raised:
        await client.fetch(["ethereum"])
    assert raised.value.retry_after == 600
    with pytest.raises(RateLimited):  # still inside the window: no request at all
        await client.fetch(["ethereum"])
    assert coingecko.requests == 1
    clock.advance(601)
    assert "ethereum" in await client.fetch(["ethereum"])
    await client.aclose()
    assert coingecko.requests == 2


async def test_server_errors_back_off_exponentially_with_jitter(coingecko: CoinGeckoStub, clock: ManualClock) -> None:
    coingecko.fail_next(500, times=3)
    client = CoinGeckoClient(coingecko.url, clock=clock, sleep=clock.sleep, rng=random.Random(1), backoff_base=1)
    assert "ethereum" in await client.fetch(["ethereum"])
    await client.aclose()
    assert coingecko.requests == 4
    assert len(clock.slept) == 3
    assert all(0 <= d <= 2**i for i, d in enumerate(clock.slept))


async def test_gives_up_after_max_attempts(coingecko: CoinGeckoStub, clock: ManualClock) -> None:
    coingecko.fail_next(503, times=10)
    client = CoinGeckoClient(coingecko.url, clock=clock, sleep=clock.sleep, max_attempts=3)
    with pytest.raises(PriceError, match="503"):
        await client.fetch(["ethereum"])
    await client.aclose()
    assert coingecko.requests == 3


async def test_client_errors_are_not_retried(coingecko: CoinGeckoStub, cg_client: CoinGeckoClient) -> None:
    coingecko.fail_next(401)
    with pytest.raises(PriceError, match="401"):
        await cg_client.fetch(["ethereum"])
    assert coingecko.requests == 1


async def test_timeout(coingecko: CoinGeckoStub, clock: ManualClock) -> None:
    coingecko.delay = 1.0
    client = CoinGeckoClient(coingecko.url, clock=clock, sleep=clock.sleep, timeout=0.1, max_attempts=2)
    with pytest.raises(PriceError, match="ReadTimeout"):
        await client.fetch(["ethereum"])
    await client.aclose()
    assert coingecko.requests == 2


async def test_malformed_json_is_an_error(coingecko: CoinGeckoStub, cg_client: CoinGeckoClient) -> None:
    coingecko.raw_body = "<html>rate limited</html>"
    with pytest.raises(PriceError, match="not JSON"):
        await cg_client.fetch(["ethereum"])
    coingecko.raw_body = "[1, 2]"
    with pytest.raises(PriceError, match="not an object"):
        await cg_client.fetch(["ethereum"])


async def test_absurd_values_are_dropped_with_a_reason(coingecko: CoinGeckoStub, cg_client: CoinGeckoClient) -> None:
    coingecko.prices.update(
        {"zero": 0, "negative": -5, "text": "abc", "nan": float("nan"), "inf": float("inf"), "huge": 1e13, "flag": True}
    )
    coingecko.raw_body = None
    with capture_logs() as logs:
        prices = await cg_client.fetch(["ethereum", "zero", "negative", "text", "nan", "inf", "huge", "flag"])
    assert set(prices) == {"ethereum"}
    reasons = {e["asset"]: e["reason"] for e in logs if e["event"] == "price_rejected"}
    assert set(reasons) == {"zero", "negative", "text", "nan", "inf", "huge", "flag"}
    assert reasons["huge"].startswith("absurdly large") and reasons["negative"].startswith("not positive")


async def test_unknown_ids_are_absent(cg_client: CoinGeckoClient) -> None:
    with capture_logs() as logs:
        prices = await cg_client.fetch(["ethereum", "no-such-coin"])
    assert set(prices) == {"ethereum"}
    assert any(e.get("asset") == "no-such-coin" for e in logs)


def test_retry_after_forms() -> None:
    assert parse_retry_after("120", now=0) == 120
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=40) == 60
    assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=400) == 0
    assert parse_retry_after("soon", now=0) is None
    assert parse_retry_after(None, now=0) is None


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (1, True),
        ("2.5", True),
        (Decimal("1e12"), True),
        (0, False),
        (-1, False),
        ("x", False),
        (float("nan"), False),
        (Decimal("Infinity"), False),
        (10**13, False),
        (None, False),
        (True, False),
        ({}, False),
    ],
)
def test_parse_usd(value: object, ok: bool) -> None:
    price, reason = parse_usd(value)
    assert (price is not None) is ok and (reason is None) is ok
