"""Hypothesis strategies for valid workflow specs in the seed's JSON shape."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from autometa.domain.kinds import UINT32_MAX, UINT96_MAX

NOW = 1_800_000_000
addresses = st.binary(min_size=20, max_size=20).filter(any).map(lambda b: "0x" + b.hex())
assets = st.from_regex(r"[a-z0-9][a-z0-9-]{0,31}", fullmatch=True)
prices = st.integers(min_value=1, max_value=2**63).map(lambda i: Decimal(i) / 10**8)


def _interval() -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda start, interval, span: {"interval": interval, "start": start, "end": (start + span) if span else None},
        st.integers(NOW, NOW + 10**6),
        st.integers(1, UINT32_MAX),
        st.one_of(st.just(0), st.integers(1, 10**7)),
    )


triggers = st.one_of(
    st.builds(lambda at: (0, {"at": at}), st.integers(NOW, 2**40 - 1)),
    _interval().map(lambda d: (1, d)),
    st.builds(
        lambda token, comp, price, cooldown: (
            2,
            {"token": token, "comparator": comp, "price_usd": price, "cooldown": cooldown},
        ),
        assets,
        st.sampled_from([0, 1]),
        prices,
        st.integers(0, 2**24 - 1),
    ),
)
actions = st.one_of(
    st.builds(lambda to, amt: (0, {"to": to, "amount_wei": amt}), addresses, st.integers(1, UINT96_MAX)),
    st.builds(
        lambda tok, to, amt: (1, {"token": tok, "to": to, "amount": amt}),
        addresses,
        addresses,
        st.integers(1, 2**256 - 1),
    ),
    st.builds(
        lambda t, data, v: (2, {"target": t, "data": "0x" + data.hex(), "value_wei": v}),
        addresses,
        st.binary(max_size=300),
        st.integers(0, UINT96_MAX),
    ),
)


@st.composite
def spec_bodies(draw: st.DrawFn) -> dict[str, Any]:
    (tt, td), (at, ad) = draw(triggers), draw(actions)
    body: dict[str, Any] = {"trigger_type": tt, "trigger_data": td, "action_type": at, "action_data": ad}
    if tt != 0:
        body["max_runs"] = draw(st.one_of(st.none(), st.integers(1, UINT32_MAX)))
    body["gas_limit"] = draw(st.one_of(st.none(), st.integers(10_000, 5_000_000)))
    body["max_fee_per_run_wei"] = draw(st.one_of(st.none(), st.integers(1, 2**80 - 1)))
    return body
