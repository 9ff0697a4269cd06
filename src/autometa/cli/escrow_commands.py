"""`autometa escrow deposit|withdraw|balance`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from autometa.chain.deploy import transact
from autometa.chain.sentences import coin
from autometa.cli.common import (
    AsOpt,
    CliError,
    chain_context,
    console,
    emit,
    handle_errors,
    load_key,
    parse_coin,
    progress,
)

app = typer.Typer(help="Your escrow balance, which pays for your workflows' runs and transfers.", no_args_is_help=True)

RpcOpt = Annotated[str | None, typer.Option(help="JSON-RPC endpoint (default: MOONBASE_RPC)")]
KeyOpt = Annotated[str | None, typer.Option(help="your private key (default: $USER_PRIVATE_KEY)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
WeiOpt = Annotated[bool, typer.Option("--wei", help="AMOUNT is in wei, not coins")]
# `deposit -1` must reach the amount check ("must be positive"), not read as an unknown option.
NUMBER_ARGS = {"ignore_unknown_options": True}


def _tx(receipt: object) -> str:
    return "0x" + bytes(receipt["transactionHash"]).hex().removeprefix("0x")  # type: ignore[index]


@app.command(context_settings=NUMBER_ARGS)
@handle_errors
def deposit(
    amount: str,
    rpc_url: RpcOpt = None,
    key: KeyOpt = None,
    wei: WeiOpt = False,
    as_json: JsonOpt = False,
    as_role: AsOpt = None,
) -> None:
    """Deposit AMOUNT coins into your escrow."""
    value = parse_coin(amount, wei)
    account = load_key(key, as_role=as_role)
    ctx = chain_context(rpc_url)
    call = ctx.core.functions.deposit()
    held = ctx.w3.eth.get_balance(account.address)
    tx: Any = {"from": account.address, "value": min(value, held)}
    gas = call.estimate_gas(tx) if held else 21_000
    needed = value + gas * int(ctx.w3.eth.gas_price)
    if held < needed:
        raise CliError(
            f"the wallet {account.address} holds {coin(held)}; depositing {coin(value)} needs {coin(needed)} with gas"
        )
    with progress("depositing…"):
        receipt = transact(ctx.w3, account, call, value=value)
    balance = ctx.core.functions.balanceOf(account.address).call()
    emit(
        {"tx_hash": _tx(receipt), "deposited_wei": value, "balance_wei": balance},
        as_json,
        lambda: console.print(
            f"deposited {coin(value)}; escrow balance {coin(balance)} (tx {_tx(receipt)})", highlight=False
        ),
    )


@app.command(context_settings=NUMBER_ARGS)
@handle_errors
def withdraw(
    amount: str,
    rpc_url: RpcOpt = None,
    key: KeyOpt = None,
    wei: WeiOpt = False,
    as_json: JsonOpt = False,
    as_role: AsOpt = None,
) -> None:
    """Withdraw AMOUNT coins from your escrow."""
    value = parse_coin(amount, wei)
    account = load_key(key, as_role=as_role)
    ctx = chain_context(rpc_url)
    with progress("withdrawing…"):
        receipt = transact(ctx.w3, account, ctx.core.functions.withdraw(value))
    balance = ctx.core.functions.balanceOf(account.address).call()
    emit(
        {"tx_hash": _tx(receipt), "withdrawn_wei": value, "balance_wei": balance},
        as_json,
        lambda: console.print(
            f"withdrew {coin(value)}; escrow balance {coin(balance)} (tx {_tx(receipt)})", highlight=False
        ),
    )


@app.command()
@handle_errors
def balance(
    address: Annotated[str | None, typer.Argument(help="whose balance (default: your key's address)")] = None,
    rpc_url: RpcOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
    as_role: AsOpt = None,
) -> None:
    """Show an escrow balance."""
    from autometa.domain.types import check_address

    who = check_address(address) if address else load_key(key, as_role=as_role).address
    ctx = chain_context(rpc_url)
    bal, cap, is_executor = ctx.core.functions.accountOf(who).call()
    emit(
        {"address": who, "balance_wei": bal, "max_gas_price_wei": cap, "is_executor": is_executor},
        as_json,
        lambda: console.print(f"{who}: {coin(bal)} in escrow", highlight=False),
    )
