"""The backend down and the price source misbehaving, under the distributed worker (a scheduler,
an executor, anvil with 1 s blocks, Redis, PostgreSQL) and a CoinGecko stand-in.

Price workflows on an asset with no on-chain feed (its price is what the executor attests, so
the off-chain tiers decide when it fires). The backend is down from the start: the workers say so
and fall back to CoinGecko direct. CoinGecko then answers 429s, a malformed body, NaN, a negative
and an absurd price, times out, and answers a price too large to attest: nothing may fire on any
of that. Then a sane price crosses the threshold: those workflows run exactly once, the others
never; the store equals the chain, the escrow is exact.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from autometa.chain.accounts import dev_account
from autometa.chain.anvil import free_port

from ..conftest import fresh_pg_database
from ..support.coingecko_stub import CoinGeckoStub
from ..support.stack import distributed_stack, native_spec, recipient
from .helpers import AMOUNT, Scenario, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

TOKEN = "dogecoin"  # no dev feed: priced off-chain
ASSETS = f"ethereum,bitcoin,moonbeam,polkadot,usd-coin,tether,{TOKEN}"


@pytest.fixture(scope="module")
def priced() -> Iterator[tuple[Scenario, CoinGeckoStub]]:
    with (
        CoinGeckoStub({}) as coingecko,
        fresh_pg_database() as database_url,
        distributed_stack(
            database_url,
            executors=(5,),
            USE_BACKEND_INTEGRATION="true",
            BACKEND_API_URL=f"http://127.0.0.1:{free_port()}",
            PRICE_FEED_URL=coingecko.url,
            SUPPORTED_ASSETS=ASSETS,
        ) as stack,
    ):
        stack.start_workers({"executor": 5})
        yield Scenario(stack), coingecko


def test_backend_down_and_a_misbehaving_price_source(priced: tuple[Scenario, CoinGeckoStub]) -> None:
    sc, coingecko = priced
    stack = sc.stack
    for name in ("scheduler", "executor"):
        assert "backend is not available" in stack.log_text(name)  # the seed's fallback, said at start
    owners = [dev_account(i) for i in (3, 8, 9)]
    coingecko.fail_next(429, times=2, retry_after="1")
    below = [
        (
            owners[i % 3],
            native_spec(2, {"token": TOKEN, "comparator": 0, "price_usd": "0.1"}, recipient(1000 + i), AMOUNT),
        )
        for i in range(4)
    ]
    above = [
        (owners[i % 3], native_spec(2, {"token": TOKEN, "comparator": 1, "price_usd": 1}, recipient(1100 + i), AMOUNT))
        for i in range(4)
    ]
    ids = stack.create_many(below + above)
    fire, never = ids[:4], ids[4:]

    def served(n: int) -> None:
        target = coingecko.requests + n
        wait_until(f"{n} more price requests", lambda: coingecko.requests >= target, 40, stack)

    served(2)  # the two 429s (Retry-After honoured)
    coingecko.raw_body = "{not json"
    served(1)
    coingecko.raw_body = None
    for absurd in (float("nan"), -5, 1e30):
        coingecko.prices = {TOKEN: absurd}
        served(1)
    coingecko.prices = {TOKEN: 0.2}
    coingecko.delay = 11.0  # past the client's 10 s timeout
    served(1)
    coingecko.prices = {TOKEN: 5e11}  # under the adapter's $1e12 bound, over what a uint64 attests
    coingecko.delay = 0.0
    wait_until("the price too large to attest", lambda: "price.out_of_range" in stack.log_text("scheduler"), 40, stack)
    assert not {wid for wid, _ in stack.run_counts()} & set(ids), "a workflow fired on a bad price"
    coingecko.prices = {TOKEN: 0.05}  # a sane price below 0.1: `fire` are due now, `never` are not
    sc.due.update((wid, 0) for wid in fire)
    sc.settle(timeout=60)
    assert all(stack.state(wid).run_count == 0 for wid in never)
    report = sc.audit()
    report.assert_ok()
    assert report.executed == len(fire)
