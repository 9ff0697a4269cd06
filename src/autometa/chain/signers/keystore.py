"""Encrypted keystore files (eth_account's scrypt JSON, the format geth, Foundry's `cast wallet`
and MetaMask exports use) and where their password comes from.

The password is read from, in order: a file named in the spec (`keystore:PATH?password_file=F`),
the file the `KEYSTORE_PASSWORD_FILE` setting names, or a prompt when a terminal is attached.
It is never taken from the command line or the environment itself (both leak into process lists
and crash reports).
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import is_hex_address, to_checksum_address

from autometa.chain.signers.base import SignerConfigError
from autometa.chain.signers.local import LocalKeySigner

__all__ = ["keystore_address", "load_keystore", "read_password", "write_keystore"]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise SignerConfigError(f"keystore {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise SignerConfigError(f"keystore {path} is not readable keystore JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict) or "crypto" not in {k.lower() for k in data}:
        raise SignerConfigError(f"keystore {path} is not a keystore file (no 'crypto' section)")
    return data


def keystore_address(path: Path) -> str | None:
    """The address a keystore says it holds (no password needed); None if it does not say."""
    raw = _read_json(path).get("address")
    if isinstance(raw, str):
        candidate = raw if raw.startswith("0x") else "0x" + raw
        if is_hex_address(candidate):
            return to_checksum_address(candidate)
    return None


def read_password(path: Path, password_file: Path | None = None, *, prompt: bool | None = None, label: str = "") -> str:
    """The keystore's password from `password_file` or, on a terminal, a prompt."""
    if password_file is not None:
        try:
            return password_file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise SignerConfigError(
                f"cannot read the password file {password_file} for keystore {path}: {exc.strerror}"
            ) from None
    interactive = sys.stdin.isatty() if prompt is None else prompt
    if not interactive:
        raise SignerConfigError(
            f"no password for keystore {path}: add ?password_file=FILE to the spec, set KEYSTORE_PASSWORD_FILE "
            "to a file holding it, or start from a terminal to be prompted"
        )
    return getpass.getpass(f"Password for keystore {path}{f' ({label})' if label else ''}: ")


def load_keystore(path: Path, password: str) -> LocalKeySigner:
    """Decrypt `path` into a signer. A wrong password is a `SignerConfigError` naming the file."""
    data = _read_json(path)
    try:
        key = Account.decrypt(data, password)
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise SignerConfigError(f"wrong password for keystore {path}") from None
        raise SignerConfigError(f"keystore {path} cannot be decrypted: {exc}") from None
    signer = LocalKeySigner.from_key(key, kind="keystore", source=str(path))
    claimed = keystore_address(path)
    if claimed is not None and claimed != signer.address:
        raise SignerConfigError(f"keystore {path} says it holds {claimed} but its key is {signer.address}")
    return signer


def write_keystore(path: Path, signer: LocalKeySigner, password: str, *, iterations: int | None = None) -> Path:
    """Write `signer`'s key encrypted to `path` (mode 0600); never overwrites a file."""
    if not password:
        raise SignerConfigError("refusing an empty keystore password")
    document = signer.export_keystore(password, iterations=iterations)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SignerConfigError(f"{path} already exists: keystores are never overwritten") from None
    with os.fdopen(fd, "w") as out:
        json.dump(document, out)
    return path
