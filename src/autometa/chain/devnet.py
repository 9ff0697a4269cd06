"""The local dev stack on a chain: Autometa deployed, a mock feed per asset, a dev token,
executor and relayer allow-listed, users funded."""

from __future__ import annotations

from decimal import Decimal

from web3 import Web3

from autometa.chain.accounts import dev_role
from autometa.chain.deploy import (
    DEV_PRICES_USD,
    Deployment,
    deploy,
    deploy_dev_feeds,
    deploy_dev_token,
)


def setup_dev_stack(
    w3: Web3, assets: list[str] | None = None, prices: dict[str, Decimal] | None = None
) -> Deployment:
    admin = dev_role("admin")
    chosen = {
        a: (prices or {}).get(a, DEV_PRICES_USD.get(a, Decimal("1")))
        for a in (assets or list(DEV_PRICES_USD))
    }
    dep = deploy(w3, admin, executors=[dev_role("executor").address])
    dep.feeds = deploy_dev_feeds(w3, admin, dep.address, chosen)
    dep.token = deploy_dev_token(w3, admin, [dev_role("user").address], 1_000_000 * 10**18)
    return dep
