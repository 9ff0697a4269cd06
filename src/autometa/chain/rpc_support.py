"""Telling "this node does not offer the method" from "this call failed this time".

Only the first may switch a feature off for good (eth_simulateV1 on Hardhat answers -32004
"not supported"; geth without the API answers -32601). A 429, a timeout or a 5xx from a
provider says nothing about the method, and turning batch simulation off for the life of the
process on one of them would silently cost every later batch.
"""

from __future__ import annotations

from typing import Any

UNSUPPORTED_CODES = frozenset({-32601, -32004})  # method not found / method not supported
UNSUPPORTED_TEXT = ("not supported", "does not exist", "method not found", "not available", "unknown method")


def method_unsupported(error: Any) -> bool:
    """True when a JSON-RPC error object (or its text) says the node lacks the method."""
    if not error:
        return False
    code = error.get("code") if isinstance(error, dict) else None
    text = str(error.get("message", "") if isinstance(error, dict) else error).lower()
    return code in UNSUPPORTED_CODES or any(phrase in text for phrase in UNSUPPORTED_TEXT)
