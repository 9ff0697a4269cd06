"""Local nonce tracking per (chain, sender).

One `KeyState` per key and process: an asyncio.Lock serialises nonce assignment, signing,
journaling and broadcasting, so nonces are handed out contiguously and a failed broadcast gives
its nonce back before anyone else can take the next one. The lock only works inside one process:
**several processes must never send from the same key** (give each its own key).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from autometa.chain.txtypes import NONCE_ERRORS, BroadcastErrorKind, SentTx, classify_broadcast_error

__all__ = ["NONCE_ERRORS", "BroadcastErrorKind", "KeyState", "classify_broadcast_error"]


@dataclass
class KeyState:
    """The state of one key in one process. Touch `next_nonce` and `in_flight` only while
    holding `lock`."""

    chain_id: int
    address: str
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    next_nonce: int | None = None  # None until initialised from the chain and the journal
    in_flight: dict[int, SentTx] = field(default_factory=dict)  # nonce -> unfinished transaction

    def take(self) -> int:
        assert self.next_nonce is not None
        nonce = self.next_nonce
        self.next_nonce = nonce + 1
        return nonce

    def release(self, nonce: int) -> None:
        """Give back a nonce whose broadcast failed for a non-nonce reason (no gap)."""
        if self.next_nonce == nonce + 1:
            self.next_nonce = nonce

    def resync(self, chain_pending: int, *, at_least: int | None = None) -> int:
        """Next nonce from the chain's pending count, skipping nonces our in-flight transactions
        hold and filling the lowest hole first (so a gap below us is closed, not widened)."""
        nonce = chain_pending if at_least is None else max(chain_pending, at_least)
        while nonce in self.in_flight:
            nonce += 1
        self.next_nonce = nonce
        return nonce
