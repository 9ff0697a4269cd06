"""The local dev stack on a chain: Autometa deployed, a mock feed per asset, a dev token,
executor and relayer allow-listed, users funded. Every asset the stack prices is registered on
the contract: with a mock feed, or (`attested`) as an asset the executor attests the price of."""

from __future__ import annotations

from decimal import Decimal

from web3 import Web3

from autometa.chain.accounts import dev_role
from autometa.chain.deploy import (
    DEV_PRICES_USD,
    DEV_TIMELOCK_SECONDS,
    Deployment,
    deploy,
    deploy_dev_feeds,
    deploy_dev_token,
)
from autometa.chain.multicall3 import ensure_multicall3


def setup_dev_stack(
    w3: Web3,
    assets: list[str] | None = None,
    prices: dict[str, Decimal] | None = None,
    attested: list[str] | None = None,
) -> Deployment:
    admin = dev_role("admin")
    chosen = {a: (prices or {}).get(a, DEV_PRICES_USD.get(a, Decimal("1"))) for a in (assets or list(DEV_PRICES_USD))}
    extra = [a for a in attested or [] if a not in chosen]
    dep = deploy(w3, admin, executors=[dev_role("executor").address], timelock=DEV_TIMELOCK_SECONDS, assets=extra)
    dep.feeds = deploy_dev_feeds(w3, admin, dep.address, chosen)
    dep.token = deploy_dev_token(w3, admin, [dev_role("user").address], 1_000_000 * 10**18)
    ensure_multicall3(w3, admin)  # at its canonical address, as on public chains (STATE triggers batch views)
    return dep
