"""`autometa keys`: create, import and inspect the encrypted keystores executors, relayers and
admins sign with (`WORKER_SIGNER=keystore:PATH`), and look up any signer's address.

Secrets never come from the command line (shell history, process lists): passwords come from
`--password-file` or a hidden prompt, an imported key from `--key-file` or a hidden prompt.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from autometa.cli.common import CliError, console, emit, handle_errors

app = typer.Typer(help="Encrypted keystores and signer addresses.", no_args_is_help=True)


@app.callback()
def _logs_to_stderr() -> None:
    """Log lines (warnings only) go to stderr: stdout carries just the answer, for scripts."""
    from autometa.logs import configure_logging

    configure_logging("WARNING")


PasswordFile = Annotated[
    Path | None, typer.Option("--password-file", help="file holding the password (default: a prompt)")
]
JsonOut = Annotated[bool, typer.Option("--json", help="print JSON")]
KeystorePath = Annotated[Path, typer.Argument(help="where to write the keystore (refuses an existing file)")]
Iterations = Annotated[
    int | None, typer.Option("--scrypt-n", help="scrypt cost N (default: eth_account's 262144)", min=1024)
]


def _new_password(password_file: Path | None) -> str:
    if password_file is not None:
        try:
            password = password_file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise CliError(f"cannot read {password_file}: {exc.strerror}") from None
    else:
        if not sys.stdin.isatty():
            raise CliError("no terminal to prompt for a password: pass --password-file")
        password = getpass.getpass("New keystore password: ")
        if getpass.getpass("Repeat it: ") != password:
            raise CliError("the passwords differ")
    if len(password) < 8:
        raise CliError("the password must be at least 8 characters")
    return password


def _write(path: Path, key: bytes | str, password_file: Path | None, iterations: int | None, as_json: bool) -> None:
    from autometa.chain.signers import LocalKeySigner, SignerConfigError, write_keystore

    if path.exists():
        raise CliError(f"{path} already exists: keystores are never overwritten")
    try:
        signer = LocalKeySigner.from_key(key)
        write_keystore(path, signer, _new_password(password_file), iterations=iterations)
    except SignerConfigError as exc:
        raise CliError(str(exc)) from None
    data = {"address": signer.address, "path": str(path), "spec": f"keystore:{path}"}
    emit(
        data,
        as_json,
        lambda: console.print(
            f"{signer.address}  written to {path} (mode 0600)\n"
            f"use it with: WORKER_SIGNER=keystore:{path}  (and KEYSTORE_PASSWORD_FILE, or a prompt at start)",
            highlight=False,
        ),
    )


@app.command("new")
@handle_errors
def new_command(
    path: KeystorePath,
    password_file: PasswordFile = None,
    iterations: Iterations = None,
    as_json: JsonOut = False,
) -> None:
    """Create a new random key, encrypted in a keystore file; prints its address."""
    _write(path, os.urandom(32), password_file, iterations, as_json)


@app.command("import")
@handle_errors
def import_command(
    path: KeystorePath,
    key_file: Annotated[
        Path | None, typer.Option("--key-file", help="file holding the hex private key (default: a prompt)")
    ] = None,
    password_file: PasswordFile = None,
    iterations: Iterations = None,
    as_json: JsonOut = False,
) -> None:
    """Encrypt an existing private key (e.g. the seed's WORKER_PRIVATE_KEY) into a keystore file."""
    if key_file is not None:
        try:
            key = key_file.read_text().strip()
        except OSError as exc:
            raise CliError(f"cannot read {key_file}: {exc.strerror}") from None
    else:
        if not sys.stdin.isatty():
            raise CliError("no terminal to prompt for the key: pass --key-file")
        key = getpass.getpass("Private key (hex): ").strip()
    _write(path, key, password_file, iterations, as_json)


def describe_signer(spec_text: str, password_file: Path | None, decrypt: bool) -> dict[str, Any]:
    """What a spec (or a bare keystore path) names, without ever printing a secret."""
    from autometa.chain.signers import (
        SignerConfigError,
        SignerSpec,
        build_signer,
        keystore_address,
        parse_spec,
    )
    from autometa.config import load_settings

    try:
        spec = SignerSpec("keystore", spec_text) if Path(spec_text).is_file() else parse_spec(spec_text)
    except ValueError as exc:
        raise CliError(f"not a keystore file or signer spec: {exc}") from None
    out: dict[str, Any] = {"kind": spec.kind, "where": spec.describe()}
    try:
        if spec.kind == "keystore" and not decrypt:
            address = keystore_address(Path(spec.target))
            if address is not None:
                return {**out, "address": address, "checked": False}
        settings = load_settings()
        signer = build_signer(
            spec,
            password_file=password_file or settings.KEYSTORE_PASSWORD_FILE,
            kms_region=settings.KMS_REGION,
            kms_endpoint_url=settings.KMS_ENDPOINT_URL,
            kms_retry_for=settings.KMS_RETRY_SECONDS,
        )
    except SignerConfigError as exc:
        raise CliError(str(exc)) from None
    return {**out, "address": signer.address, "checked": True}


@app.command("export-address")
@handle_errors
def export_address_command(
    signer: Annotated[str, typer.Argument(help="a keystore path or a signer spec (keystore:…, kms:…)")],
    password_file: PasswordFile = None,
) -> None:
    """Print only the address (what the admin allow-lists with `setExecutor`)."""
    typer.echo(describe_signer(signer, password_file, decrypt=False)["address"])


@app.command("show")
@handle_errors
def show_command(
    signer: Annotated[
        str | None, typer.Argument(help="a keystore path or spec (default: every configured role)")
    ] = None,
    password_file: PasswordFile = None,
    decrypt: Annotated[bool, typer.Option("--check", help="decrypt keystores to prove the password works")] = False,
    as_json: JsonOut = False,
) -> None:
    """Describe a signer: kind, where the key is, address. Never prints a key or a password."""
    from autometa.chain.signers import ROLE_SETTINGS, configured_spec
    from autometa.config import load_settings

    rows: list[dict[str, Any]] = []
    if signer is not None:
        rows.append(describe_signer(signer, password_file, decrypt))
    else:
        settings = load_settings()
        for role in ROLE_SETTINGS:
            found = configured_spec(settings, role)
            if found is None:
                rows.append({"role": role, "kind": None})
                continue
            name, spec = found
            if spec.kind == "key":
                from autometa.chain.signers import LocalKeySigner

                address = LocalKeySigner.from_key(spec.target).address
                rows.append(
                    {
                        "role": role,
                        "setting": name,
                        "kind": "key",
                        "where": spec.describe(),
                        "address": address,
                        "checked": True,
                    }
                )
                continue
            spec_text = f"{spec.kind}:{spec.target}"
            if spec.password_file is not None:
                spec_text += f"?password_file={spec.password_file}"
            rows.append({"role": role, "setting": name, **describe_signer(spec_text, password_file, decrypt)})

    def human() -> None:
        for row in rows:
            head = f"{row['role']:8} " if "role" in row else ""
            if row.get("kind") is None:
                console.print(f"{head}not configured", highlight=False)
                continue
            checked = "" if row.get("checked") else " (address as the keystore states it; --check to decrypt)"
            console.print(f"{head}{row['address']}  {row['where']}{checked}", highlight=False)

    emit(rows if signer is None else rows[0], as_json, human)
