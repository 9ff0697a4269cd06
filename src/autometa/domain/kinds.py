"""The on-chain vocabulary (mirrors contracts/src/AutometaTypes.sol; the numbers are the seed's
`trigger_type` / `action_type` and never change meaning)."""

from __future__ import annotations

from enum import IntEnum


class TriggerType(IntEnum):
    TIME = 0
    INTERVAL = 1
    PRICE = 2
    STATE = 3
    CRON = 4
    LOG = 5


class ActionType(IntEnum):
    NATIVE_TRANSFER = 0
    ERC20_TRANSFER = 1
    CONTRACT_CALL = 2


class Comparator(IntEnum):
    BELOW = 0
    ABOVE = 1


class Status(IntEnum):
    NONE = 0
    ACTIVE = 1
    PAUSED = 2
    CANCELLED = 3
    COMPLETED = 4

    @property
    def label(self) -> str:
        return self.name.lower()


class ChangeReason(IntEnum):
    BY_OWNER = 0
    BY_FAILURES = 1
    BY_EXPIRY = 2
    BY_COMPLETION = 3


class SkipReason(IntEnum):
    NOT_ACTIVE = 1
    RUN_DONE = 2
    BAD_RUN_INDEX = 3
    NOT_DUE = 4
    CONDITION_FALSE = 5
    INSUFFICIENT_ESCROW = 6
    PRICE_UNAVAILABLE = 7
    EXPIRED = 8
    OUT_OF_GAS = 9  # the transaction had too little gas left for the action's whole limit (retried)
    VIEW_FAILED = 10  # STATE: the view reverted, ran out of its gas cap or answered too little
    BAD_PROOF = 11  # STATE data not the signed one; LOG attestation not of a canonical recent block

    @property
    def label(self) -> str:
        return self.name.lower()


class OnchainPriceSource(IntEnum):
    NONE = 0
    ORACLE = 1
    ATTESTED = 2


class AdminChange(IntEnum):
    """ChangeQueued.kind: what a timelocked admin change does."""

    EXECUTOR = 1
    FEED = 2
    PREMIUM = 3
    MAX_TIP = 4
    CHAIN_MODULE = 5

    @property
    def label(self) -> str:
        return self.name.lower()


class StatusOp(IntEnum):
    PAUSE = 0
    RESUME = 1
    CANCEL = 2


PRICE_DECIMALS = 8
UINT24_MAX = 2**24 - 1
UINT32_MAX = 2**32 - 1
UINT40_MAX = 2**40 - 1
UINT64_MAX = 2**64 - 1
UINT80_MAX = 2**80 - 1
UINT96_MAX = 2**96 - 1
UINT256_MAX = 2**256 - 1
MIN_GAS_LIMIT = 10_000
MAX_GAS_LIMIT = 5_000_000
MAX_CALLDATA = 4096
