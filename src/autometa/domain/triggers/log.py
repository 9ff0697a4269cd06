"""LOG: run once per log of `emitter` with `topic0` (and up to three topic filters), after the
network's confirmation rule.

The contract cannot read logs: each run carries the executor's attestation (block number and
hash — checked with `blockhash` while within 256 blocks —, transaction hash, log index), logs are
accepted in order after the last that fired the workflow, and the attestation is recorded in
`LogAttested` (what an executor could and could not fake: docs/SECURITY.md). The filter is the
packed `triggerData`: emitter (20) | topic0 (32) | mask (1: bit i = topic i+1 filtered) | the
filtered topics (32 each).

The scheduler's evaluator (worker/triggers/log.py) finds the logs and hands each run its
attestation as the job's proof; the executor sends it with `executeWithProof`.
"""

from __future__ import annotations

import re
from typing import Any

from eth_utils import to_checksum_address
from pydantic import Field, field_validator, model_validator

from autometa.domain.triggers.registry import KindData, TriggerKind, TriggerSlots, register
from autometa.domain.triggers.values import UnixTime
from autometa.domain.types import Address

LOG_CODE = 5  # the contract's TRIGGER_LOG
_TOPIC = re.compile(r"^0x[0-9a-fA-F]{64}$")
HEAD = 53


def _topic(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str) or not _TOPIC.match(value):
        raise ValueError("a topic is 32 bytes as 0x-hex (64 hex digits)")
    return value.lower()


class LogTriggerData(KindData):
    """Fire for each log of `emitter` whose topic0 is `topic0` and whose other topics match the
    given filters (None: any)."""

    emitter: Address
    topic0: str = Field(examples=["0xe1fffcc4923d04b559f4d29a8bfc6cda04eb5b0d3c460751c2402c5c5cc9109c"])
    topics: tuple[str | None, str | None, str | None] = (None, None, None)
    not_before: UnixTime = 0
    not_after: UnixTime | None = None

    @field_validator("topic0", mode="before")
    @classmethod
    def _check_topic0(cls, value: Any) -> Any:
        value = _topic(value)
        if value is None or int(value, 16) == 0:
            raise ValueError("topic0 (the event's signature hash) is required")
        return value

    @field_validator("topics", mode="before")
    @classmethod
    def _check_topics(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            if len(value) > 3:
                raise ValueError("at most three topic filters (topics 1-3)")
            return tuple(_topic(v) for v in (*value, *[None] * (3 - len(value))))
        return value

    @model_validator(mode="after")
    def _check(self) -> LogTriggerData:
        if self.not_after is not None and self.not_after <= self.not_before:
            raise ValueError("not_after must be after not_before")
        return self


def encode_data(data: LogTriggerData) -> bytes:
    mask = sum(1 << i for i, t in enumerate(data.topics) if t is not None)
    return (
        bytes.fromhex(data.emitter[2:])
        + bytes.fromhex(data.topic0[2:])
        + bytes([mask])
        + b"".join(bytes.fromhex(t[2:]) for t in data.topics if t is not None)
    )


def decode_data(raw: bytes) -> dict[str, Any]:
    if len(raw) < HEAD:
        raise ValueError(f"LOG triggerData must be at least {HEAD} bytes, got {len(raw)}")
    mask = raw[52]
    if mask > 7 or len(raw) != HEAD + 32 * bin(mask).count("1"):
        raise ValueError("LOG triggerData: the mask does not match the topics that follow")
    rest = iter(raw[HEAD + 32 * i : HEAD + 32 * (i + 1)] for i in range(3))
    topics = tuple("0x" + next(rest).hex() if mask >> i & 1 else None for i in range(3))
    return {"emitter": to_checksum_address(raw[:20]), "topic0": "0x" + raw[20:52].hex(), "topics": topics}


class LogKind(TriggerKind[LogTriggerData]):
    name, code, label = "log", LOG_CODE, "an on-chain event"
    data_model = LogTriggerData
    needs_proof = True  # each run carries the log's attestation (executeWithProof)
    slots = ("startTime", "endTime", "triggerData")
    unlimited_runs = True

    def encode(self, data: LogTriggerData) -> TriggerSlots:
        return TriggerSlots(start_time=data.not_before, end_time=data.not_after or 0, trigger_data=encode_data(data))

    def decode(self, slots: TriggerSlots) -> dict[str, Any]:
        return {
            **decode_data(bytes(slots.trigger_data)),
            "not_before": slots.start_time,
            "not_after": slots.end_time or None,
        }

    def next_due(self, data: LogTriggerData, run_count: int, last_run: int) -> int:
        return data.not_before  # by time alone; a log is what fires it

    def end_time(self, data: LogTriggerData) -> int | None:
        return data.not_after

    def describe(self, data: LogTriggerData) -> str:
        return f"log {data.topic0[:10]}… of {data.emitter}"


register(LogKind())
