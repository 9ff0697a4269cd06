"""`autometa admin …`: the deployment admin's changes, through the contract's timelock.

Allowing an executor, setting a feed, raising the premium or the tip cap wait `timelockDelay`
once workflows exist (`admin pending` lists them, `admin apply ID` applies one when its time has
come, `admin cancel ID` drops it); revoking an executor and lowering the premium or tip cap apply
at once. The key is --key, else $ADMIN_PRIVATE_KEY, else $DEPLOYER_PRIVATE_KEY.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.logs import DISCARD

from autometa.chain.admin import PendingChange, pending_changes
from autometa.chain.deploy import deploy_chain_module, transact
from autometa.cli.common import (
    ChainContext,
    CliError,
    admin_signer,
    chain_context,
    console,
    emit,
    handle_errors,
    load_key,
    progress,
)
from autometa.domain.assets import asset_to_bytes32
from autometa.domain.types import check_address
from autometa.networks import ChainModule

app = typer.Typer(help="Deployment admin: executors, feeds, premium, tip cap (timelocked).", no_args_is_help=True)
executor_app = typer.Typer(help="Allow or revoke an executor.", no_args_is_help=True)
feed_app = typer.Typer(help="Price feeds and the assets price workflows may use.", no_args_is_help=True)
app.add_typer(executor_app, name="executor")
app.add_typer(feed_app, name="feed")

RpcOpt = Annotated[str | None, typer.Option(help="JSON-RPC endpoint (default: MOONBASE_RPC)")]
KeyOpt = Annotated[
    str | None, typer.Option(help="the admin's private key (default: $ADMIN_PRIVATE_KEY, else $DEPLOYER_PRIVATE_KEY)")
]
ContractOpt = Annotated[str | None, typer.Option(help="Autometa address (default: settings / deployment file)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _address(value: str, what: str) -> str:
    try:
        return check_address(value)
    except ValueError as exc:
        raise CliError(f"{what} {value!r} {exc}") from None


def _asset(name: str) -> bytes:
    try:
        return asset_to_bytes32(name)
    except ValueError as exc:
        raise CliError(f"ASSET: {exc}") from None


def _admin(rpc_url: str | None, contract: str | None, key: str | None) -> tuple[ChainContext, LocalAccount]:
    """The chain, and the admin's key — refused here, with the owner named, if it is not the admin's."""
    ctx = chain_context(rpc_url, contract)
    return ctx, admin_signer(ctx, key)  # --key, ADMIN_SIGNER, $ADMIN_PRIVATE_KEY, $DEPLOYER_PRIVATE_KEY


def _send(ctx: ChainContext, account: LocalAccount, call: Any, what: str, as_json: bool) -> None:
    """Send one admin change and say whether it applied at once or waits in the timelock."""
    with progress(f"{what}…"):
        receipt = transact(ctx.w3, account, call)
    queued = ctx.core.events.ChangeQueued().process_receipt(receipt, errors=DISCARD)
    tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
    if queued:
        args = queued[0].args
        change_id, eta = int(args.changeId), int(args.eta)
        wait = max(eta - int(ctx.w3.eth.get_block("latest")["timestamp"]), 0)
        emit(
            {"status": "queued", "change_id": change_id, "eta": eta, "seconds_left": wait, "tx_hash": tx_hash},
            as_json,
            lambda: console.print(
                f"[yellow]queued[/] change #{change_id}: {what}; apply it with `autometa admin apply {change_id}` "
                f"in {wait} s (eta {eta})",
                highlight=False,
            ),
        )
    else:
        emit(
            {"status": "applied", "tx_hash": tx_hash},
            as_json,
            lambda: console.print(f"[green]applied[/]: {what}", highlight=False),
        )


@executor_app.command("add")
@handle_errors
def executor_add(
    address: str, rpc_url: RpcOpt = None, contract: ContractOpt = None, key: KeyOpt = None, as_json: JsonOpt = False
) -> None:
    """Allow ADDRESS to execute runs (waits in the timelock once workflows exist)."""
    who = _address(address, "ADDRESS")
    ctx, account = _admin(rpc_url, contract, key)
    _send(ctx, account, ctx.core.functions.setExecutor(who, True), f"allow executor {who}", as_json)


@executor_app.command("remove")
@handle_errors
def executor_remove(
    address: str, rpc_url: RpcOpt = None, contract: ContractOpt = None, key: KeyOpt = None, as_json: JsonOpt = False
) -> None:
    """Revoke ADDRESS as an executor (applies at once)."""
    who = _address(address, "ADDRESS")
    ctx, account = _admin(rpc_url, contract, key)
    _send(ctx, account, ctx.core.functions.setExecutor(who, False), f"revoke executor {who}", as_json)


@feed_app.command("set")
@handle_errors
def feed_set(
    asset: str,
    feed: Annotated[str, typer.Argument(help="an AggregatorV3Interface address, or 'none' to remove the feed")],
    max_age: Annotated[int, typer.Option(help="seconds a feed answer stays usable")] = 3600,
    rpc_url: RpcOpt = None,
    contract: ContractOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set (or remove) ASSET's price feed. A new asset applies at once; an existing one waits."""
    raw = _asset(asset)
    ctx, account = _admin(rpc_url, contract, key)
    if feed.lower() in ("none", "0", "0x0"):
        address, max_age, what = "0x" + "00" * 20, 0, f"remove the price feed of {asset}"
    else:
        address = _address(feed, "FEED")
        if max_age <= 0 or max_age > 2**32 - 1:
            raise CliError("--max-age must be between 1 and 4294967295 seconds")
        if not ctx.w3.eth.get_code(Web3.to_checksum_address(address)):
            raise CliError(f"no contract at {address}: a feed must be an AggregatorV3Interface")
        what = f"price feed of {asset} → {address} (max age {max_age} s)"
    _send(ctx, account, ctx.core.functions.setFeed(raw, Web3.to_checksum_address(address), max_age), what, as_json)


