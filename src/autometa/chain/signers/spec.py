"""Signer specs: the one-line strings that name a key in configuration.

    key:0x<64 hex>  or  0x<64 hex>        a plain private key (dev chains; warned about elsewhere)
    keystore:/path/key.json[?password_file=/run/secrets/pw]
    kms:<key id | key ARN | alias/name | alias ARN>

A spec's repr never shows a plain key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

from autometa.chain.signers.base import Signer, SignerConfigError
from autometa.chain.signers.keystore import keystore_address, load_keystore, read_password
from autometa.chain.signers.kms import AwsKmsSigner
from autometa.chain.signers.local import LocalKeySigner

__all__ = ["KINDS", "SignerSpec", "build_signer", "parse_spec"]

KINDS = ("key", "keystore", "kms")
_HEX_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class SignerSpec:
    kind: str
    target: str = field(repr=False)  # the key itself for kind "key": never shown
    password_file: Path | None = None

    def __repr__(self) -> str:
        return f"SignerSpec(kind={self.kind!r}, {self.describe()})"

    def describe(self) -> str:
        """Where the key is, safe to print."""
        if self.kind == "key":
            return "a plain private key"
        if self.kind == "keystore":
            return f"keystore {self.target}"
        return f"KMS key {self.target}"


def parse_spec(text: str) -> SignerSpec:
    """Parse a spec; a `ValueError` says what is wrong without repeating a key."""
    text = text.strip()
    if _HEX_KEY.match(text):
        return SignerSpec("key", text)
    kind, sep, rest = text.partition(":")
    if not sep or kind not in KINDS:
        raise ValueError("expected key:0x…, keystore:/path/to/key.json or kms:<key id or ARN>")
    if kind == "key":
        if not _HEX_KEY.match(rest):
            raise ValueError("key: must be followed by a 32-byte hex private key")
        return SignerSpec("key", rest)
    if kind == "kms":
        if not rest or any(c.isspace() for c in rest):
            raise ValueError("kms: must be followed by a KMS key id, key ARN or alias")
        return SignerSpec("kms", rest)
    path, _, query = rest.partition("?")
    if not path:
        raise ValueError("keystore: must be followed by the keystore file's path")
    options = parse_qs(query, keep_blank_values=True) if query else {}
    unknown = set(options) - {"password_file"}
    if unknown:
        raise ValueError(f"unknown keystore option(s) {', '.join(sorted(unknown))} (known: password_file)")
    password_file = options.get("password_file", [""])[-1] or None
    return SignerSpec("keystore", path, Path(password_file).expanduser() if password_file else None)


def build_signer(
    spec: SignerSpec,
    *,
    password_file: Path | None = None,
    prompt: bool | None = None,
    kms_region: str | None = None,
    kms_endpoint_url: str | None = None,
    kms_retry_for: float = 60.0,
    label: str = "",
) -> Signer:
    """The signer a spec names, checked: a keystore is decrypted, a KMS key is looked up."""
    if spec.kind == "key":
        return LocalKeySigner.from_key(spec.target)
    if spec.kind == "keystore":
        path = Path(spec.target).expanduser()
        keystore_address(path)  # a missing or garbled file fails before anyone is asked for a password
        password = read_password(path, spec.password_file or password_file, prompt=prompt, label=label)
        return load_keystore(path, password)
    if spec.kind == "kms":
        return AwsKmsSigner.connect(
            spec.target, region=kms_region, endpoint_url=kms_endpoint_url, retry_for=kms_retry_for
        )
    raise SignerConfigError(f"unknown signer kind {spec.kind!r}")
