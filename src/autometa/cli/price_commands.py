"""`autometa price set`: move a dev-chain price feed."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer

from autometa.chain.accounts import dev_role
from autometa.chain.deploy import set_dev_price
from autometa.cli.common import BadInput, chain_context, console, emit, handle_errors, load_key
from autometa.domain.assets import asset_to_bytes32

app = typer.Typer(help="Prices on the dev chain.", no_args_is_help=True)


@app.command("set", context_settings={"ignore_unknown_options": True})
@handle_errors
def set_price(
    asset: Annotated[str, typer.Argument(help="asset id, e.g. ethereum")],
    usd: Annotated[str, typer.Argument(help="new USD price, e.g. 3198.15")],
    rpc_url: Annotated[str | None, typer.Option(help="JSON-RPC endpoint (default: MOONBASE_RPC)")] = None,
    key: Annotated[str | None, typer.Option(help="key to send with (default: the dev admin account)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Set ASSET's feed to USD (the feed must be a dev-chain MockV3Aggregator)."""
    try:
        price = Decimal(usd)
    except InvalidOperation:
        raise BadInput(f"price {usd!r} is not a number") from None
    if not price.is_finite() or price <= 0:
        raise BadInput(f"price must be positive (got {usd})")
    ctx = chain_context(rpc_url)
    _, feed, _, _ = ctx.core.functions.assetInfo(asset_to_bytes32(asset)).call()
    if int(feed, 16) == 0:
        raise BadInput(f"asset {asset!r} has no price feed on this chain")
    account = load_key(key) if key else dev_role("admin")
    receipt = set_dev_price(ctx.w3, account, feed, price)
    emit(
        {"asset": asset, "usd": str(price), "feed": feed, "tx_hash": "0x" + receipt["transactionHash"].hex()},
        as_json,
        lambda: console.print(f"{asset} feed {feed} now at ${price}", highlight=False),
    )
