"""PRICE: run when an asset's USD price is below or above a threshold (with a cooldown)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from autometa.domain.assets import asset_from_bytes32, asset_to_bytes32, validate_asset
from autometa.domain.kinds import UINT24_MAX, Comparator, TriggerType
from autometa.domain.names import ComparatorField
from autometa.domain.triggers.registry import KindData, TriggerKind, TriggerSlots, register
from autometa.domain.triggers.values import UnixTime
from autometa.domain.types import PriceUsd, price_from_int, price_to_int


class PriceTriggerData(KindData):
    """Fire when `token`'s USD price is below (comparator 0) or above (1) `price_usd`."""

    token: str = Field(examples=["ethereum"], description="CoinGecko id of the asset")
    comparator: ComparatorField = Field(examples=[0])
    price_usd: PriceUsd = Field(examples=[3200.0])
    cooldown: int = Field(default=0, ge=0, le=UINT24_MAX, description="seconds between runs (at most 2**24-1)")
    not_before: UnixTime = 0
    not_after: UnixTime | None = None

    @model_validator(mode="after")
    def _check(self) -> PriceTriggerData:
        validate_asset(self.token)
        if self.not_after is not None and self.not_after <= self.not_before:
            raise ValueError("not_after must be after not_before")
        return self


class PriceKind(TriggerKind[PriceTriggerData]):
    name, code, label = "price", int(TriggerType.PRICE), "price crosses a threshold"
    data_model = PriceTriggerData
    form_rank = 0  # the dashboard's default
    slots = ("comparator", "startTime", "endTime", "interval", "priceUsd", "asset")

    def encode(self, data: PriceTriggerData) -> TriggerSlots:
        return TriggerSlots(
            comparator=int(data.comparator),
            start_time=data.not_before,
            end_time=data.not_after or 0,
            interval=data.cooldown,
            price_usd=price_to_int(data.price_usd),
            asset=asset_to_bytes32(data.token),
        )

    def decode(self, slots: TriggerSlots) -> dict[str, Any]:
        return {
            "token": asset_from_bytes32(bytes(slots.asset)),
            "comparator": slots.comparator,
            "price_usd": price_from_int(slots.price_usd),
            "cooldown": slots.interval,
            "not_before": slots.start_time,
            "not_after": slots.end_time or None,
        }

    def next_due(self, data: PriceTriggerData, run_count: int, last_run: int) -> int:
        return data.not_before if run_count == 0 else last_run + data.cooldown

    def end_time(self, data: PriceTriggerData) -> int | None:
        return data.not_after

    def describe(self, data: PriceTriggerData) -> str:
        side = "below" if data.comparator is Comparator.BELOW else "above"
        return f"{data.token} {side} ${data.price_usd}"


register(PriceKind())
