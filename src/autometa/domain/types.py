"""Validated scalar types shared by the domain models, the API and the CLI."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from eth_utils import is_checksum_address, is_hex_address, to_checksum_address
from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

from autometa.domain.kinds import PRICE_DECIMALS, UINT256_MAX


def check_address(value: Any) -> str:
    """A 20-byte hex address. All-lowercase is accepted; mixed case must be a valid EIP-55 checksum."""
    if not isinstance(value, str) or not is_hex_address(value):
        raise ValueError("must be a 0x-prefixed 20-byte hex address")
    body = value[2:]
    if int(body, 16) == 0:
        raise ValueError("must not be the zero address")
    if body != body.lower() and body != body.upper() and not is_checksum_address(value):
        raise ValueError("has an invalid EIP-55 checksum (check for a typo)")
    return str(to_checksum_address(value))


def check_uint256(value: Any) -> int:
    """An unsigned 256-bit integer, given as a JSON integer or a decimal string (wei amounts
    exceed what JSON numbers hold exactly)."""
    if isinstance(value, bool):
        raise ValueError("must be an integer, not a boolean")
    if isinstance(value, str):
        text = value.strip()
        # ASCII only: str.isdigit() and int() also take other scripts' digits ("١٠٠٠", "１０００")
        if not (text.isascii() and text.isdigit()) or len(text) > 78:
            raise ValueError("must be a non-negative integer (decimal string)")
        value = int(text)
    if not isinstance(value, int):
        raise ValueError("must be an integer")
    if value < 0 or value > UINT256_MAX:
        raise ValueError("must be between 0 and 2**256-1")
    return value


def check_price(value: Any) -> Decimal:
    """A positive USD price with at most 8 decimals (the on-chain precision)."""
    if isinstance(value, bool) or (isinstance(value, str) and not value.isascii()):
        raise ValueError("must be a number (ASCII digits)")  # Decimal() also takes other scripts' digits
    try:
        price = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValueError("must be a number") from None
    if not price.is_finite() or price <= 0:
        raise ValueError("must be a positive finite number")
    if price.as_tuple().exponent < -PRICE_DECIMALS:  # type: ignore[operator]
        raise ValueError(f"has more than {PRICE_DECIMALS} decimals")
    if price * 10**PRICE_DECIMALS > 2**64 - 1:
        raise ValueError("is too large")
    return price


def check_hex_bytes(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) % 2:
        raise ValueError("must be 0x-prefixed hex with an even number of digits")
    try:
        bytes.fromhex(value[2:])
    except ValueError:
        raise ValueError("must be 0x-prefixed hex") from None
    return value.lower()


def _nonzero_hex(digits: str) -> str:
    """40 hex digits of one case, not all zero: the first non-zero digit at each place."""
    nonzero = digits.replace("0-9", "1-9")
    return "|".join(f"0{{{k}}}[{nonzero}][{digits}]{{{39 - k}}}" for k in range(40))


# What the schema can say of an address: 0x + 40 hex digits of one case, not the zero address.
# Mixed case is accepted when it is a valid EIP-55 checksum, which no JSON-schema pattern can check.
ADDRESS_PATTERN = f"^0x(?:{_nonzero_hex('0-9a-f')}|{_nonzero_hex('0-9A-F')})$"
_ADDRESS_SCHEMA = {
    "type": "string",
    "pattern": ADDRESS_PATTERN,
    "minLength": 42,
    "maxLength": 42,
    "description": "0x + 40 hex digits, not the zero address; all-lowercase, all-uppercase, or a valid EIP-55 checksum",
    "examples": ["0x90f79bf6eb2c4f870365e785982e1f101e93b906"],
}
Address = Annotated[str, BeforeValidator(check_address), WithJsonSchema(_ADDRESS_SCHEMA, mode="validation")]
Wei = Annotated[int, BeforeValidator(check_uint256), PlainSerializer(str, return_type=str, when_used="json")]


def plain_decimal(value: Decimal) -> str:
    """`3200`, never `3.2E+3` (what `str` makes of a normalized Decimal)."""
    return format(value, "f")


PriceUsd = Annotated[
    Decimal, BeforeValidator(check_price), PlainSerializer(plain_decimal, return_type=str, when_used="json")
]
HexBytes = Annotated[str, AfterValidator(check_hex_bytes)]


def price_to_int(price: Decimal) -> int:
    return int((price * 10**PRICE_DECIMALS).to_integral_value())


def price_from_int(raw: int) -> Decimal:
    value: Decimal = (Decimal(raw) / 10**PRICE_DECIMALS).normalize()
    return value
