"""Signers: one interface for every key the platform signs with (executor, relayer, admin) —
a local key, an encrypted keystore file, or an AWS KMS key. See `base.Signer`."""

from autometa.chain.signers.base import DigestSigner, Signer, SignerConfigError, SignerError, SignerUnavailable
from autometa.chain.signers.keystore import keystore_address, load_keystore, read_password, write_keystore
from autometa.chain.signers.kms import AwsKmsSigner
from autometa.chain.signers.local import LocalKeySigner
from autometa.chain.signers.roles import ROLE_SETTINGS, configured_spec, is_dev_chain, role_signer
from autometa.chain.signers.spec import SignerSpec, build_signer, parse_spec

__all__ = [
    "ROLE_SETTINGS",
    "AwsKmsSigner",
    "DigestSigner",
    "LocalKeySigner",
    "Signer",
    "SignerConfigError",
    "SignerError",
    "SignerSpec",
    "SignerUnavailable",
    "as_signer",
    "build_signer",
    "configured_spec",
    "is_dev_chain",
    "keystore_address",
    "load_keystore",
    "parse_spec",
    "read_password",
    "role_signer",
    "write_keystore",
]


def as_signer(key: object) -> Signer:
    """A signer from a signer or an eth_account `LocalAccount` (tests and dev accounts)."""
    from eth_account.signers.local import LocalAccount

    if isinstance(key, LocalAccount):
        return LocalKeySigner(key)
    if isinstance(key, Signer):
        return key
    raise TypeError(f"not a signer: {type(key).__name__}")
