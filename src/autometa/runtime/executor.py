"""`ExecutorRuntime`: one chain's executor with everything it needs, built and closed in one
place — its key (checked against the contract's allow-list before anything runs), the
transaction sender and its journal, alerts, and the recovery of what a previous run of the same
key left in flight."""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING

from autometa.chain.web3 import close_async
from autometa.runtime.chain import ChainLink, Opened, StartError, _while_unreachable

if TYPE_CHECKING:
    from autometa.chain.sender import TransactionSender
    from autometa.chain.signers import Signer
    from autometa.worker.executor import Executor


class ExecutorRuntime(Opened):
    """`async with ExecutorRuntime(link) as rt: await rt.run(stop)`. `signer`: the executor's key
    (default: WORKER_SIGNER / WORKER_PRIVATE_KEY); one key per executor and chain. `worker_id`:
    its name in heartbeats (default: executor-host-pid)."""

    def __init__(self, link: ChainLink, *, signer: Signer | None = None, worker_id: str | None = None) -> None:
        self.link, self.worker_id = link, worker_id
        self.account: Signer | None = signer
        super().__init__()

    executor: Executor
    sender: TransactionSender

    async def _open(self) -> None:
        from autometa import __version__
        from autometa.chain.contracts import autometa_async
        from autometa.chain.journal import StoreJournal
        from autometa.chain.sender import SenderConfig, TransactionSender
        from autometa.chain.signers import role_signer
        from autometa.notify.alerts import Alerts, Thresholds, watch_rpc
        from autometa.worker.executor import Executor

        link, s, t = self.link, self.link.settings, self.link.target
        if self.account is None:  # a keystore may prompt; a KMS key is looked up
            self.account = await asyncio.to_thread(role_signer, s, "worker")
        if self.account is None:
            raise StartError(
                "no executor key: set WORKER_SIGNER (keystore:PATH or kms:ARN) or WORKER_PRIVATE_KEY — "
                "each executor signs with its own allow-listed key"
            )
        w3 = link.connect()
        self._exit.push_async_callback(close_async, w3)
        _, _, allowed = await autometa_async(w3, t.contract).functions.accountOf(self.account.address).call()
        if not allowed:
            raise StartError(f"{self.account.address} is not an allow-listed executor (the admin calls setExecutor)")
        source = f"executor:{self.worker_id or self.account.address}"
        alerts = Alerts(link.store, t.chain_id, Thresholds.from_settings(s), source=source, contract=t.contract)
        watch_rpc(w3, alerts, t.rpc_url)
        self.sender = TransactionSender(
            w3, self.account, journal=StoreJournal(link.store.sent_transactions), config=SenderConfig.from_settings(s)
        )
        self.executor = Executor(
            w3,
            t.contract,
            self.sender,
            link.queue,
            link.store,
            batch_size=s.BATCH_SIZE,
            max_concurrent=s.MAX_CONCURRENT_EXECUTIONS,
            batch_gas_share=s.BATCH_GAS_SHARE,
            worker_id=self.worker_id,
            version=__version__,
            alerts=alerts,
        )

    async def recover(self) -> None:
        """Finish what a previous run of this key left in flight (sent, not yet mined). Part of
        start-up, so it waits for a restarting database as start-up does: the successor of a
        killed executor, following its predecessor's transaction while PostgreSQL restarted, had
        its journal write of the receipt refused and exited 1 (`bench/chaos.py --chains 2`)."""
        for sent in await _while_unreachable("database", self.sender.recover):
            await _while_unreachable("database", functools.partial(self.sender.wait, sent, raise_on_revert=False))

    async def run(self, stop: asyncio.Event) -> None:
        """Recover, then take due runs from the queue and execute them until `stop`."""
        await self.recover()
        await self.executor.run(stop)
