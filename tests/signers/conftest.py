"""Fixtures for the signer tests: a moto KMS server (one per session, over HTTP), a fault proxy
in front of it per test, KMS keys created through the real API, and signers of each kind."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from web3 import AsyncWeb3

from autometa.chain.anvil import Anvil
from autometa.chain.signers import AwsKmsSigner, LocalKeySigner, Signer, load_keystore, write_keystore
from autometa.chain.web3 import connect_async
from tests.support.kms import AWS_ENV, KmsProxy, KmsServer

PASSWORD = "correct horse battery staple"
SCRYPT_N = 2**12  # fast keystores for tests; `keys new` uses eth_account's default (2**18)
KINDS = ["key", "keystore", "kms"]


@pytest.fixture(scope="session")
def kms_server() -> Iterator[KmsServer]:
    server = KmsServer().start()
    yield server
    server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    return AWS_ENV


@pytest.fixture
def kms_proxy(kms_server: KmsServer) -> Iterator[KmsProxy]:
    proxy = KmsProxy(kms_server.url).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def kms_admin(kms_server: KmsServer, aws_env: dict[str, str]) -> Any:
    """A boto3 KMS client straight to moto: what an AWS admin does in the console."""
    return boto3.client("kms", endpoint_url=kms_server.url, region_name=aws_env["AWS_REGION"])


@pytest.fixture
def kms_key(kms_admin: Any) -> Callable[..., str]:
    def make(spec: str = "ECC_SECG_P256K1", usage: str = "SIGN_VERIFY") -> str:
        return str(kms_admin.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]["Arn"])

    return make


@pytest.fixture
def keystore_file(tmp_path: Path) -> Callable[[], tuple[Path, Path, LocalKeySigner]]:
    """A new keystore (path, password file, the signer it holds)."""
    count = 0

    def make() -> tuple[Path, Path, LocalKeySigner]:
        nonlocal count
        count += 1
        signer = LocalKeySigner.from_key(bytes([count]) * 32)
        path = write_keystore(tmp_path / f"key{count}.json", signer, PASSWORD, iterations=SCRYPT_N)
        password_file = tmp_path / f"pw{count}"
        password_file.write_text(PASSWORD + "\n")
        return path, password_file, signer

    return make


@pytest.fixture
def make_signer(
    kms_key: Callable[..., str], kms_proxy: KmsProxy, keystore_file: Callable[[], tuple[Path, Path, LocalKeySigner]]
) -> Callable[..., Signer]:
    """A signer of the given kind, built the way the services build it (KMS through the proxy)."""

    def make(kind: str, **kms: Any) -> Signer:
        if kind == "key":
            return LocalKeySigner.from_key("0x" + "5a" * 32)
        if kind == "keystore":
            path, password_file, _ = keystore_file()
            return load_keystore(path, password_file.read_text().strip())
        kms.setdefault("backoff", (0.1, 1.0))
        return AwsKmsSigner.connect(kms_key(), endpoint_url=kms_proxy.url, **kms)

    return make


@pytest.fixture
def anvil() -> Iterator[Anvil]:
    with Anvil(accounts=3) as node:
        yield node


@pytest.fixture
async def w3(anvil: Anvil) -> AsyncIterator[AsyncWeb3[Any]]:
    w3 = connect_async(anvil.url)
    yield w3
    await w3.provider.disconnect()  # type: ignore[attr-defined]


async def fund(w3: AsyncWeb3[Any], address: str, wei: int = 10**21) -> None:
    reply = await w3.provider.make_request("anvil_setBalance", [address, hex(wei)])  # type: ignore[arg-type]
    assert "error" not in reply, reply


def secrets_of(signer_kind: str, *values: str) -> list[str]:
    """Spellings of a secret to look for in text (hex with and without 0x, any case)."""
    out: list[str] = []
    for v in values:
        bare = v[2:] if v.startswith("0x") else v
        out += [bare.lower(), bare.upper(), json.dumps(v)[1:-1]]
    return [s for s in out if s]
