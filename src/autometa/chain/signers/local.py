"""A key held in this process: given as hex (dev chains, the seed's `WORKER_PRIVATE_KEY`) or
decrypted from a keystore file at start-up."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.datastructures import SignedMessage, SignedTransaction
from eth_account.messages import SignableMessage
from eth_account.signers.local import LocalAccount

from autometa.chain.signers.base import SignerConfigError

__all__ = ["LocalKeySigner"]


class LocalKeySigner:
    """Signs with an eth_account `LocalAccount` kept private: the object shows only its kind and
    address, and pickling it is refused (a key must not travel by accident)."""

    remote = False

    def __init__(self, account: LocalAccount, kind: str = "key", source: str | None = None) -> None:
        self.__account = account
        self.kind = kind
        self.source = source  # where the key came from (a keystore path), never the key

    @classmethod
    def from_key(cls, key: str | bytes, *, kind: str = "key", source: str | None = None) -> LocalKeySigner:
        try:
            account: LocalAccount = Account.from_key(key)
        except Exception:
            raise SignerConfigError("not a valid 32-byte hex private key") from None  # never echo it
        return cls(account, kind, source)

    @property
    def address(self) -> str:
        return str(self.__account.address)

    def sign_transaction(self, transaction_dict: dict[str, Any]) -> SignedTransaction:
        return self.__account.sign_transaction(transaction_dict)  # type: ignore[arg-type]

    def sign_message(self, signable_message: SignableMessage) -> SignedMessage:
        return self.__account.sign_message(signable_message)

    def export_keystore(self, password: str, *, iterations: int | None = None) -> dict[str, Any]:
        """The key as eth_account's scrypt keystore JSON (`keys new` / `keys import`)."""
        kdf_params: dict[str, Any] = {"kdf": "scrypt"}
        if iterations is not None:
            kdf_params["iterations"] = iterations
        return dict(Account.encrypt(self.__account.key, password, **kdf_params))

    def __repr__(self) -> str:
        where = f", source={self.source!r}" if self.source else ""
        return f"LocalKeySigner(kind={self.kind!r}, address={self.address!r}{where})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a signer holding a private key cannot be pickled")
