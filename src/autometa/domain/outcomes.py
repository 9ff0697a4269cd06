"""What a run came to and where its price came from, spelled once.

The values are stored in the database and served by the API (`executions.status`,
`executions.price_source`, `executions.skip_reason`): they never change. Being `StrEnum`s, each
member *is* its string, so rows, JSON and comparisons with plain strings keep working.
"""

from __future__ import annotations

from enum import StrEnum

from autometa.domain.kinds import OnchainPriceSource, SkipReason


class RunStatus(StrEnum):
    """An execution row's status: executed (`success` / `failed`: the action ran and consumed an
    attempt), `skipped` (the contract or the simulation declined it: nothing paid) or `pending`
    (sent, its transaction not yet final)."""

    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"
    PENDING = "pending"

    @classmethod
    def of(cls, success: bool) -> RunStatus:
        """The status of an executed run (a RunExecuted event's `success`)."""
        return cls.SUCCESS if success else cls.FAILED


# Statuses the chain decided (a RunExecuted or RunSkipped event was seen).
DECIDED_STATUSES = (RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.SKIPPED)


class PriceSource(StrEnum):
    """Where a price was served from: the on-chain feed (`oracle`), a price the executor attested
    (`attested`, as the chain records it), or the off-chain tier that served it. The off-chain
    tiers are logged with every price and counted per tier."""

    ORACLE = "oracle"
    ATTESTED = "attested"
    LOCAL_CACHE = "local-cache"
    BACKEND_REDIS = "backend-redis"
    BACKEND_API = "backend-api"
    COINGECKO_DIRECT = "coingecko-direct"

    @classmethod
    def onchain(cls, code: int) -> PriceSource | None:
        """The source an event's `priceSource` number names (AutometaTypes.sol SOURCE_*); None
        for a run without a price."""
        return _ONCHAIN.get(OnchainPriceSource(code))


_ONCHAIN = {OnchainPriceSource.ORACLE: PriceSource.ORACLE, OnchainPriceSource.ATTESTED: PriceSource.ATTESTED}

# AutometaTypes.sol SKIP_*: the events carry numbers, rows carry these names.
SKIP_REASON_NAMES: dict[int, str] = {int(r): r.label for r in SkipReason}
