"""The contract's per-workflow trigger word (`WorkflowRegistry._triggerWord`), read from storage.

CRON keeps its creation time there (a tick before it is refused) and LOG its cursor (the next
acceptable log, `block << 32 | index`); `getWorkflow` returns neither. Reading the word itself
means the scheduler decides with the very value a run is checked against, not a copy of it.
One `eth_getStorageAt` per workflow, only for the CRON / LOG states a block changed (and at a
load), in parallel."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable
from typing import Any

import structlog
from eth_abi.abi import encode
from eth_utils import keccak
from web3 import AsyncWeb3
from web3.types import BlockIdentifier

from autometa.domain.state import WorkflowState
from autometa.domain.triggers.cron import CRON_CODE

log = structlog.get_logger("autometa.worker.triggers.words")

# `forge inspect Autometa storageLayout`: _triggerWord is slot 12 (tests/worker/test_trigger_cron.py
# checks the creation time read here against the creation block's timestamp)
TRIGGER_WORD_SLOT = 12
CRON_CREATED_SHIFT = 192  # AutometaTypes.CRON_CREATED
MAX_PARALLEL = 64


def word_slot(workflow_id: int) -> int:
    """Storage slot of `_triggerWord[workflow_id]` (a mapping: keccak(key ‖ slot))."""
    return int.from_bytes(keccak(encode(["uint256", "uint256"], [workflow_id, TRIGGER_WORD_SLOT])), "big")


async def read_words(
    w3: AsyncWeb3[Any], contract: str, ids: Iterable[int], block: BlockIdentifier = "latest"
) -> dict[int, int]:
    """Each workflow's trigger word at `block`, at most MAX_PARALLEL requests at a time."""
    ids = list(ids)
    gate = asyncio.Semaphore(MAX_PARALLEL)

    async def one(wid: int) -> int:
        async with gate:
            return int.from_bytes(bytes(await w3.eth.get_storage_at(contract, word_slot(wid), block)), "big")  # type: ignore[arg-type]

    return dict(zip(ids, await asyncio.gather(*(one(w) for w in ids)), strict=True))


def cron_created(word: int) -> int:
    """A CRON workflow's creation time (unix s) from its word."""
    return word >> CRON_CREATED_SHIFT


async def with_words(
    w3: AsyncWeb3[Any],
    contract: str | None,
    states: list[WorkflowState],
    needs: frozenset[int],
    block: BlockIdentifier,
    *,
    strict: bool = True,
) -> list[WorkflowState]:
    """`states` with `trigger_word` read for the live ones of a kind in `needs` (LOG always, CRON
    before its first run: afterwards its last run, later than its creation, is the floor).
    `strict=False`: a failed read is logged and the states are returned without their words."""
    if contract is None:
        return states
    wanted = [
        s.id
        for s in states
        if s.trigger_type in needs
        and s.trigger_word is None
        and s.is_live
        and (s.trigger_type != CRON_CODE or s.run_count == 0)  # after a run, lastRun is past the creation
    ]
    if not wanted:
        return states
    try:
        words = await read_words(w3, contract, wanted, block)
    except Exception as exc:
        if strict:
            raise
        # the block's changes are already taken from the source: index them without their words
        # rather than lose them (a CRON run before its creation is NOT_DUE and retried; a LOG log
        # that already fired is refused by the contract as RUN_DONE — never run twice)
        log.warning("scheduler.trigger_words_unread", workflows=len(wanted), error=str(exc)[:200])
        return states
    return [dataclasses.replace(s, trigger_word=words[s.id]) if s.id in words else s for s in states]
