"""Event logs decoded from the ABI with precomputed topic hashes and eth-abi, and `executeBatch`
calldata encoded the same way.

web3's `process_receipt` / `process_log` re-derive every event's signature hash, normalise each
log through its formatters (checksumming every address: a keccak each) and build AttributeDicts;
for a 50-run batch that was ~20 ms of the executor's CPU per receipt, plus ~7 ms to encode the
`executeBatch` call. Here an event is looked up by its topic0 in a dict made once, indexed
arguments are read from the topics and the rest decoded with one `eth_abi.decode` of the data.
Logs may come raw from JSON-RPC (hex strings: `eth_simulateV1`, a raw receipt) or formatted by
web3 (bytes); both decode alike. Address arguments come as eth-abi gives them, lowercase (not
checksummed: that is a keccak each).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils import keccak

from autometa.contracts import load_artifact


def _bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return bytes.fromhex(value[2:] if value.startswith("0x") else value)
    return bytes(value)


def _int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


def _canonical(param: Mapping[str, Any]) -> str:
    kind = str(param["type"])
    if kind.startswith("tuple"):
        return "(" + ",".join(_canonical(c) for c in param["components"]) + ")" + kind[len("tuple") :]
    return kind


@dataclass(frozen=True)
class DecodedLog:
    """One decoded event: its name, arguments by name, and where it sits in its block."""

    event: str
    args: dict[str, Any]
    log_index: int
    address: bytes


@dataclass(frozen=True)
class EventSpec:
    name: str
    topic: bytes
    indexed: tuple[tuple[str, str], ...]  # (name, type) read from topics[1:]
    data_names: tuple[str, ...]
    data_types: tuple[str, ...]

    @classmethod
    def from_abi(cls, entry: Mapping[str, Any]) -> EventSpec:
        inputs = entry["inputs"]
        signature = f"{entry['name']}({','.join(_canonical(p) for p in inputs)})"
        return cls(
            name=str(entry["name"]),
            topic=keccak(text=signature),
            indexed=tuple((p["name"], _canonical(p)) for p in inputs if p.get("indexed")),
            data_names=tuple(p["name"] for p in inputs if not p.get("indexed")),
            data_types=tuple(_canonical(p) for p in inputs if not p.get("indexed")),
        )

    def decode(self, topics: Sequence[bytes], data: bytes) -> dict[str, Any]:
        args: dict[str, Any] = {}
        for (name, kind), topic in zip(self.indexed, topics[1:], strict=True):
            args[name] = _word(kind, topic)  # value types only: a topic holds the value itself
        if self.data_types:
            if all(_is_word(k) for k in self.data_types) and len(data) == 32 * len(self.data_types):
                values = [_word(k, data[32 * i : 32 * i + 32]) for i, k in enumerate(self.data_types)]
            else:
                values = list(abi_decode(list(self.data_types), data))
            args.update(zip(self.data_names, values, strict=True))
        return args


def _is_word(kind: str) -> bool:
    return kind in ("bool", "address") or (kind.startswith("uint") and kind[4:].isdigit())


def _word(kind: str, word: bytes) -> Any:
    """One 32-byte word of a static type, as eth-abi decodes it (and refuses it: a value too wide
    for its type raises), by hand for uintN / bool / address: eth-abi's decoder objects were most
    of the cost of decoding a run's events. Other types go to eth-abi."""
    if len(word) != 32 or not _is_word(kind):
        return abi_decode([kind], word)[0]
    value = int.from_bytes(word, "big")
    if kind == "bool":
        if value > 1:
            raise ValueError(f"not a bool: {word.hex()}")
        return bool(value)
    if kind == "address":
        if value >> 160:
            raise ValueError(f"not an address: {word.hex()}")
        return "0x" + word[12:].hex()
    if value >> int(kind[4:]):
        raise ValueError(f"not a {kind}: {word.hex()}")
    return value


class EventDecoder:
    """Decodes the logs of one contract ABI; `names` limits it to those events."""

    def __init__(self, abi: Iterable[Mapping[str, Any]], names: Iterable[str] | None = None) -> None:
        wanted = set(names) if names is not None else None
        specs = [
            EventSpec.from_abi(e)
            for e in abi
            if e.get("type") == "event" and not e.get("anonymous") and (wanted is None or e["name"] in wanted)
        ]
        self.by_topic: dict[bytes, EventSpec] = {s.topic: s for s in specs}

    def decode(self, raw: Mapping[str, Any], address: bytes | None = None) -> DecodedLog | None:
        """The event in `raw`, or None: not one of ours (another topic, another contract when
        `address` is given) or not decodable (a log of another ABI with the same topic)."""
        topics = raw.get("topics") or []
        if not topics:
            return None
        spec = self.by_topic.get(_bytes(topics[0]))
        if spec is None:
            return None
        emitter = _bytes(raw["address"])
        if address is not None and emitter != address:
            return None
        try:
            args = spec.decode([_bytes(t) for t in topics], _bytes(raw.get("data") or b""))
        except Exception:
            return None
        return DecodedLog(spec.name, args, _int(raw.get("logIndex", 0) or 0), emitter)

    def decode_all(self, logs: Iterable[Mapping[str, Any]], address: bytes | None = None) -> list[DecodedLog]:
        return [d for d in (self.decode(raw, address) for raw in logs) if d is not None]


def _selector(abi: Iterable[Mapping[str, Any]], name: str) -> tuple[bytes, list[str]]:
    """A function's selector and argument types, from the ABI."""
    (function,) = [e for e in abi if e.get("type") == "function" and e.get("name") == name]
    types = [_canonical(p) for p in function["inputs"]]
    return keccak(text=f"{name}({','.join(types)})")[:4], types


class BatchCodec:
    """The Autometa contract's `executeBatch(uint256[])` and `executeWithProof(id, run, word,
    proof)` calldata, and its run events."""

    def __init__(self, address: str) -> None:
        abi = load_artifact("Autometa").abi
        self.selector, _ = _selector(abi, "executeBatch")
        self.proof_selector, self.proof_types = _selector(abi, "executeWithProof")
        self.address = _bytes(address)
        self.events = EventDecoder(abi, ("RunExecuted", "RunSkipped"))

    def calldata(self, runs: Sequence[int]) -> str:
        return "0x" + (self.selector + abi_encode(["uint256[]"], [list(runs)])).hex()

    def proof_calldata(self, workflow_id: int, run_index: int, word: int, proof: bytes) -> str:
        """One run with its proof (STATE: the triggerData; LOG: the log attestation), in the
        canonical encoding the contract requires."""
        args = abi_encode(self.proof_types, [workflow_id, run_index, word, proof])
        return "0x" + (self.proof_selector + args).hex()

    def run_events(self, logs: Iterable[Mapping[str, Any]]) -> list[DecodedLog]:
        """RunExecuted / RunSkipped logs emitted by this contract, in log order."""
        return self.events.decode_all(logs, self.address)
