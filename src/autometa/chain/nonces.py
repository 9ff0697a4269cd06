"""Local nonce tracking per (chain, sender), and the classification of broadcast errors.

One `KeyState` per key and process: an asyncio.Lock serialises nonce assignment, signing,
journaling and broadcasting, so nonces are handed out contiguously and a failed broadcast gives
its nonce back before anyone else can take the next one. The lock only works inside one process:
**several processes must never send from the same key** (give each its own key).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autometa.chain.sender import SentTx


class BroadcastErrorKind(Enum):
    ALREADY_KNOWN = "already_known"  # this very transaction is in the pool: success
    NONCE_TOO_LOW = "nonce_too_low"  # the nonce is used (mined): resync
    NONCE_TOO_HIGH = "nonce_too_high"  # a gap below: resync
    REPLACEMENT_UNDERPRICED = "replacement_underpriced"  # another tx holds the nonce in the pool
    FEE_TOO_LOW = "fee_too_low"  # maxFee under the base fee, or under the node's minimum
    INSUFFICIENT_FUNDS = "insufficient_funds"
    UNREACHABLE = "unreachable"  # the node did not take it (rate limited, no connection): not sent
    OTHER = "other"


_PATTERNS: list[tuple[BroadcastErrorKind, tuple[str, ...]]] = [
    (
        BroadcastErrorKind.ALREADY_KNOWN,
        ("already known", "already imported", "known transaction", "already exists", "already in the mempool"),
    ),
    (
        BroadcastErrorKind.NONCE_TOO_LOW,
        (
            "nonce too low",
            "nonce is too low",
            "nonce has already been used",
            "transaction is outdated",
        ),
    ),
    # "invalid nonce" says neither way: resync from the chain without skipping ahead.
    (BroadcastErrorKind.NONCE_TOO_HIGH, ("nonce too high", "nonce is too high", "nonce gap", "invalid nonce")),
    (
        BroadcastErrorKind.REPLACEMENT_UNDERPRICED,
        ("replacement transaction underpriced", "replacement underpriced", "already in pool with higher"),
    ),
    (
        BroadcastErrorKind.FEE_TOO_LOW,
        (
            "less than block base fee",
            "max fee per gas less than",
            "fee cap less than",
            "feecaptoolow",
            "transaction underpriced",
            "gas price too low",
            "underpriced",
        ),
    ),
    (BroadcastErrorKind.INSUFFICIENT_FUNDS, ("insufficient funds", "insufficient balance")),
]


def classify_broadcast_error(exc: BaseException) -> BroadcastErrorKind:
    text = str(exc).lower()
    for kind, needles in _PATTERNS:
        if any(n in text for n in needles):
            return kind
    return BroadcastErrorKind.OTHER


NONCE_ERRORS = frozenset(
    {
        BroadcastErrorKind.NONCE_TOO_LOW,
        BroadcastErrorKind.NONCE_TOO_HIGH,
        BroadcastErrorKind.REPLACEMENT_UNDERPRICED,
    }
)


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
