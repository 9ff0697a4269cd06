"""Revert reasons, decoded: `Error(string)`, `Panic(uint256)` and custom errors from an ABI.

`TransactionReverted` is what `TransactionSender.simulate` raises for a call that would revert and
what `TransactionSender.wait` raises for a mined transaction whose receipt has status 0 (the
reason then comes from replaying the call at the receipt's block).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_abi.abi import decode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)

PANIC_CODES = {
    0x00: "generic compiler panic",
    0x01: "assertion failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division or modulo by zero",
    0x21: "invalid enum value",
    0x22: "invalid storage byte array encoding",
    0x31: "pop on an empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to an uninitialised internal function",
}

Abi = Sequence[Mapping[str, Any]]


def _canonical_type(item: Mapping[str, Any]) -> str:
    """The canonical ABI type of an input, expanding tuples (`tuple[]` → `(a,b)[]`)."""
    typ = str(item["type"])
    if typ.startswith("tuple"):
        inner = ",".join(_canonical_type(c) for c in item.get("components", []))
        return f"({inner}){typ[len('tuple') :]}"
    return typ


@dataclass(frozen=True)
class ErrorSpec:
    name: str
    arg_names: tuple[str, ...]
    arg_types: tuple[str, ...]

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(self.arg_types)})"


def error_table(*abis: Abi) -> dict[bytes, ErrorSpec]:
    """Selector → custom error, for every `error` entry of the given ABIs."""
    table: dict[bytes, ErrorSpec] = {}
    for abi in abis:
        for item in abi:
            if item.get("type") != "error":
                continue
            inputs = list(item.get("inputs", []))
            spec = ErrorSpec(
                name=str(item["name"]),
                arg_names=tuple(str(i.get("name") or f"arg{n}") for n, i in enumerate(inputs)),
                arg_types=tuple(_canonical_type(i) for i in inputs),
            )
            table[function_signature_to_4byte_selector(spec.signature)] = spec
    return table


@dataclass(frozen=True)
class RevertReason:
    """A decoded revert.

    kind: "error" (Error(string)), "panic" (Panic(uint256)), "custom" (an ABI error), "empty"
    (no data) or "unknown" (data matching nothing we know). `name` is "Error", "Panic", the custom
    error's name, or "" for empty/unknown; `args` maps argument names to decoded values.
    """

    kind: str
    name: str
    args: Mapping[str, Any] = field(default_factory=dict)
    data: bytes = b""
    message: str = ""

    def __str__(self) -> str:
        return self.message


def decode_revert(data: bytes | str | None, errors: Mapping[bytes, ErrorSpec] | None = None) -> RevertReason:
    """Decode revert data (bytes or 0x-hex) against the standard errors and `errors`."""
    if isinstance(data, str):
        text = data[2:] if data.startswith("0x") else data
        try:
            data = bytes.fromhex(text)
        except ValueError:
            return RevertReason("unknown", "", data=b"", message=f"reverted: {text}")
    if not data:
        return RevertReason("empty", "", data=b"", message="reverted without a reason")
    selector, body = data[:4], data[4:]
    try:
        if selector == ERROR_SELECTOR:
            reason = str(decode(["string"], body)[0])
            return RevertReason("error", "Error", {"reason": reason}, data, reason)
        if selector == PANIC_SELECTOR:
            code = int(decode(["uint256"], body)[0])
            text = PANIC_CODES.get(code, "unknown panic code")
            return RevertReason("panic", "Panic", {"code": code}, data, f"panic 0x{code:02x}: {text}")
        spec = (errors or {}).get(selector)
        if spec is not None:
            values = decode(list(spec.arg_types), body)
            values = tuple(
                to_checksum_address(v) if t == "address" else v for t, v in zip(spec.arg_types, values, strict=True)
            )
            args = dict(zip(spec.arg_names, values, strict=True))
            shown = ", ".join(f"{k}={_fmt(v)}" for k, v in args.items())
            return RevertReason("custom", spec.name, args, data, f"{spec.name}({shown})")
    except Exception:  # malformed data for the selector: report it raw
        pass
    return RevertReason("unknown", "", data=data, message=f"reverted with data 0x{data.hex()}")


def _fmt(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, tuple | list):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    return str(value)


_HEX = re.compile(r"0x[0-9a-fA-F]*")


def revert_data_from_exception(exc: BaseException) -> bytes | None:
    """The raw revert data carried by a web3 error (ContractLogicError & co, Web3RPCError), or
    None when the error is not a revert (a transport problem, say)."""
    candidates: list[Any] = [getattr(exc, "data", None)]
    response = getattr(exc, "rpc_response", None)
    if isinstance(response, Mapping):
        error = response.get("error")
        if isinstance(error, Mapping):
            candidates.append(error.get("data"))
    for candidate in candidates:
        if isinstance(candidate, Mapping):
            candidate = candidate.get("data") or next(iter(candidate.values()), None)
        if isinstance(candidate, bytes):
            return candidate
        if isinstance(candidate, str):
            match = _HEX.search(candidate)
            if match:
                return bytes.fromhex(match.group(0)[2:])
    message = str(exc).lower()
    if "revert" in message:
        return b""
    return None


class TransactionReverted(Exception):
    """A call or transaction reverted. `reason` is the decoded revert; `tx_hash`/`block_number`
    are set for a mined transaction, `purpose` when the sender knows it."""

    def __init__(
        self,
        reason: RevertReason,
        *,
        tx_hash: str | None = None,
        block_number: int | None = None,
        purpose: str | None = None,
        receipt: Any = None,
    ) -> None:
        self.reason = reason
        self.tx_hash = tx_hash
        self.block_number = block_number
        self.purpose = purpose
        self.receipt = receipt
        where = f" (tx {tx_hash} in block {block_number})" if tx_hash else ""
        what = f"{purpose}: " if purpose else ""
        super().__init__(f"{what}reverted: {reason.message}{where}")

    @property
    def error_name(self) -> str:
        return self.reason.name

    @property
    def args_by_name(self) -> Mapping[str, Any]:
        return self.reason.args


def default_errors(extra: Iterable[Abi] = ()) -> dict[bytes, ErrorSpec]:
    """The Autometa contract's errors plus any extra ABIs."""
    from autometa.contracts import load_artifact

    return error_table(load_artifact("Autometa").abi, *extra)
