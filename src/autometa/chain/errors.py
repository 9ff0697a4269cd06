"""Revert data decoded into what a person can act on."""

from __future__ import annotations

from typing import Any

from eth_abi import decode
from eth_utils import function_signature_to_4byte_selector

from autometa.contracts import load_artifact

PANIC_CODES = {
    0x01: "assertion failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division by zero",
    0x21: "invalid enum value",
    0x32: "array index out of bounds",
    0x41: "out of memory",
}


def _custom_errors() -> dict[bytes, tuple[str, list[str], list[str]]]:
    errors: dict[bytes, tuple[str, list[str], list[str]]] = {}
    for name in ("Autometa", "OwnerProxy"):
        for item in load_artifact(name).abi:
            if item.get("type") == "error":
                types = [i["type"] for i in item["inputs"]]
                selector = function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})")
                errors[selector] = (item["name"], [i["name"] for i in item["inputs"]], types)
    return errors


_ERRORS = _custom_errors()


def decode_revert(data: bytes) -> str:
    """`Error(string)`, `Panic(uint256)` or one of our custom errors, as text."""
    if len(data) < 4:
        return "reverted without a reason"
    selector, body = data[:4], data[4:]
    try:
        if selector == bytes.fromhex("08c379a0"):
            return str(decode(["string"], body)[0])
        if selector == bytes.fromhex("4e487b71"):
            code = int(decode(["uint256"], body)[0])
            return f"panic 0x{code:02x}: {PANIC_CODES.get(code, 'unknown')}"
        if selector in _ERRORS:
            name, names, types = _ERRORS[selector]
            values = decode(types, body)
            args = ", ".join(f"{n}={_fmt(v)}" for n, v in zip(names, values, strict=True))
            return f"{name}({args})"
    except Exception:  # malformed revert data: fall through to the raw form
        pass
    return f"reverted with data 0x{data.hex()}"


def _fmt(value: Any) -> str:
    return "0x" + value.hex() if isinstance(value, bytes) else str(value)


def describe_revert(exc: Exception) -> str:
    """The decoded reason of a web3 contract error."""
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x"):
        return decode_revert(bytes.fromhex(data[2:]))
    if isinstance(data, bytes):
        return decode_revert(data)
    return str(exc)
