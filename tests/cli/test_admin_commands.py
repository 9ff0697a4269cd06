"""`autometa admin …` and `autometa workflow invalidate-signatures` against a real dev chain:
changes queue in the contract's timelock once workflows exist, apply after the delay; the
wrong key and bad input exit non-zero with one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autometa.chain.accounts import dev_account, dev_role
from autometa.chain.contracts import autometa
from autometa.chain.deploy import DEV_TIMELOCK_SECONDS, transact
from autometa.cli.main import app

from .test_user_commands import SEED_BODY


@pytest.fixture
def cli(dev_chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MOONBASE_RPC", dev_chain.url)
    monkeypatch.setenv("REGISTRY_ADDRESS", dev_chain.deployment.address)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ADMIN_PRIVATE_KEY", dev_role("admin").key.hex())
    monkeypatch.setenv("USER_PRIVATE_KEY", dev_role("user").key.hex())
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(app, list(args))
        return result.exit_code, result.stdout, result.stderr

    return run


def _is_executor(dev_chain, who: str) -> bool:  # type: ignore[no-untyped-def]
    return bool(autometa(dev_chain.w3, dev_chain.deployment.address).functions.accountOf(who).call()[2])


def test_changes_apply_at_once_before_any_workflow_then_wait(cli, dev_chain) -> None:  # type: ignore[no-untyped-def]
    first, second = dev_account(7).address, dev_account(8).address
    code, out, err = cli("admin", "executor", "add", first, "--json")
    assert code == 0, err
    assert json.loads(out)["status"] == "applied" and _is_executor(dev_chain, first)

    code, _, err = cli("workflow", "create", json.dumps(SEED_BODY), "--json")  # now someone could be harmed
    assert code == 0, err
    code, out, err = cli("admin", "executor", "add", second, "--json")
    assert code == 0, err
    queued = json.loads(out)
    assert queued["status"] == "queued" and 0 < queued["seconds_left"] <= DEV_TIMELOCK_SECONDS
    assert not _is_executor(dev_chain, second)
    code, out, _ = cli("admin", "pending", "--json")
    (change,) = json.loads(out)["changes"]
    assert change["id"] == queued["change_id"] and change["kind"] == "executor" and change["executor"] == second
    assert change["ready"] is False

    code, _, err = cli("admin", "apply", str(queued["change_id"]))
    assert code != 0 and "can be applied in" in " ".join(err.split())
    dev_chain.w3.provider.make_request("evm_increaseTime", [DEV_TIMELOCK_SECONDS + 1])  # type: ignore[arg-type]
    dev_chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    code, out, err = cli("admin", "apply", str(queued["change_id"]), "--json")
    assert code == 0, err
    assert _is_executor(dev_chain, second)
    code, out, _ = cli("admin", "pending", "--json")
    assert json.loads(out)["changes"] == []

    # revoking applies at once; a premium raise waits and can be cancelled
    code, out, err = cli("admin", "executor", "remove", second, "--json")
    assert code == 0 and json.loads(out)["status"] == "applied" and not _is_executor(dev_chain, second)
    code, out, err = cli("admin", "premium", "2000", "--json")
    assert code == 0 and json.loads(out)["status"] == "queued", err
    code, out, err = cli("admin", "cancel", str(json.loads(out)["change_id"]), "--json")
    assert code == 0 and json.loads(out)["status"] == "cancelled", err
    code, out, err = cli("admin", "gas-cap", "1", "--json")  # a cut (default 2 gwei): at once
    assert code == 0 and json.loads(out)["status"] == "applied", err
    core = autometa(dev_chain.w3, dev_chain.deployment.address)
    assert core.functions.maxTipPerGas().call() == 10**9


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("admin", "premium", "99999"), "premium must be between 0 and 5000"),
        (("admin", "executor", "add", "0x123"), "ADDRESS '0x123' must be a 0x-prefixed"),
        (("admin", "feed", "set", "ethereum", "0x" + "12" * 20), "no contract at"),
        (("admin", "feed", "set", "Not An Asset", "none"), "ASSET: asset 'Not An Asset'"),
        (("admin", "gas-cap", "51"), "at most 50 gwei"),
        (("admin", "gas-cap", "lots"), "is not a number"),
        (("admin", "apply", "42"), "no pending change #42"),
        (("admin", "cancel", "42"), "no pending change #42"),
    ],
)
def test_bad_input_is_one_clear_line(cli, args: tuple[str, ...], message: str) -> None:  # type: ignore[no-untyped-def]
    code, out, err = cli(*args)
    assert code != 0 and out == ""
    assert message in " ".join(err.split()), err


def test_only_the_admin_key_may_change_anything(cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ADMIN_PRIVATE_KEY", dev_role("user").key.hex())
    code, _, err = cli("admin", "premium", "100")
    assert code != 0 and "is not the admin" in err


def test_invalidate_signatures_moves_the_nonce_past_them(cli, dev_chain) -> None:  # type: ignore[no-untyped-def]
    user = dev_role("user")
    core = autometa(dev_chain.w3, dev_chain.deployment.address)
    transact(dev_chain.w3, user, core.functions.deposit(), value=10**18)
    code, out, err = cli("workflow", "invalidate-signatures", "--json")
    assert code == 0, err
    moved = json.loads(out)
    assert moved["nonce"] == moved["nonce_before"] + core.functions.NONCE_JUMP().call()
    assert core.functions.nonces(user.address).call() == moved["nonce"]
