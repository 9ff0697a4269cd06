"""The types the sender and the nonce tracker share: a sent transaction and its attempts, and
the kinds of broadcast error. Their own module, so that `nonces` (which holds `SentTx`s per
key) and `sender` (which uses both) do not import each other."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from autometa.chain.fees import Fees
from autometa.chain.journal import PENDING

__all__ = ["NONCE_ERRORS", "Attempt", "BroadcastErrorKind", "RawReceipt", "SentTx", "classify_broadcast_error"]


class BroadcastErrorKind(Enum):
    ALREADY_KNOWN = "already_known"  # this very transaction is in the pool: success
    NONCE_TOO_LOW = "nonce_too_low"  # the nonce is used (mined): resync
    NONCE_TOO_HIGH = "nonce_too_high"  # a gap below: resync
    REPLACEMENT_UNDERPRICED = "replacement_underpriced"  # another tx holds the nonce in the pool
    BELOW_BASE_FEE = "below_base_fee"  # maxFee (gasPrice) under the next block's base fee: re-price
    FEE_TOO_LOW = "fee_too_low"  # under the node's minimum price (its pool is full, or a floor)
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
    # The fee is below the base fee: the transaction could not be mined now at any tip, and fees
    # read afresh from the node would be. geth's ErrFeeCapTooLow, "max fee per gas less than block
    # base fee" (ethereum/go-ethereum core/error.go); reth's RpcInvalidTransactionError::FeeCapTooLow
    # (paradigmxyz/reth crates/rpc/rpc-eth-types/src/error/mod.rs) and anvil's FeeCapTooLow
    # (foundry-rs/foundry crates/anvil/src/eth/error.rs), same words — anvil's eth_sendRawTransaction
    # answer, code -32003, in foundry-rs/foundry#5125; Hardhat: "Transaction maxFeePerGas (…) is too
    # low for the next block, which has a baseFeePerGas of …" (and "Transaction gasPrice (…)" for a
    # legacy one: NomicFoundation/hardhat packages/hardhat-core/src/internal/hardhat-network/
    # provider/node.ts, and the same words in its Rust successor EDR). Before FEE_TOO_LOW's "underpriced".
    # geth's own pool takes such a transaction and holds it: the sender's stuck-replacement covers it.
    (
        BroadcastErrorKind.BELOW_BASE_FEE,
        (
            "less than block base fee",
            "max fee per gas less than",
            "fee cap less than",
            "feecaptoolow",
            "too low for the next block, which has a basefeepergas",
        ),
    ),
    (
        BroadcastErrorKind.FEE_TOO_LOW,
        (
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


@dataclass(frozen=True)
class Attempt:
    """One signed transaction for a nonce: the original or a replacement."""

    tx_hash: str
    raw_tx: str
    fees: Fees
    sent_block: int


@dataclass(eq=False)
class SentTx:
    """A transaction handed to the sender: one nonce, one or more signed attempts. Updated in
    place by the sender as it is followed (`wait`)."""

    chain_id: int
    sender: str
    nonce: int
    purpose: str
    gas_limit: int
    attempts: list[Attempt]
    status: str = PENDING
    rebroadcasts: int = 0
    mined_hash: str | None = None
    block_number: int | None = None
    receipt: Any = field(default=None, repr=False)
    unsigned: dict[str, Any] = field(default_factory=dict, repr=False)  # fields to re-sign with
    last_action_block: int = 0  # block of the last (re)broadcast or replacement decision
    last_action_at: float = field(default_factory=time.monotonic, repr=False)  # when, on this clock
    fee_floor: Fees | None = field(default=None, repr=False)  # a refused replacement's fees
    consumed_strikes: int = field(default=0, repr=False)
    follow_lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    @property
    def tx_hash(self) -> str:
        """The mined transaction's hash once known, else the latest attempt's."""
        return self.mined_hash or self.attempts[-1].tx_hash

    @property
    def original_hash(self) -> str:
        return self.attempts[0].tx_hash

    @property
    def hashes(self) -> list[str]:
        return [a.tx_hash for a in self.attempts]

    @property
    def fees(self) -> Fees:
        return self.attempts[-1].fees

    @property
    def replacements(self) -> int:
        return len(self.attempts) - 1

    @property
    def done(self) -> bool:
        return self.status != PENDING


class RawReceipt(dict[str, Any]):
    """A receipt as the node sent it, with the fields the sender and its callers compare read
    as numbers (`status`, `blockNumber`, `gasUsed`, …) and hashes as bytes; its `logs` stay as
    sent (hex strings), for a decoder of one's own (`autometa.chain.events`)."""

    _NUMBERS = ("status", "blockNumber", "gasUsed", "cumulativeGasUsed", "effectiveGasPrice", "transactionIndex")
    _HASHES = ("transactionHash", "blockHash")

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RawReceipt:
        out = cls(raw)
        for key in cls._NUMBERS:
            value = out.get(key)
            if isinstance(value, str):
                out[key] = int(value, 16)
        for key in cls._HASHES:
            value = out.get(key)
            if isinstance(value, str):
                out[key] = bytes.fromhex(value.removeprefix("0x"))
        return out
