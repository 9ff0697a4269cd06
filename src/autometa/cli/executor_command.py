"""`autometa executor`: take due runs from the queue and execute them in batches."""

from __future__ import annotations

import asyncio

import typer

from autometa.chain.identity import ChainChanged, queue_prefix, watch_chain
from autometa.cli.common import CliError, chain_context, handle_errors, open_claimed_store, worker_start


async def run_executor(rpc_url: str | None, contract: str | None, worker_id: str | None) -> None:
    from autometa import __version__
    from autometa.chain.journal import StoreJournal
    from autometa.chain.sender import SenderConfig, TransactionSender
    from autometa.chain.signers import role_signer
    from autometa.chain.web3 import close_async, connect_settings
    from autometa.logs import configure_logging
    from autometa.notify.alerts import Alerts, Thresholds, watch_rpc
    from autometa.worker.executor import Executor
    from autometa.worker.queue import make_queue

    ctx = chain_context(rpc_url, contract)
    s = ctx.settings
    configure_logging(s.LOG_LEVEL, s.LOG_JSON)
    account = await asyncio.to_thread(role_signer, s, "worker")  # a keystore may prompt; KMS is looked up
    if account is None:
        raise CliError(
            "no executor key: set WORKER_SIGNER (keystore:PATH or kms:ARN) or WORKER_PRIVATE_KEY — "
            "each executor signs with its own allow-listed key"
        )
    _, _, allowed = ctx.core.functions.accountOf(account.address).call()
    if not allowed:
        raise CliError(f"{account.address} is not an allow-listed executor (the admin calls setExecutor)")
    chain_id = int(ctx.w3.eth.chain_id)
    store, genesis = open_claimed_store(ctx, chain_id)
    w3 = connect_settings(s)
    alerts = Alerts(store, chain_id, Thresholds.from_settings(s), source=f"executor:{worker_id or account.address}")
    watch_rpc(w3, alerts, s.rpc_url)
    sender = TransactionSender(
        w3, account, journal=StoreJournal(store.sent_transactions), config=SenderConfig.from_settings(s)
    )
    queue = make_queue(s.REDIS_URL, queue_prefix(chain_id, genesis, ctx.core.address))
    executor = Executor(
        w3,
        ctx.core.address,
        sender,
        queue,
        store,
        batch_size=s.BATCH_SIZE,
        max_concurrent=s.MAX_CONCURRENT_EXECUTIONS,
        batch_gas_share=s.BATCH_GAS_SHARE,
        worker_id=worker_id,
        version=__version__,
        alerts=alerts,
    )
    stop = await worker_start(s)
    await queue.startup()
    watch = asyncio.create_task(watch_chain(w3, genesis, stop, s.rpc_url))
    try:
        for sent in await sender.recover():  # finish what a previous run of this key left in flight
            await sender.wait(sent, raise_on_revert=False)
        await executor.run(stop)
    finally:
        stop.set()
        changed = (await asyncio.gather(watch, return_exceptions=True))[0]
        await queue.shutdown()
        await close_async(w3)
        store.close()
    if isinstance(changed, ChainChanged):
        raise CliError(str(changed))


@handle_errors
def executor_command(
    rpc_url: str | None = typer.Option(None, "--rpc-url", help="JSON-RPC endpoint (default: MOONBASE_RPC)"),
    contract: str | None = typer.Option(None, "--contract", help="Autometa contract (default: REGISTRY_ADDRESS)"),
    worker_id: str | None = typer.Option(None, "--id", help="this executor's id in heartbeats (default: host-pid)"),
) -> None:
    """Run an executor: due runs from the queue, simulated, batched, sent with WORKER_SIGNER (or
    WORKER_PRIVATE_KEY).
    Needs REDIS_URL to share work with a separate scheduler; run as many as you like, each with
    its own key."""
    asyncio.run(run_executor(rpc_url, contract, worker_id))
