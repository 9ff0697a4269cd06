"""TIME: run once, at or after a moment."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from autometa.domain.kinds import TriggerType
from autometa.domain.triggers.registry import KindData, TriggerKind, TriggerSlots, register
from autometa.domain.triggers.values import UnixTime


class TimeTriggerData(KindData):
    """Fire once, at or after `at`."""

    at: UnixTime = Field(gt=0, examples=[1767225600])


class TimeKind(TriggerKind[TimeTriggerData]):
    name, code, label = "time", int(TriggerType.TIME), "at a time"
    data_model = TimeTriggerData
    form_rank = 1
    slots = ("startTime",)
    single_run = True

    def encode(self, data: TimeTriggerData) -> TriggerSlots:
        return TriggerSlots(start_time=data.at)

    def decode(self, slots: TriggerSlots) -> dict[str, Any]:
        return {"at": slots.start_time}

    def next_due(self, data: TimeTriggerData, run_count: int, last_run: int) -> int:
        return data.at

    def check_times(self, data: TimeTriggerData, now: int) -> None:
        if data.at <= now:
            raise ValueError("trigger_data.at must be in the future")

    def describe(self, data: TimeTriggerData) -> str:
        return f"at {data.at}"


register(TimeKind())
