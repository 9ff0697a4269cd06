"""`autometa admin executor rotate`: replace an executor's key without stopping execution.

1. allow-list the new key: `setExecutor(new, true)`, which the contract's admin timelock queues
   once workflows exist; the command waits for the change's eta (up to --timeout; run it again
   to resume) and applies it, while the old executor keeps working;
2. wait until an executor with the new key is running (its heartbeat in the store): start
   `autometa executor` with `WORKER_SIGNER=<new spec>` meanwhile;
3. drain the old executor: it is sent SIGTERM (`--old-pid`) or you stop it; on SIGTERM an
   executor takes no more jobs, hands back the ones not yet in a batch, finishes the batches in
   flight and exits. The command waits until it has gone and none of its transactions is pending
   (journal and chain);
4. revoke the old key (`setExecutor(old, false)`: a revocation applies at once).

No run is missed (jobs go back to the shared queue, the new executor takes them) or doubled (the
contract refuses a run index twice, and the old executor's transactions are finished, not
abandoned). Both executors run side by side between steps 2 and 3.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Annotated, Any

import typer
from eth_utils import is_hex_address, to_checksum_address

from autometa.cli.common import CliError, admin_signer, chain_context, console, emit, handle_errors

SERVING_WITHIN_S = 15.0  # a heartbeat this recent means the executor runs (it beats every 5 s)


def _say(message: str) -> None:
    console.print(message, highlight=False)


def _wait(what: str, done: Callable[[], bool], timeout: float, poll: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise CliError(f"timed out after {timeout:g} s waiting for {what}; run the command again to resume")
        time.sleep(poll)


def _address_of(new: str) -> tuple[str, str | None]:
    """(address, spec) for an address or a signer spec / keystore path (never decrypted here)."""
    if is_hex_address(new):
        return to_checksum_address(new), None
    from autometa.cli.keys_commands import describe_signer

    return str(describe_signer(new, None, decrypt=False)["address"]), new


def _queued_allow(core: Any, address: str) -> Any:
    """The pending timelocked change that allows `address`, if any."""
    from autometa.chain.admin import pending_changes

    for change in pending_changes(core):
        if change.kind == "executor" and change.executor == address and change.description.startswith("allow"):
            return change
    return None


def _is_executor(core: Any, address: str) -> bool:
    return bool(core.functions.accountOf(address).call()[2])


@handle_errors
def rotate_command(
    new: Annotated[str, typer.Option("--new", help="the new key: its address, a keystore path or a signer spec")],
    old: Annotated[str, typer.Option("--old", help="the address of the executor key being replaced")],
    old_pid: Annotated[int | None, typer.Option("--old-pid", help="send the old executor SIGTERM to drain it")] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for each step")] = 600.0,
    rpc_url: Annotated[str | None, typer.Option(help="JSON-RPC endpoint (default: MOONBASE_RPC)")] = None,
    contract: Annotated[str | None, typer.Option(help="Autometa contract (default: REGISTRY_ADDRESS)")] = None,
    key: Annotated[
        str | None, typer.Option(help="admin key (default: ADMIN_SIGNER, $ADMIN_PRIVATE_KEY, $DEPLOYER_PRIVATE_KEY)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Rotate an executor key: allow-list NEW (through the admin timelock: the command waits for
    it, up to --timeout), wait for an executor with NEW to run, drain OLD, revoke OLD. Safe to run
    again after a timeout: every step checks what is already done."""
    from web3.logs import DISCARD

    from autometa.chain.deploy import transact
    from autometa.logs import configure_logging
    from autometa.store import Store

    configure_logging("INFO")  # stderr: stdout carries the steps (and --json)
    ctx = chain_context(rpc_url, contract)
    core, w3, settings = ctx.core, ctx.w3, ctx.settings
    if not is_hex_address(old):
        raise CliError("--old must be the old executor's 0x address")
    old_address = to_checksum_address(old)
    new_address, spec = _address_of(new)
    if new_address == old_address:
        raise CliError("--new and --old are the same key")
    admin = admin_signer(ctx, key)
    chain_id = int(w3.eth.chain_id)
    steps: dict[str, Any] = {"old": old_address, "new": new_address}

    # 1. allow-list the new key (queued by the timelock once workflows exist: wait, then apply)
    if _is_executor(core, new_address):
        _say(f"1/4 {new_address} is already an allowed executor")
    else:
        change = _queued_allow(core, new_address)
        if change is None:
            receipt = transact(w3, admin, core.functions.setExecutor(new_address, True))
            steps["allow_tx"] = "0x" + bytes(receipt["transactionHash"]).hex()
            queued = core.events.ChangeQueued().process_receipt(receipt, errors=DISCARD)
            change = _queued_allow(core, new_address) if queued else None
        if change is not None:
            steps["change_id"] = change.id
            now = int(w3.eth.get_block("latest")["timestamp"])
            _say(
                f"1/4 allowing {new_address} waits in the admin timelock: change #{change.id}, applied in "
                f"{max(change.eta - now, 0)} s (eta {change.eta}); the old executor keeps working"
            )
            _wait(
                f"the timelock of change #{change.id} (eta {change.eta})",
                lambda: int(w3.eth.get_block("latest")["timestamp"]) >= change.eta,
                timeout,
            )
            receipt = transact(w3, admin, core.functions.applyChange(change.id))
            steps["apply_tx"] = "0x" + bytes(receipt["transactionHash"]).hex()
        if not _is_executor(core, new_address):
            raise CliError(f"{new_address} is still not an executor after setExecutor: see `autometa admin pending`")
        _say(f"1/4 allowed {new_address} as an executor")

    store = Store.open(settings.database_url, migrate=False)
    try:

        def serving(address: str) -> bool:
            return any(
                h.address == address
                for h in store.heartbeats.active(SERVING_WITHIN_S, role="executor", chain_id=chain_id)
            )

        # 2. the new executor runs
        hint = f"WORKER_SIGNER={spec}" if spec else f"the key of {new_address} as WORKER_SIGNER"
        _say(f"2/4 waiting for an executor with {new_address} (start `autometa executor` with {hint})")
        _wait(f"an executor with {new_address} to run", lambda: serving(new_address), timeout)

        # 3. drain the old one
        if old_pid is not None and serving(old_address):
            try:
                os.kill(old_pid, signal.SIGTERM)
            except ProcessLookupError:
                raise CliError(f"no process {old_pid} (--old-pid)") from None
            _say(f"3/4 sent SIGTERM to the old executor (pid {old_pid}): it drains and exits")
        else:
            _say(f"3/4 waiting for the old executor {old_address} to stop (SIGTERM it: it drains, then exits)")

        def drained() -> bool:
            if serving(old_address) or store.sent_transactions.pending(chain_id, old_address):
                return False
            return bool(
                w3.eth.get_transaction_count(old_address, "pending")
                == w3.eth.get_transaction_count(old_address, "latest")
            )

        _wait(f"the old executor {old_address} to drain", drained, timeout)
    finally:
        store.close()

    # 4. remove the old key
    if _is_executor(core, old_address):
        receipt = transact(w3, admin, core.functions.setExecutor(old_address, False))
        steps["remove_tx"] = "0x" + bytes(receipt["transactionHash"]).hex()
    _say(f"4/4 removed {old_address} from the executors; rotation done")
    emit(steps, as_json, lambda: None)
