"""Trigger kinds, one module each (see docs/TRIGGERS.md). Importing the package registers them."""

from autometa.domain.triggers import cron, interval, log, price, state, time  # noqa: F401  (each registers itself)
from autometa.domain.triggers.registry import (
    KindData,
    TriggerKind,
    TriggerSlots,
    UnknownTriggerKind,
    all_kinds,
    creatable_kinds,
    get_kind,
    kind_of_data,
    known_names,
    parse_code,
)

__all__ = [
    "KindData",
    "TriggerKind",
    "TriggerSlots",
    "UnknownTriggerKind",
    "all_kinds",
    "creatable_kinds",
    "get_kind",
    "kind_of_data",
    "known_names",
    "parse_code",
]
