"""INTERVAL: run every `interval` seconds from `start` until `end`."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from autometa.domain.kinds import UINT32_MAX, TriggerType
from autometa.domain.triggers.registry import KindData, TriggerKind, TriggerSlots, register
from autometa.domain.triggers.values import UnixTime


class IntervalTriggerData(KindData):
    """Fire every `interval` seconds from `start` (0 = at once) until `end` (none = never)."""

    interval: int = Field(ge=1, le=UINT32_MAX, examples=[3600])
    start: UnixTime = 0
    end: UnixTime | None = None

    @model_validator(mode="after")
    def _end_after_start(self) -> IntervalTriggerData:
        if self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class IntervalKind(TriggerKind[IntervalTriggerData]):
    name, code, label = "interval", int(TriggerType.INTERVAL), "every interval"
    data_model = IntervalTriggerData
    form_rank = 2
    slots = ("startTime", "endTime", "interval")
    unlimited_runs = True

    def encode(self, data: IntervalTriggerData) -> TriggerSlots:
        return TriggerSlots(start_time=data.start, end_time=data.end or 0, interval=data.interval)

    def decode(self, slots: TriggerSlots) -> dict[str, Any]:
        return {"interval": slots.interval, "start": slots.start_time, "end": slots.end_time or None}

    def next_due(self, data: IntervalTriggerData, run_count: int, last_run: int) -> int:
        return data.start if run_count == 0 else last_run + data.interval

    def end_time(self, data: IntervalTriggerData) -> int | None:
        return data.end

    def describe(self, data: IntervalTriggerData) -> str:
        return f"every {data.interval} s"


register(IntervalKind())
