"""Asset ids: CoinGecko ids such as "ethereum", stored on-chain as a left-aligned bytes32."""

from __future__ import annotations

import re

_ASSET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


def validate_asset(name: str) -> str:
    """A CoinGecko-style id: lowercase letters, digits and '-', at most 32 characters."""
    if not _ASSET_RE.fullmatch(name):
        raise ValueError(f"asset {name!r} is not a CoinGecko id (lowercase letters, digits and '-', 1-32 characters)")
    return name


def asset_to_bytes32(name: str) -> bytes:
    return validate_asset(name).encode("ascii").ljust(32, b"\0")


def asset_from_bytes32(raw: bytes) -> str:
    return raw.rstrip(b"\0").decode("ascii", errors="replace")
