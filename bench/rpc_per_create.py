"""Benchmark: JSON-RPC requests the API makes per relayed workflow create (prepare + create).

A dev chain (anvil, automine) behind the counting RPC proxy of the tests, the API in-process
(embedded backend: SQLite, in-process cache, relayer key set), the CoinGecko stand-in for
prices. A few warm-up creates first (the first create resolves the chain id and the contract,
and initialises the relayer's nonce), then `--creates` sequential creates by the dev user, each
`POST /api/workflow/prepare`, `--sign-s` seconds (a person signing in a wallet), then `POST
/api/workflow/create` answered 200 (mined), `--sign-s` seconds apart: with the default 1.2 s no
create reuses another's or its prepare's second-old head and fees. The proxy counts every
request the API sends during those creates.

Progress goes to stderr; the last stdout line is one JSON object:
`rpc_calls_per_create` (mean), `by_method` (mean per create), `creates`.
Run: .venv/bin/python bench/rpc_per_create.py [--creates 20 --sign-s 1.2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def seed_body(user: str, recipient: str, i: int) -> dict[str, Any]:
    return {
        "user_address": user,
        "trigger_type": 2,
        "trigger_data": {"token": "ethereum", "comparator": 0, "price_usd": 1000.0 + i},
        "action_type": 0,
        "action_data": {"to": recipient, "amount_wei": "1000"},
    }


async def run(creates: int, warmup: int, sign_s: float) -> dict[str, Any]:
    import logging

    import httpx
    import structlog
    from tests.support.coingecko_stub import CoinGeckoStub
    from tests.support.rpc_proxy import RpcProxy

    from autometa.api import Services, create_app
    from autometa.chain.accounts import dev_role
    from autometa.chain.anvil import Anvil
    from autometa.chain.contracts import autometa
    from autometa.chain.deploy import transact
    from autometa.chain.devnet import setup_dev_stack
    from autometa.chain.web3 import connect
    from autometa.client import AsyncAutometaClient
    from autometa.client._base import signed_create
    from autometa.config import Settings

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    user, recipient, relayer = dev_role("user"), dev_role("recipient"), dev_role("relayer")
    with (
        Anvil() as anvil,
        RpcProxy(anvil.url) as proxy,
        CoinGeckoStub({"ethereum": 3198.15}) as stub,
        tempfile.TemporaryDirectory() as tmp,
    ):
        w3 = connect(anvil.url)
        dep = setup_dev_stack(w3)
        transact(w3, user, autometa(w3, dep.address).functions.deposit(), value=10 * 10**18)
        settings = Settings(
            _env_file=None,
            MOONBASE_RPC=proxy.url,
            REGISTRY_ADDRESS=dep.address,
            CHAIN_ID=31337,  # type: ignore[call-arg]
            RELAYER_PRIVATE_KEY="0x" + bytes(relayer.key).hex(),
            PRICE_FEED_URL=stub.url,
            DATA_DIR=tmp,
            DATABASE_URL=f"sqlite:///{tmp}/bench.db",
            REDIS_URL=None,
            RATE_LIMIT_PER_MINUTE=100_000,
            LOG_LEVEL="WARNING",
        )
        services = await Services.from_settings(settings)
        transport = httpx.ASGITransport(app=create_app(settings, services=services))
        client = AsyncAutometaClient("http://api.bench", transport=transport, timeout=60)
        try:
            for i in range(warmup):
                await client.create_signed(user, seed_body(user.address, recipient.address, i))
            before = Counter(proxy.calls)
            for i in range(creates):
                body = seed_body(user.address, recipient.address, warmup + i)
                prepared = await client.prepare_create(body)
                await asyncio.sleep(sign_s)
                created = await client.create(signed_create(body, prepared, user))
                print(f"created #{created.workflow_id}", file=sys.stderr, flush=True)
                await asyncio.sleep(sign_s)
            used = Counter(proxy.calls)
            used.subtract(before)
        finally:
            await client.aclose()
            await services.aclose()
    by_method = {m: round(n / creates, 2) for m, n in sorted(used.items(), key=lambda kv: -kv[1]) if n > 0}
    return {
        "rpc_calls_per_create": round(sum(used.values()) / creates, 2),
        "by_method": by_method,
        "creates": creates,
        "sign_s": sign_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--sign-s", type=float, default=1.2, help="seconds between prepare and create, and between creates"
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.creates, args.warmup, args.sign_s))))


if __name__ == "__main__":
    main()
