"""What every command shares: settings, the chain connection, output and errors."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer
from eth_account import Account
from eth_account.signers.local import LocalAccount
from pydantic import ValidationError
from rich.console import Console
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError, Web3Exception

from autometa.chain.contracts import autometa
from autometa.chain.deploy import Deployment
from autometa.chain.web3 import connect
from autometa.config import ConfigError, Settings, load_settings

console = Console()
err_console = Console(stderr=True)
P = ParamSpec("P")
R = TypeVar("R")


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 1."""


def fail(message: str, code: int = 1) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn expected failures into a clear message and a non-zero exit, never a traceback."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except ConfigError as exc:
            fail(str(exc), 2)
        except ValidationError as exc:
            fail("; ".join(f"{'.'.join(map(str, e['loc'])) or 'input'}: {e['msg']}" for e in exc.errors()), 2)
        except (CliError, ValueError) as exc:
            fail(str(exc))
        except (ContractCustomError, ContractLogicError) as exc:
            from autometa.chain.errors import describe_revert

            fail(f"the contract refused: {describe_revert(exc)}")
        except (Web3Exception, ConnectionError, OSError) as exc:
            fail(f"{type(exc).__name__}: {exc} — is the RPC endpoint (MOONBASE_RPC / --rpc-url) reachable?")
        raise AssertionError("unreachable")

    return wrapper


@dataclass
class ChainContext:
    settings: Settings
    w3: Web3
    core: Contract


def settings_with(rpc_url: str | None, **overrides: Any) -> Settings:
    """Settings from the environment, with command-line options taking precedence."""
    if rpc_url:
        overrides["MOONBASE_RPC"] = rpc_url
    return load_settings(**{k: v for k, v in overrides.items() if v is not None})


def chain_context(rpc_url: str | None = None, contract: str | None = None) -> ChainContext:
    """Connect and find the Autometa contract: --contract, the settings, or the deployment file."""
    settings = settings_with(rpc_url)
    w3 = connect(settings.rpc_url, failover_after=settings.RPC_FAILOVER_AFTER, cooldown_s=settings.RPC_COOLDOWN_S)
    if not w3.is_connected():
        raise CliError(f"cannot reach the RPC endpoint {settings.rpc_url} (set MOONBASE_RPC or --rpc-url)")
    chain_id = w3.eth.chain_id
    if settings.expected_chain_id and settings.expected_chain_id != chain_id:
        raise CliError(f"CHAIN_ID is {settings.expected_chain_id} but {settings.rpc_url} is chain {chain_id}")
    address = contract or settings.contract_address
    if not address:
        dep = Deployment.load(settings.DATA_DIR, chain_id)
        address = dep.address if dep else None
    if not address:
        raise CliError(
            f"no Autometa contract known for chain {chain_id}: set REGISTRY_ADDRESS, pass --contract, "
            "or run `autometa deploy` / `autometa devnet` first"
        )
    if not w3.eth.get_code(Web3.to_checksum_address(address)):
        raise CliError(f"no contract at {address} on chain {chain_id}")
    return ChainContext(settings, w3, autometa(w3, address))


def load_key(key: str | None, env_name: str = "USER_PRIVATE_KEY") -> LocalAccount:
    """The signing key from --key or the environment; never printed."""
    import os

    raw = key or os.environ.get(env_name)
    if not raw:
        raise CliError(f"a private key is needed: pass --key or set {env_name}")
    try:
        account: LocalAccount = Account.from_key(raw)
    except Exception:
        raise CliError("the private key is not valid 32-byte hex") from None
    return account


def admin_signer(ctx: ChainContext, key: str | None = None) -> Any:
    """The deployment admin's signer: --key, else ADMIN_SIGNER (a keystore, a KMS key, …), else
    $ADMIN_PRIVATE_KEY / $DEPLOYER_PRIVATE_KEY. Refused, naming the owner, unless it is the
    contract's owner."""
    import os

    from autometa.chain.signers import role_signer

    signer: Any = role_signer(ctx.settings, "admin") if key is None else None
    if signer is None:
        signer = load_key(key, "ADMIN_PRIVATE_KEY" if os.environ.get("ADMIN_PRIVATE_KEY") else "DEPLOYER_PRIVATE_KEY")
    owner = ctx.core.functions.owner().call()
    if owner.lower() != signer.address.lower():
        raise CliError(f"{signer.address} is not the admin of {ctx.core.address} (the admin is {owner})")
    return signer


def parse_coin(amount: str, wei: bool) -> int:
    """`1.5` coins (18 decimals) or, with --wei, an exact integer of wei."""
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise CliError(f"amount {amount!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise CliError("amount must be positive")
    result = value if wei else value * 10**18
    if result != result.to_integral_value():
        raise CliError("amount has more decimals than wei allow")
    return int(result)


def read_json_arg(value: str) -> Any:
    """A JSON document given inline or as @path."""
    text = Path(value[1:]).read_text() if value.startswith("@") else value
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"invalid JSON: {exc}") from None


def emit(data: Any, as_json: bool, human: Callable[[], None]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, default=str) + "\n")
    else:
        human()


@contextmanager
def progress(message: str) -> Iterator[None]:
    with err_console.status(message):
        yield


def stop_on_signals() -> asyncio.Event:
    """An event that SIGINT/SIGTERM set: how every long-running command stops cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def worker_start(settings: Settings) -> asyncio.Event:
    """What every long-running worker does first: stop on signals, and the seed's start-up
    check of the backend (a missing backend only means direct prices)."""
    from autometa.worker.startup import check_backend

    stop = stop_on_signals()
    await check_backend(settings)
    return stop
