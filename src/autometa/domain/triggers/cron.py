"""CRON: run at the minutes a 5-field UTC cron spec allows, once per tick.

The contract parses the spec with Chainlink's `Cron` (contracts/src/vendor/Cron.sol) into
bitmaps and checks the tick each run names: a whole minute the spec allows, not in the future,
after the workflow's creation, `not_before` and its last run — so a tick runs once and ticks
missed while nothing executed run once. This module accepts exactly the grammar Chainlink's
parser gives the same meaning as classic cron (`*`, `n`, `a-b`, `*/n`, lists `a,b,…`, digits
only), so `croniter` (classic cron, `day_or=False` like Chainlink, which ANDs day of month and
day of week) computes the ticks the contract accepts; tests/domain/test_trigger_cron.py checks
it against Chainlink's own `nextTick` on the chain.

The scheduler's evaluator (worker/triggers/cron.py) names the tick of each run (the latest at or
before the block's time); the executor packs it into the run's word.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from typing import Any

from croniter import croniter
from pydantic import Field, field_validator, model_validator

from autometa.domain.triggers.registry import KindData, TriggerKind, TriggerSlots, register
from autometa.domain.triggers.values import UnixTime

CRON_CODE = 4  # the contract's TRIGGER_CRON
# name, lowest, highest (Chainlink's bounds: weekday 0-6 with 0 = Sunday, no 7)
FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 6))
MAX_LIST = 26  # Chainlink's Field.list length


def _number(text: str, name: str, low: int, high: int) -> int:
    if not text.isascii() or not text.isdigit():
        raise ValueError(f"cron {name}: {text!r} is not a number")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"cron {name}: {value} is outside {low}-{high}")
    return value


def _field(text: str, name: str, low: int, high: int) -> set[int]:
    """The values a field allows, or ValueError naming the field (Chainlink's grammar)."""
    if text == "*":
        return set(range(low, high + 1))
    if text.startswith("*/"):
        if name in ("day of month", "month"):
            # Chainlink reads */n as "multiples of n", classic cron as "every n from the first"
            raise ValueError(f"cron {name}: steps (*/n) are not supported in this field")
        step = _number(text[2:], name, 1, high)
        return {v for v in range(low, high + 1) if v % step == 0}
    if "-" in text:
        a, _, b = text.partition("-")
        start, end = _number(a, name, low, high), _number(b, name, low, high)
        if end <= start:
            raise ValueError(f"cron {name}: a range must go up ({text!r})")
        return set(range(start, end + 1))
    if "," in text:
        items = text.split(",")
        if not 2 <= len(items) <= MAX_LIST:
            raise ValueError(f"cron {name}: a list has 2 to {MAX_LIST} items")
        return {_number(i, name, low, high) for i in items}
    return {_number(text, name, low, high)}


def parse(spec: str) -> list[set[int]]:
    """The five fields' allowed values; ValueError with the reason when the contract would refuse it."""
    parts = spec.split(" ")
    if len(parts) != 5:
        raise ValueError("a cron spec has 5 fields separated by single spaces: minute hour day month weekday")
    values = [_field(p, *f) for p, f in zip(parts, FIELDS, strict=True)]
    # Chainlink refuses a day of month that no allowed month has (leap years count)
    max_day = max(calendar.monthrange(2024, m)[1] for m in values[3])
    if min(values[2]) > max_day:
        raise ValueError(f"cron day of month: no allowed month has day {min(values[2])}")
    return values


class CronTriggerData(KindData):
    """Run at each minute `spec` (UTC) allows, between `not_before` and `not_after`."""

    spec: str = Field(examples=["0 9 * * 1-5"], description="minute hour day month weekday (0 = Sunday), UTC")
    not_before: UnixTime = 0
    not_after: UnixTime | None = None

    @field_validator("spec", mode="before")
    @classmethod
    def _normalise(cls, value: Any) -> Any:
        return " ".join(value.split()) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check(self) -> CronTriggerData:
        parse(self.spec)
        if self.not_after is not None and self.not_after <= self.not_before:
            raise ValueError("not_after must be after not_before")
        return self


def ticks_after(spec: str, after: int) -> croniter:
    """The spec's ticks strictly after unix time `after` (an iterator of unix seconds)."""
    return croniter(spec, datetime.fromtimestamp(after, UTC), day_or=False, ret_type=float)


def next_tick(spec: str, after: int) -> int:
    return int(ticks_after(spec, after).get_next())


def last_tick(spec: str, at: int) -> int:
    """The latest tick at or before `at` (what a run names after any downtime)."""
    return int(croniter(spec, datetime.fromtimestamp(at + 1, UTC), day_or=False, ret_type=float).get_prev())


class CronKind(TriggerKind[CronTriggerData]):
    name, code, label = "cron", CRON_CODE, "on a cron schedule"
    data_model = CronTriggerData
    slots = ("startTime", "endTime", "triggerData")
    unlimited_runs = True

    def encode(self, data: CronTriggerData) -> TriggerSlots:
        return TriggerSlots(
            start_time=data.not_before, end_time=data.not_after or 0, trigger_data=data.spec.encode("ascii")
        )

    def decode(self, slots: TriggerSlots) -> dict[str, Any]:
        return {
            "spec": bytes(slots.trigger_data).decode("ascii"),
            "not_before": slots.start_time,
            "not_after": slots.end_time or None,
        }

    def next_due(self, data: CronTriggerData, run_count: int, last_run: int) -> int:
        # the first tick at or after not_before, then the first after the last run (the
        # contract also refuses ticks before the workflow's creation)
        return next_tick(data.spec, data.not_before - 1 if run_count == 0 else last_run)

    def end_time(self, data: CronTriggerData) -> int | None:
        return data.not_after

    def describe(self, data: CronTriggerData) -> str:
        return f"cron {data.spec!r} (UTC)"


register(CronKind())
