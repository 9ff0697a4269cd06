"""`autometa keys new|import|export-address|show`: keystores the signers open, addresses without
secrets, and one clear line + a non-zero exit for every mistake."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from autometa.chain.signers import load_keystore
from autometa.cli.main import app
from tests.signers.conftest import PASSWORD

KEY = "0x" + "3c" * 32


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)
    for name in ("WORKER_SIGNER", "RELAYER_SIGNER", "ADMIN_SIGNER", "WORKER_PRIVATE_KEY", "RELAYER_PRIVATE_KEY"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "pw").write_text(PASSWORD + "\n")
    (tmp_path / "key").write_text(KEY + "\n")
    runner = CliRunner()

    def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        result = runner.invoke(app, list(args), env=env)
        return result.exit_code, result.stdout, result.stderr

    return run


def test_new_writes_a_private_keystore_the_signer_opens(cli: Any, tmp_path: Path) -> None:
    code, out, err = cli("keys", "new", "w.json", "--password-file", "pw", "--scrypt-n", "4096", "--json")
    assert code == 0, err
    made = json.loads(out)
    path = tmp_path / "w.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_keystore(path, PASSWORD).address == made["address"]
    assert made["spec"] == f"keystore:{path.name}"
    code, out, _ = cli("keys", "export-address", "w.json")
    assert (code, out.strip()) == (0, made["address"])
    code, out, err = cli("keys", "new", "w.json", "--password-file", "pw")
    assert code == 1 and "already exists" in err  # never overwritten
    code, out, err = cli("keys", "new", "other.json")  # no terminal, no password file
    assert code == 1 and "--password-file" in err


def test_import_then_show_with_and_without_the_password(cli: Any, tmp_path: Path) -> None:
    code, out, err = cli(
        "keys", "import", "seed.json", "--key-file", "key", "--password-file", "pw", "--scrypt-n", "4096", "--json"
    )
    assert code == 0, err
    address = json.loads(out)["address"]
    code, out, err = cli("keys", "show", "seed.json", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["address"] == address and shown["checked"] is False
    code, out, err = cli("keys", "show", f"keystore:seed.json?password_file={tmp_path / 'pw'}", "--check", "--json")
    assert code == 0 and json.loads(out)["checked"] is True and json.loads(out)["address"] == address
    (tmp_path / "bad").write_text("not it")
    code, out, err = cli("keys", "show", "seed.json", "--check", "--password-file", "bad")
    assert code == 1 and "wrong password for keystore seed.json" in err
    for text in (out, err):
        assert KEY[2:] not in text and PASSWORD not in text and "not it" not in text


def test_show_lists_every_configured_role(cli: Any, tmp_path: Path) -> None:
    cli("keys", "import", "w.json", "--key-file", "key", "--password-file", "pw", "--scrypt-n", "4096")
    env = {
        "WORKER_SIGNER": "keystore:w.json",
        "KEYSTORE_PASSWORD_FILE": str(tmp_path / "pw"),
        "RELAYER_PRIVATE_KEY": "0x" + "11" * 32,
    }
    code, out, err = cli("keys", "show", "--json", "--check", env=env)
    assert code == 0, err
    rows = {row["role"]: row for row in json.loads(out)}
    assert rows["worker"]["setting"] == "WORKER_SIGNER" and rows["worker"]["checked"] is True
    assert rows["relayer"]["setting"] == "RELAYER_PRIVATE_KEY" and rows["relayer"]["where"] == "a plain private key"
    assert rows["admin"]["kind"] is None
    assert "11" * 32 not in out and KEY[2:] not in out


def test_bad_input_is_one_clear_line(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "short").write_text("0x1234")
    code, _, err = cli("keys", "import", "x.json", "--key-file", "short", "--password-file", "pw")
    assert code == 1 and "not a valid 32-byte hex private key" in err and "1234" not in err
    (tmp_path / "tiny").write_text("abc")
    code, _, err = cli("keys", "new", "y.json", "--password-file", "tiny")
    assert code == 1 and "at least 8 characters" in err
    code, _, err = cli("keys", "export-address", "vault:whatever")
    assert code == 1 and "not a keystore file or signer spec" in err
    code, _, err = cli("keys", "show", "missing.json")
    assert code == 1 and "not a keystore file or signer spec" in err
    code, _, err = cli("keys", "show", "keystore:missing.json", "--check", "--password-file", "pw")
    assert code == 1 and "keystore missing.json does not exist" in err
