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
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import httpx
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

if TYPE_CHECKING:
    from autometa.runtime import ChainTarget

# soft_wrap: never break a line at the terminal's (or, off a terminal, 80 columns') width — a
# transaction hash or a key split over two lines cannot be copied or parsed.
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)
P = ParamSpec("P")
R = TypeVar("R")

# The exit codes of every command (README "Exit codes").
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    """A user-facing failure: printed as one line; exit 1 (the operation failed) unless `code`."""

    code = EXIT_FAILED

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class BadInput(CliError):
    """The user's input is wrong (a value, a file, a JSON document): exit 2, like a usage error."""

    code = EXIT_USAGE


def fail(message: str, code: int = EXIT_FAILED) -> None:
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
            fail(str(exc), EXIT_USAGE)
        except ValidationError as exc:
            fail("; ".join(f"{_loc(e['loc'])}: {e['msg']}" for e in exc.errors()), EXIT_USAGE)
        except CliError as exc:
            fail(str(exc), exc.code)
        except ValueError as exc:
            fail(str(exc), EXIT_USAGE)
        except (ContractCustomError, ContractLogicError) as exc:
            from autometa.chain.errors import describe_revert

            fail(f"the contract refused: {describe_revert(exc)}")
        except httpx.HTTPError as exc:
            where = exc.request.url if _has_request(exc) else "the server"
            fail(f"cannot reach {where}: {type(exc).__name__} {exc}".rstrip())
        except (Web3Exception, ConnectionError, OSError) as exc:
            text = str(exc)
            if "insufficient funds" in text.lower():
                fail(f"the sending wallet cannot pay for this transaction (value plus gas): {text[:200]}")
            fail(f"{type(exc).__name__}: {text[:300]} — is the RPC endpoint (MOONBASE_RPC / --rpc-url) reachable?")
        raise AssertionError("unreachable")

    return wrapper


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if not str(p).startswith("function-") and p not in _TAGS]
    return ".".join(parts) or "input"


_TAGS = {"time", "interval", "price", "native", "erc20", "call"}


def _has_request(exc: httpx.HTTPError) -> bool:
    try:
        exc.request  # noqa: B018 - raises RuntimeError when the error has no request
    except RuntimeError:
        return False
    return True


AsOpt = Annotated[
    str | None, typer.Option("--as", help="sign as a dev account by role: user, admin, … (dev chain only)")
]


@dataclass
class ChainContext:
    settings: Settings
    w3: Web3
    core: Contract


def chain_target(ctx: ChainContext) -> ChainTarget:
    """The `ChainTarget` a worker runs on: this chain, this contract, events from its deployment
    block when the deployment file in DATA_DIR names this contract (else from block 0)."""
    from autometa.runtime import ChainTarget

    chain_id = int(ctx.w3.eth.chain_id)
    dep = Deployment.load(ctx.settings.DATA_DIR, chain_id)
    start_block = dep.block if dep and dep.address == ctx.core.address else 0
    return ChainTarget(chain_id, ctx.settings.rpc_url, ctx.core.address, start_block)


def settings_with(rpc_url: str | None, **overrides: Any) -> Settings:
    """Settings from the environment, with command-line options taking precedence."""
    if rpc_url:
        overrides["MOONBASE_RPC"] = rpc_url
    return load_settings(**{k: v for k, v in overrides.items() if v is not None})


def local_instance(settings: Settings) -> Any:
    """The `autometa up`/`devnet` running in DATA_DIR when no endpoint is configured on the dev
    network, else None."""
    from autometa.config import Network
    from autometa.embedded.instance import running_instance

    if settings.MOONBASE_RPC or settings.NETWORK is not Network.DEV:
        return None
    found = running_instance(settings.DATA_DIR)
    return found if found is not None and found.rpc_url else None


def resolve_relayer(relayer: str | None) -> str | None:
    """`--relayer up`: the API of the `autometa up` running in DATA_DIR; any other value is a URL."""
    if relayer != "up":
        return relayer
    from autometa.embedded.instance import running_instance

    settings = settings_with(None)
    found = running_instance(settings.DATA_DIR)
    if found is None or not found.api_url:
        raise CliError(f"--relayer up: no `autometa up` is running in {settings.DATA_DIR}")
    err_console.print(
        f"using the relayer of `autometa up` in {settings.DATA_DIR} ({found.describe()})", highlight=False
    )
    return found.api_url


def chain_context(
    rpc_url: str | None = None, contract: str | None = None, *, settings: Settings | None = None
) -> ChainContext:
    """Connect and find the Autometa contract: --contract, the settings, or the deployment file.
    On the dev network with no endpoint set, the chain of the `autometa up` running in DATA_DIR.
    `settings`: one chain's view (`Settings.for_chain`) instead of the environment's."""
    settings = settings if settings is not None else settings_with(rpc_url)
    found = local_instance(settings)
    if found is not None:
        settings = settings.model_copy(update={"MOONBASE_RPC": found.rpc_url})
        err_console.print(f"using `autometa {found.kind}` in {settings.DATA_DIR} ({found.describe()})", highlight=False)
    w3 = connect(settings.rpc_url, failover_after=settings.RPC_FAILOVER_AFTER, cooldown_s=settings.RPC_COOLDOWN_S)
    if not w3.is_connected():
        hint = "set MOONBASE_RPC or --rpc-url"
        if not settings.MOONBASE_RPC:
            hint = f"no `autometa up` is running in {settings.DATA_DIR}: start one, or " + hint
        raise CliError(f"cannot reach the RPC endpoint {settings.rpc_url} ({hint})")
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


def load_key(key: str | None, env_name: str = "USER_PRIVATE_KEY", as_role: str | None = None) -> LocalAccount:
    """The signing key from --key, --as ROLE (a dev account, dev network only) or the
    environment; never printed."""
    import os

    if as_role:
        return dev_key(as_role)
    raw = key or os.environ.get(env_name)
    if not raw:
        raise BadInput(f"a private key is needed: pass --key, set {env_name}, or on the dev chain --as user")
    try:
        account: LocalAccount = Account.from_key(raw)
    except Exception:
        raise BadInput("the private key is not valid 32-byte hex") from None
    return account


def dev_key(role: str) -> LocalAccount:
    """A dev account by role (`--as user`): anvil's well-known keys, refused off the dev network."""
    from autometa.chain.accounts import ROLE_INDEX, dev_role
    from autometa.config import Network

    if role not in ROLE_INDEX:
        raise BadInput(f"--as {role}: not a dev role; one of {', '.join(ROLE_INDEX)}")
    if load_settings().NETWORK is not Network.DEV:
        raise BadInput("--as signs with a public dev key: only on the dev network (NETWORK=dev)")
    return dev_role(role)


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
        raise BadInput(f"amount {amount!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise BadInput(f"amount must be positive (got {amount})")
    result = value if wei else value * 10**18
    if result != result.to_integral_value():
        raise BadInput("amount has more decimals than wei allow")
    return int(result)


def read_json_arg(value: str) -> Any:
    """A JSON document given inline or as @path."""
    try:
        text = Path(value[1:]).read_text() if value.startswith("@") else value
    except OSError as exc:
        raise BadInput(f"cannot read {value[1:]}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"invalid JSON: {exc}") from None


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
