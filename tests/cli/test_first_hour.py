"""What a new user met in the first hour (issue 13), each against a real dev chain: the CLI finds
the running stack by itself, signs as a dev role, takes names and flags, refuses an unknown
token like the relayer, says what is wrong in coin, and never wraps what a script parses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autometa.chain.accounts import dev_role
from autometa.chain.contracts import autometa
from autometa.cli.main import app
from autometa.embedded.instance import AlreadyRunning, InstanceLock, running_instance

AUTOMETA = str(Path(sys.executable).parent / "autometa")
RECIPIENT = dev_role("recipient").address


@pytest.fixture
def data_dir(dev_chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:  # type: ignore[no-untyped-def]
    """A data directory with a running stack recorded in it (the lock `up` holds), and nothing
    in the environment pointing at the chain: the CLI must find it by itself."""
    monkeypatch.chdir(tmp_path)
    for name in ("MOONBASE_RPC", "RPC_URL", "REGISTRY_ADDRESS", "USER_PRIVATE_KEY", "CHAIN_ID"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "data"
    monkeypatch.setenv("DATA_DIR", str(folder))
    dev_chain.deployment.save(folder)
    lock = InstanceLock(folder, "up").acquire()
    lock.update(rpc_url=dev_chain.url, api_url="http://127.0.0.1:1")
    yield folder
    lock.release()


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_the_cli_finds_the_running_stack_and_says_which(data_dir: Path, dev_chain) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run("escrow", "balance", RECIPIENT, "--json")
    assert code == 0, err
    assert json.loads(out)["address"] == RECIPIENT
    assert f"using `autometa up` in {data_dir}" in err and dev_chain.url in err and f"pid {os.getpid()}" in err


def test_nothing_running_says_how_to_start(dev_chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MOONBASE_RPC", raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "empty"))
    code, _, err = run("escrow", "balance", RECIPIENT)
    assert code == 1
    assert "no `autometa up` is running in" in err and "Traceback" not in err


def test_a_second_up_on_the_same_data_dir_is_refused(data_dir: Path) -> None:
    with pytest.raises(AlreadyRunning, match=rf"already running \(pid {os.getpid()}, API at http://127.0.0.1:1"):
        InstanceLock(data_dir, "up").acquire()
    proc = subprocess.run([AUTOMETA, "up", "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert f"`autometa up` is already running (pid {os.getpid()}, API at http://127.0.0.1:1" in proc.stderr
    assert running_instance(data_dir) is not None  # the live instance's record is untouched


def test_as_role_signs_with_the_dev_account_on_the_dev_chain_only(data_dir: Path, dev_chain, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run("escrow", "deposit", "1.5", "--as", "user", "--json")
    assert code == 0, err
    assert json.loads(out)["deposited_wei"] == 15 * 10**17
    core = autometa(dev_chain.w3, dev_chain.deployment.address)
    assert core.functions.balanceOf(dev_role("user").address).call() == 15 * 10**17
    code, _, err = run("escrow", "deposit", "1", "--as", "nobody")
    assert code == 2 and "not a dev role" in err
    code, _, err = run("escrow", "deposit", "1")
    assert code == 2 and "--as user" in err  # the missing key names the way out


def test_create_with_names_and_with_flags(data_dir: Path) -> None:
    body = {
        "trigger_type": "price",
        "trigger_data": {"token": "ethereum", "comparator": "below", "price_usd": 3200},
        "action_type": "native",
        "action_data": {"to": RECIPIENT, "amount_wei": "1000"},
    }
    code, out, err = run("workflow", "create", json.dumps(body), "--as", "user", "--json")
    assert code == 0, err
    first = json.loads(out)["workflow_id"]
    code, out, err = run(
        "workflow",
        "create",
        "--token",
        "ethereum",
        "--above",
        "4000",
        "--send",
        "0.25",
        "--to",
        RECIPIENT,
        "--as",
        "user",
        "--json",
    )
    assert code == 0, err
    second = json.loads(out)["workflow_id"]
    code, out, err = run("workflow", "create", "--every", "60", "--send", "0.01", "--to", RECIPIENT, "--as", "user")
    assert code == 0, err
    code, out, _ = run("workflow", "list", "--as", "user", "--json")
    assert "E+" not in out  # JSON too: 3200, not 3.2E+3
    rows = {r["id"]: r for r in json.loads(out)}
    assert rows[first]["spec"]["trigger_data"]["comparator"] == 0
    assert rows[second]["spec"]["trigger_data"]["comparator"] == 1
    assert rows[second]["spec"]["action_data"]["amount_wei"] == str(25 * 10**16)
    # what a person reads: no dict reprs, no exponent, no 0/4294967295
    code, out, _ = run("workflow", "list", "--as", "user")
    assert code == 0
    assert f"when ethereum is above $4000 → send 0.25 coin to {RECIPIENT}; 0 of 1 run(s)" in out
    assert "every 60 s → send 0.01 coin" in out and "no limit" in out
    assert "{" not in out and "E+" not in out and "4294967295" not in out
    code, out, _ = run("workflow", "show", str(first))
    assert "when ethereum is below $3200" in out and "owner" in out
    code, _, err = run("workflow", "create", "--token", "ethereum", "--send", "1", "--to", RECIPIENT, "--as", "user")
    assert code == 2 and "--below / --above" in err


def test_an_unknown_token_is_refused_on_the_direct_path_like_the_relayer(data_dir: Path) -> None:
    body = {
        "trigger_type": 2,
        "trigger_data": {"token": "dogecoinx", "comparator": 0, "price_usd": 1},
        "action_type": 0,
        "action_data": {"to": RECIPIENT, "amount_wei": "1000"},
    }
    code, _, err = run("workflow", "create", json.dumps(body), "--as", "user")
    assert code == 2
    assert "trigger_data.token: unknown token 'dogecoinx'; supported: ethereum" in err


def test_a_wallet_too_poor_to_deposit_is_told_what_it_holds(data_dir: Path, dev_chain) -> None:  # type: ignore[no-untyped-def]
    code, _, err = run("escrow", "deposit", "1000000", "--as", "user")
    assert code == 1
    assert "holds 10000" in err and "depositing 1000000 coin needs" in err and "RPC endpoint" not in err


def test_contract_errors_read_as_sentences(data_dir: Path) -> None:
    code, out, err = run(
        "workflow", "create", "--every", "60", "--send", "0.01", "--to", RECIPIENT, "--as", "user", "--json"
    )
    wid = json.loads(out)["workflow_id"]
    assert run("workflow", "pause", str(wid), "--as", "user")[0] == 0
    code, _, err = run("workflow", "pause", str(wid), "--as", "user")
    assert code == 1
    assert f"workflow {wid}: cannot pause a paused workflow" in err and "InvalidTransition" not in err


def test_a_dead_relayer_is_one_line(data_dir: Path) -> None:
    code, out, err = run("workflow", "pause", "1", "--as", "user", "--relayer", "http://127.0.0.1:9")
    assert code == 1
    assert err.startswith("error: cannot reach http://127.0.0.1:9") and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err + out


def test_output_off_a_terminal_never_wraps_hashes(data_dir: Path) -> None:
    env = {**os.environ, "COLUMNS": "40", "TERM": "dumb"}
    proc = subprocess.run(
        [AUTOMETA, "escrow", "deposit", "0.1", "--as", "user"], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == 0, proc.stderr
    (line,) = [line for line in proc.stdout.splitlines() if "tx 0x" in line]
    tx = line.split("tx ")[1].rstrip(")")
    assert len(tx) == 66 and int(tx, 16)
