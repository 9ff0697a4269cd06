from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from autometa.store import Store
from autometa.store.types import UINT256_MAX, checksum, hexstr, to_uint256, to_utc

from .helpers import CHAIN, CONTRACT, EXECUTOR, tx


@pytest.mark.parametrize("amount", [0, 1, 2**63, 2**64 + 1, UINT256_MAX])
def test_uint256_round_trips_exactly(store: Store, amount: int) -> None:
    store.escrow.record(
        chain_id=CHAIN,
        contract=CONTRACT,
        block_number=1,
        tx_hash=tx(1),
        log_index=0,
        kind="deposit",
        account=EXECUTOR,
        amount=amount,
    )
    assert store.escrow.list(CHAIN, CONTRACT).items[0].amount == amount
    assert store.escrow.balance(CHAIN, CONTRACT, EXECUTOR) == amount


def test_times_come_back_aware_utc(store: Store) -> None:
    plus2 = timezone(timedelta(hours=2))
    moment = datetime(2026, 1, 2, 15, 4, 5, 123456, tzinfo=plus2)
    hb = store.heartbeats.beat(CHAIN, "w1", "executor", now=moment)
    assert hb.last_seen == moment and hb.last_seen.tzinfo == UTC
    assert hb.last_seen.hour == 13


def test_normalisers() -> None:
    assert to_uint256("0x10") == 16 and to_uint256("12") == 12
    with pytest.raises(ValueError):
        to_uint256(-1)
    with pytest.raises(TypeError):
        to_uint256(True)
    with pytest.raises(ValueError, match="naive"):
        to_utc(datetime(2026, 1, 1))
    assert to_utc(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert hexstr(b"\xab") == "0xab" and hexstr("AB") == "0xab"
    with pytest.raises(ValueError):
        hexstr("0xzz")
    assert checksum(bytes(20)) == "0x" + "0" * 40