@feed_app.command("register")
@handle_errors
def feed_register(
    asset: str, rpc_url: RpcOpt = None, contract: ContractOpt = None, key: KeyOpt = None, as_json: JsonOpt = False
) -> None:
    """Register ASSET without a feed (the executor attests its price), so price workflows may use it."""
    raw = _asset(asset)
    ctx, account = _admin(rpc_url, contract, key)
    _send(ctx, account, ctx.core.functions.registerAsset(raw), f"register {asset} (attested prices)", as_json)


@app.command("premium")
@handle_errors
def premium(
    bps: Annotated[int, typer.Argument(help="the executor's premium on top of gas cost, in basis points")],
    rpc_url: RpcOpt = None,
    contract: ContractOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set the premium (a raise waits in the timelock, a cut applies at once)."""
    ctx, account = _admin(rpc_url, contract, key)
    top = int(ctx.core.functions.MAX_PREMIUM_BPS().call())
    if not 0 <= bps <= top:
        raise CliError(f"premium must be between 0 and {top} bps")
    _send(ctx, account, ctx.core.functions.setPremium(bps), f"premium → {bps} bps", as_json)


@app.command("gas-cap")
@handle_errors
def gas_cap(
    tip: Annotated[str, typer.Argument(help="the most tip per gas above the base fee a fee is computed with, in gwei")],
    wei: Annotated[bool, typer.Option("--wei", help="TIP is in wei, not gwei")] = False,
    rpc_url: RpcOpt = None,
    contract: ContractOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set the tip cap: fees use at most min(tx gas price, base fee + TIP, the owner's cap)."""
    from decimal import Decimal, InvalidOperation

    try:
        amount = Decimal(tip) * (1 if wei else 10**9)
    except InvalidOperation:
        raise CliError(f"tip {tip!r} is not a number") from None
    if not amount.is_finite() or amount < 0 or amount != amount.to_integral_value():
        raise CliError("tip must be a non-negative whole number of wei")
    ctx, account = _admin(rpc_url, contract, key)
    bound = int(ctx.core.functions.MAX_TIP_BOUND().call())
    if amount > bound:
        raise CliError(f"tip must be at most {bound / 10**9:g} gwei (the contract's hard bound)")
    _send(ctx, account, ctx.core.functions.setMaxTip(int(amount)), f"tip cap → {int(amount) / 10**9:g} gwei", as_json)


@app.command("set-chain-module")
@handle_errors
def set_chain_module(
    module: Annotated[ChainModule, typer.Argument(help="how the L1 data fee is charged: none, optimism, arbitrum")],
    rpc_url: RpcOpt = None,
    contract: ContractOpt = None,
    key: KeyOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Deploy a chain module of kind MODULE and make it the deployment's (waits in the timelock
    once workflows exist: it can raise every fee)."""
    ctx, account = _admin(rpc_url, contract, key)
    address = deploy_chain_module(ctx.w3, account, module)
    _send(ctx, account, ctx.core.functions.setChainModule(address), f"chain module → {module} ({address})", as_json)


@app.command("pending")
@handle_errors
def pending(rpc_url: RpcOpt = None, contract: ContractOpt = None, as_json: JsonOpt = False) -> None:
    """List the queued changes, with the time each may be applied (anyone may look)."""
    ctx = chain_context(rpc_url, contract)
    now = int(ctx.w3.eth.get_block("latest")["timestamp"])
    changes = pending_changes(ctx.core)
    delay = int(ctx.core.functions.timelockDelay().call())

    def human() -> None:
        if not changes:
            console.print(f"no pending admin changes (timelock: {delay} s)")
        for c in changes:
            when = "ready" if c.ready(now) else f"in {c.eta - now} s"
            console.print(f"#{c.id}  {c.description}  (eta {c.eta}, {when})", highlight=False)

    emit({"timelock_seconds": delay, "now": now, "changes": [c.as_dict(now) for c in changes]}, as_json, human)


def _pending_or_fail(ctx: ChainContext, change_id: int) -> PendingChange:
    for c in pending_changes(ctx.core):
        if c.id == change_id:
            return c
    raise CliError(f"no pending change #{change_id} (see `autometa admin pending`)")


@app.command("apply")
@handle_errors
def apply(
    change_id: int, rpc_url: RpcOpt = None, contract: ContractOpt = None, key: KeyOpt = None, as_json: JsonOpt = False
) -> None:
    """Apply queued change CHANGE_ID once its delay has passed."""
    ctx, account = _admin(rpc_url, contract, key)
    change = _pending_or_fail(ctx, change_id)
    now = int(ctx.w3.eth.get_block("latest")["timestamp"])
    if not change.ready(now):
        wait = change.eta - now
        raise CliError(f"change #{change_id} ({change.description}) can be applied in {wait} s (eta {change.eta})")
    with progress(f"applying #{change_id}…"):
        receipt = transact(ctx.w3, account, ctx.core.functions.applyChange(change_id))
    tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
    emit(
        {"status": "applied", "change_id": change_id, "tx_hash": tx_hash},
        as_json,
        lambda: console.print(f"[green]applied[/] #{change_id}: {change.description}", highlight=False),
    )


@app.command("cancel")
@handle_errors
def cancel(
    change_id: int, rpc_url: RpcOpt = None, contract: ContractOpt = None, key: KeyOpt = None, as_json: JsonOpt = False
) -> None:
    """Drop queued change CHANGE_ID."""
    ctx, account = _admin(rpc_url, contract, key)
    change = _pending_or_fail(ctx, change_id)
    with progress(f"cancelling #{change_id}…"):
        receipt = transact(ctx.w3, account, ctx.core.functions.cancelChange(change_id))
    tx_hash = "0x" + bytes(receipt["transactionHash"]).hex()
    emit(
        {"status": "cancelled", "change_id": change_id, "tx_hash": tx_hash},
        as_json,
        lambda: console.print(f"cancelled #{change_id}: {change.description}", highlight=False),
    )


@handle_errors
def invalidate_signatures(
    rpc_url: RpcOpt = None,
    key: Annotated[str | None, typer.Option(help="your private key (default: $USER_PRIVATE_KEY)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke every signature you gave and that was not relayed yet (moves your nonce past them)."""
    ctx, account = chain_context(rpc_url), load_key(key)
    before = int(ctx.core.functions.nonces(account.address).call())
    with progress("invalidating your outstanding signatures…"):
        receipt = transact(ctx.w3, account, ctx.core.functions.invalidateNonces())
    after = int(ctx.core.functions.nonces(account.address).call())
    emit(
        {
            "address": account.address,
            "nonce_before": before,
            "nonce": after,
            "tx_hash": "0x" + bytes(receipt["transactionHash"]).hex(),
            "at": int(time.time()),
        },
        as_json,
        lambda: console.print(f"every signature made before nonce {after} is void (was {before})", highlight=False),
    )
