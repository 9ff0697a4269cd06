"""`autometa escrow deposit|withdraw|balance`."""

from __future__ import annotations

from typing import Annotated

import typer
from web3 import Web3

from autometa.chain.deploy import transact
from autometa.cli.common import chain_context, console, emit, handle_errors, load_key, parse_coin, progress

app = typer.Typer(help="Your escrow balance, which pays for your workflows' runs and transfers.", no_args_is_help=True)

RpcOpt = Annotated[str | None, typer.Option(help="JSON-RPC endpoint (default: MOONBASE_RPC)")]
KeyOpt = Annotated[str | None, typer.Option(help="your private key (default: $USER_PRIVATE_KEY)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
WeiOpt = Annotated[bool, typer.Option("--wei", help="AMOUNT is in wei, not coins")]


@app.command()
@handle_errors
def deposit(
    amount: str, rpc_url: RpcOpt = None, key: KeyOpt = None, wei: WeiOpt = False, as_json: JsonOpt = False
) -> None:
    """Deposit AMOUNT coins into your escrow."""
    ctx, account, value = chain_context(rpc_url), load_key(key), parse_coin(amount, wei)
    with progress("depositing…"):
        receipt = transact(ctx.w3, account, ctx.core.functions.deposit(), value=value)
    balance = ctx.core.functions.balanceOf(account.address).call()
    emit(
        {"tx_hash": receipt["transactionHash"].hex(), "deposited_wei": value, "balance_wei": balance},
        as_json,
        lambda: console.print(f"deposited {Web3.from_wei(value, 'ether')}; balance {Web3.from_wei(balance, 'ether')}"),
    )


@app.command()
@handle_errors
def withdraw(
    amount: str, rpc_url: RpcOpt = None, key: KeyOpt = None, wei: WeiOpt = False, as_json: JsonOpt = False
) -> None:
    """Withdraw AMOUNT coins from your escrow."""
    ctx, account, value = chain_context(rpc_url), load_key(key), parse_coin(amount, wei)
    with progress("withdrawing…"):
        receipt = transact(ctx.w3, account, ctx.core.functions.withdraw(value))
    balance = ctx.core.functions.balanceOf(account.address).call()
    emit(
        {"tx_hash": receipt["transactionHash"].hex(), "withdrawn_wei": value, "balance_wei": balance},
        as_json,
        lambda: console.print(f"withdrew {Web3.from_wei(value, 'ether')}; balance {Web3.from_wei(balance, 'ether')}"),
    )


@app.command()
@handle_errors
def balance(
    address: Annotated[str | None, typer.Argument(help="whose balance (default: your key's address)")] = None,
    rpc_url: RpcOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show an escrow balance."""
    from autometa.domain.types import check_address

    ctx = chain_context(rpc_url)
    who = check_address(address) if address else load_key(key).address
    bal, cap, is_executor = ctx.core.functions.accountOf(who).call()
    emit(
        {"address": who, "balance_wei": bal, "max_gas_price_wei": cap, "is_executor": is_executor},
        as_json,
        lambda: console.print(f"{who}: {Web3.from_wei(bal, 'ether')} in escrow", highlight=False),
    )
