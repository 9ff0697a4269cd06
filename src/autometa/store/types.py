"""Column types and value normalisers shared by the models and the repositories.

Two backends must give back exactly what was stored: SQLite has neither a 256-bit integer nor
time zones, so both are handled here rather than in every repository.
"""

from __future__ import annotations

import decimal
import functools
from datetime import UTC, datetime
from typing import Any

from eth_utils import is_hex_address, to_checksum_address
from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer, Numeric, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine

UINT256_MAX = 2**256 - 1

# Autoincrementing 64-bit keys; SQLite only autoincrements an INTEGER PRIMARY KEY (the rowid).
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")

# JSON documents; JSONB on PostgreSQL so they can be indexed and compared.
JSONDoc = JSON().with_variant(JSONB(), "postgresql")


class Uint256(TypeDecorator[int]):
    """A uint256 (wei amounts, on-chain prices) that round-trips exactly as a Python int.

    NUMERIC(78,0) on PostgreSQL. On SQLite a NUMERIC column would turn anything above 2**63 into
    a lossy REAL, so the decimal digits are stored as text instead; sums over it are then done in
    Python by the repositories (see ``Store.is_sqlite``).
    """

    impl = Numeric(78, 0)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(78))
        return dialect.type_descriptor(Numeric(78, 0))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        number = to_uint256(value)
        return str(number) if dialect.name == "sqlite" else decimal.Decimal(number)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return int(value)


class UTCDateTime(TypeDecorator[datetime]):
    """A point in time, always handed back timezone-aware in UTC.

    PostgreSQL stores ``timestamptz``; SQLite stores naive UTC text, which still sorts and
    compares correctly because every value is written in the same zone and format.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment = to_utc(value)
        return moment.replace(tzinfo=None) if dialect.name == "sqlite" else moment

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):  # pragma: no cover - defensive, drivers parse already
            value = datetime.fromisoformat(str(value))
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def to_uint256(value: Any) -> int:
    """An int in [0, 2**256), from an int, an integral Decimal or a decimal string."""
    if isinstance(value, bool):
        raise TypeError("a bool is not an amount")
    if isinstance(value, decimal.Decimal):
        if value != value.to_integral_value():
            raise ValueError(f"not an integer amount: {value}")
        number = int(value)
    elif isinstance(value, int):
        number = value
    elif isinstance(value, str):
        number = int(value, 0) if value.startswith(("0x", "0X")) else int(value)
    else:
        raise TypeError(f"not an amount: {value!r}")
    if not 0 <= number <= UINT256_MAX:
        raise ValueError(f"amount out of uint256 range: {number}")
    return number


def to_utc(value: Any) -> datetime:
    """An aware UTC datetime from an aware datetime or unix seconds; naive datetimes are refused
    because whether they are local or UTC cannot be known."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware one (datetime.now(UTC)) or unix seconds")
        return value.astimezone(UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=UTC)
    raise TypeError(f"not a time: {value!r}")


def checksum(value: str | bytes) -> str:
    """The EIP-55 form, so one address is one string whatever case the caller used."""
    if isinstance(value, bytes):
        value = "0x" + value.hex()
    return _checksum(value)


@functools.lru_cache(maxsize=4096)
def _checksum(value: str) -> str:
    """Cached: a keccak per call, and the writers checksum the same few addresses (contract,
    executor, owners) on every row — 13 % of an indexer's CPU in a 1,000-run burst."""
    if not is_hex_address(value):
        raise ValueError(f"not an address: {value!r}")
    return str(to_checksum_address(value))


def hexstr(value: str | bytes) -> str:
    """Lower-case 0x-prefixed hex, so hashes and calldata compare as plain strings."""
    if isinstance(value, bytes | bytearray | memoryview):
        return "0x" + bytes(value).hex()
    text = value.lower()
    if not text.startswith("0x"):
        text = "0x" + text
    try:
        bytes.fromhex(text[2:])
    except ValueError:
        raise ValueError(f"not hex: {value!r}") from None
    return text


def utcnow() -> datetime:
    return datetime.now(UTC)
