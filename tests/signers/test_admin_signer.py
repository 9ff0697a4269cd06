"""Admin commands sign with ADMIN_SIGNER: an encrypted keystore of the admin key works; a KMS key
that is not the contract's owner is refused naming both addresses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from autometa.chain.accounts import dev_role
from autometa.chain.contracts import autometa
from autometa.chain.signers import LocalKeySigner, write_keystore
from autometa.cli.main import app
from tests.signers.conftest import PASSWORD, SCRYPT_N
from tests.support.kms import KmsProxy


def test_admin_commands_sign_with_admin_signer(
    dev_chain: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kms_key: Callable[..., str], kms_proxy: KmsProxy
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("ADMIN_PRIVATE_KEY", "DEPLOYER_PRIVATE_KEY"):
        monkeypatch.delenv(name, raising=False)
    admin = LocalKeySigner(dev_role("admin"))
    path = write_keystore(tmp_path / "admin.json", admin, PASSWORD, iterations=SCRYPT_N)
    (tmp_path / "pw").write_text(PASSWORD)
    base = {"MOONBASE_RPC": dev_chain.url, "REGISTRY_ADDRESS": dev_chain.deployment.address}
    newcomer = "0x00000000000000000000000000000000000c0ffe"
    runner = CliRunner()
    keystore_env = {**base, "ADMIN_SIGNER": f"keystore:{path}", "KEYSTORE_PASSWORD_FILE": str(tmp_path / "pw")}
    ok = runner.invoke(app, ["admin", "executor", "add", newcomer, "--json"], env=keystore_env)
    assert ok.exit_code == 0, ok.stderr
    core = autometa(dev_chain.w3, dev_chain.deployment.address)
    assert core.functions.accountOf(newcomer).call()[2] or "queued" in ok.stdout
    kms_env = {**base, "ADMIN_SIGNER": f"kms:{kms_key()}", "KMS_ENDPOINT_URL": kms_proxy.url}
    refused = runner.invoke(app, ["admin", "executor", "remove", newcomer], env=kms_env)
    said = "".join(refused.stderr.split())  # rich wraps long lines, even inside words
    assert refused.exit_code == 1 and "isnottheadminof" in said and admin.address in said, refused.stderr
