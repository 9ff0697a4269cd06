"""What every signer is: an address and the ability to sign a transaction or a message hash.

A signer is duck-type compatible with eth_account's `LocalAccount` for the three things Autometa
asks of a key (`address`, `sign_transaction`, `sign_message`), so one-off set-up code that takes an
account takes any signer. Secrets stay inside the signer: `repr` shows the kind and the address,
errors name the key's location (a path, a KMS key id), never its material.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from eth_account._utils.legacy_transactions import (
    Transaction,
    UnsignedTransaction,
    encode_transaction,
    serializable_unsigned_transaction_from_dict,
)
from eth_account._utils.signing import to_eth_v
from eth_account.datastructures import SignedMessage, SignedTransaction
from eth_account.messages import SignableMessage, _hash_eip191_message
from eth_account.typed_transactions import TypedTransaction
from eth_utils import keccak
from hexbytes import HexBytes

__all__ = ["DigestSigner", "Signer", "SignerConfigError", "SignerError", "SignerUnavailable"]


class SignerError(Exception):
    """A signature could not be produced. Nothing was signed, so nothing can have been sent."""


class SignerUnavailable(SignerError):
    """The signing service could not be reached or throttled us for longer than we retry."""


class SignerConfigError(SignerError):
    """The signer is configured wrongly (bad spec, missing file, wrong password, wrong key type,
    disabled key): retrying cannot help."""


@runtime_checkable
class Signer(Protocol):
    """One key. `remote` signers block on the network (the async sender calls them in a thread)."""

    kind: str
    remote: bool

    @property
    def address(self) -> str: ...

    def sign_transaction(self, transaction_dict: dict[str, Any]) -> SignedTransaction: ...

    def sign_message(self, signable_message: SignableMessage) -> SignedMessage: ...


class DigestSigner:
    """A signer that can only sign a 32-byte digest (a KMS, an HSM): builds transactions and
    EIP-191/712 messages around `sign_digest`, exactly as eth_account does for a local key."""

    kind = "digest"
    remote = True

    @property
    def address(self) -> str:
        raise NotImplementedError

    def sign_digest(self, digest: bytes) -> tuple[int, int, int]:
        """(v in {0, 1}, r, s) with s in the lower half of the curve order."""
        raise NotImplementedError

    def sign_transaction(self, transaction_dict: dict[str, Any]) -> SignedTransaction:
        tx = dict(transaction_dict)
        tx.pop("from", None)
        unsigned = serializable_unsigned_transaction_from_dict(tx)
        digest = unsigned.hash()
        v_raw, r, s = self.sign_digest(digest)
        if isinstance(unsigned, TypedTransaction):
            v = v_raw
        elif isinstance(unsigned, Transaction):  # chain-aware legacy (EIP-155): v carries the chain id
            v = to_eth_v(v_raw, unsigned.v)
        elif isinstance(unsigned, UnsignedTransaction):
            v = to_eth_v(v_raw)
        else:  # pragma: no cover - eth_account knows no other kind
            raise TypeError(f"unknown transaction object {type(unsigned).__name__}")
        encoded = encode_transaction(unsigned, vrs=(v, r, s))
        return SignedTransaction(raw_transaction=HexBytes(encoded), hash=HexBytes(keccak(encoded)), r=r, s=s, v=v)

    def sign_message(self, signable_message: SignableMessage) -> SignedMessage:
        digest = _hash_eip191_message(signable_message)
        v_raw, r, s = self.sign_digest(digest)
        v = to_eth_v(v_raw)
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])
        return SignedMessage(message_hash=HexBytes(digest), r=r, s=s, v=v, signature=HexBytes(signature))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, address={self.address!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a signer holding credentials cannot be pickled")
