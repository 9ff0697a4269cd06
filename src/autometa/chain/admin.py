"""The admin's timelocked changes (ActionExecutor `pendingChangeIds` / `pendingChange`), decoded.

Changes that could cost owners (allowing an executor, a feed, a higher premium or tip cap) wait
`timelockDelay` seconds after they are queued; the CLI (`autometa admin pending`), the API
(`GET /api/utils/admin/pending`) and the dashboard list them so owners see them coming.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from eth_utils import to_checksum_address

from autometa.domain.assets import asset_from_bytes32
from autometa.domain.kinds import AdminChange

UINT160_MASK = (1 << 160) - 1


@dataclass(frozen=True)
class PendingChange:
    id: int
    kind: str  # executor | feed | premium | max_tip | chain_module
    eta: int  # unix time from which the admin may apply it
    description: str
    executor: str | None = None
    asset: str | None = None
    feed: str | None = None  # None: the change removes the asset's feed
    max_age_s: int | None = None
    premium_bps: int | None = None
    max_tip_wei: int | None = None
    chain_module: str | None = None  # the new IChainModule's address

    def ready(self, now: int) -> bool:
        return now >= self.eta

    def as_dict(self, now: int) -> dict[str, Any]:
        return {**asdict(self), "ready": self.ready(now), "seconds_left": max(self.eta - now, 0)}


def decode_change(change_id: int, kind: int, key: bytes, value: int, eta: int) -> PendingChange:
    """One `pendingChange(id)` answer, in words."""
    k = AdminChange(kind)
    if k is AdminChange.EXECUTOR:
        who = to_checksum_address(key[-20:])
        verb = "allow" if value else "revoke"
        return PendingChange(change_id, k.label, eta, f"{verb} executor {who}", executor=who)
    if k is AdminChange.FEED:
        asset = asset_from_bytes32(key)
        feed_int, max_age = value & UINT160_MASK, value >> 160
        if feed_int == 0:
            return PendingChange(change_id, k.label, eta, f"remove the price feed of {asset}", asset=asset)
        feed = to_checksum_address(feed_int.to_bytes(20, "big"))
        return PendingChange(
            change_id,
            k.label,
            eta,
            f"price feed of {asset} → {feed} (max age {max_age} s)",
            asset=asset,
            feed=feed,
            max_age_s=max_age,
        )
    if k is AdminChange.PREMIUM:
        return PendingChange(change_id, k.label, eta, f"premium → {value} bps", premium_bps=value)
    if k is AdminChange.CHAIN_MODULE:
        module = to_checksum_address((value & UINT160_MASK).to_bytes(20, "big"))
        return PendingChange(change_id, k.label, eta, f"chain module (L1 data fee) → {module}", chain_module=module)
    return PendingChange(change_id, k.label, eta, f"tip cap → {value / 10**9:g} gwei per gas", max_tip_wei=value)


def pending_changes(core: Any) -> list[PendingChange]:
    """Every queued change of a (sync web3) Autometa contract, oldest first."""
    out = []
    for change_id in core.functions.pendingChangeIds().call():
        kind, key, value, eta = core.functions.pendingChange(change_id).call()
        out.append(decode_change(int(change_id), int(kind), bytes(key), int(value), int(eta)))
    return out


async def pending_changes_async(core: Any) -> list[PendingChange]:
    """The same through an AsyncWeb3 contract (the API)."""
    out = []
    for change_id in await core.functions.pendingChangeIds().call():
        kind, key, value, eta = await core.functions.pendingChange(change_id).call()
        out.append(decode_change(int(change_id), int(kind), bytes(key), int(value), int(eta)))
    return out
