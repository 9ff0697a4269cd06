"""The executor's part of the recorder: a mined batch's RunExecuted / RunSkipped logs become
rows in the store (one transaction per batch), and a run the simulation skipped gets a row with
a marker hash. The indexer records the same facts from the chain; whichever writes first, the
store keeps one row per run and transaction.

The logs are decoded with `autometa.chain.events` (precomputed topics, eth-abi) from the raw
receipt; the writes run in a worker thread, after the batch's slot was freed.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping
from typing import Any

from autometa.chain.events import DecodedLog
from autometa.domain.kinds import SkipReason
from autometa.domain.outcomes import PriceSource, RunStatus
from autometa.store.executions import SIMULATED_SKIP_PREFIX, OffchainReport, OnchainRun
from autometa.worker.batch import SILENT, RunKey, RunRow, SkipRow
from autometa.worker.queue import Job

STORE_SOURCES = frozenset(PriceSource)


def rows_from_events(events: Iterable[DecodedLog]) -> tuple[list[RunRow], list[SkipRow]]:
    runs: list[RunRow] = []
    skips: list[SkipRow] = []
    for ev in events:
        a = ev.args
        key = (int(a["workflowId"]), int(a["runIndex"]))
        if ev.event == "RunExecuted":
            source = int(a["priceSource"])
            runs.append(
                RunRow(
                    key=key,
                    log_index=ev.log_index,
                    success=bool(a["success"]),
                    gas_used=int(a["gasUsed"]),
                    gas_price=int(a["gasPrice"]),
                    fee=int(a["fee"]),
                    premium_bps=int(a["premiumBps"]),
                    price=int(a["price"]) if source else None,
                    source=PriceSource.onchain(source),
                )
            )
        else:
            skips.append(SkipRow(key=key, log_index=ev.log_index, reason=SkipReason(int(a["reason"]))))
    return runs, skips


def included_at(receipt: Mapping[str, Any]) -> int | None:
    """The block's timestamp from the receipt's logs (newer nodes put it in each log), if there."""
    stamps = [entry.get("blockTimestamp") for entry in receipt.get("logs", [])]
    if stamps and stamps[0] is not None:
        return int(stamps[0], 16) if isinstance(stamps[0], str) else int(stamps[0])
    return None


class BatchRecorder:
    """Writes a batch's rows through `store.executions` (called in a worker thread), keyed by
    the deployment (`contract` on its chain) the executor serves: a receipt's runs in one
    `record_batch` (one transaction, a bounded number of statements)."""

    def __init__(self, store: Any, executor_address: str, contract: str) -> None:
        self.store, self.address, self.contract = store, executor_address, contract

    def write(
        self,
        runs: list[RunRow],
        skips: list[SkipRow],
        jobs: Mapping[RunKey, Job],
        chain_id: int,
        tx: str,
        block: int,
        included: int,
    ) -> None:
        onchain = [
            OnchainRun(
                *row.key,
                row.log_index,
                RunStatus.of(row.success),
                gas_used=row.gas_used,
                gas_price=row.gas_price,
                fee=row.fee,
                premium_bps=row.premium_bps,
                price=row.price,
                price_source=row.source,
            )
            for row in runs
        ]
        offchain = [
            OffchainReport(
                *row.key,
                price_source=job.price_source if job.price_source in STORE_SOURCES else None,
                triggered_at=job.triggered_at,
            )
            for row in runs
            if (job := jobs.get(row.key)) is not None
        ]
        onchain += [
            OnchainRun(*skip.key, skip.log_index, RunStatus.SKIPPED, skip_reason=skip.reason.label)
            for skip in skips
            if skip.reason not in SILENT
        ]
        # one transaction and a handful of statements for the whole receipt (`record_batch`)
        self.store.executions.record_batch(
            chain_id=chain_id,
            contract=self.contract,
            tx_hash=tx,
            block_number=block,
            included_at=included,
            executor=self.address,
            onchain=onchain,
            offchain=offchain,
        )

    def simulated_skip(self, job: Job, reason: SkipReason, block: int, chain_id: int) -> None:
        """A run dropped at simulation: no transaction, so the row gets a marker hash (zeros,
        then a digest of the run and the block) instead of a real one."""
        if reason in SILENT:
            return
        digest = hashlib.blake2b(f"{job.workflow_id}:{job.run_index}:{block}".encode(), digest_size=24).hexdigest()
        self.store.executions.record_onchain(
            chain_id=chain_id,
            contract=self.contract,
            workflow_id=job.workflow_id,
            run_index=job.run_index,
            tx_hash=SIMULATED_SKIP_PREFIX + digest,
            log_index=0,
            block_number=block,
            status=RunStatus.SKIPPED,
            included_at=int(time.time()),
            executor=self.address,
            skip_reason=reason.label,
        )
