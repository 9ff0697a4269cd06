"""The user CLI against a real dev chain: escrow, workflows, prices; bad input exits non-zero."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autometa.chain.accounts import dev_role
from autometa.cli.main import app

SEED_BODY = {
    "user_address": "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
    "trigger_type": 2,
    "trigger_data": {"token": "ethereum", "comparator": 0, "price_usd": 3200.0},
    "action_type": 0,
    "action_data": {"to": "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65", "amount_wei": "1000000000000000000"},
}


@pytest.fixture
def cli(dev_chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("MOONBASE_RPC", dev_chain.url)
    monkeypatch.setenv("REGISTRY_ADDRESS", dev_chain.deployment.address)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("USER_PRIVATE_KEY", dev_role("user").key.hex())
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(app, list(args))
        return result.exit_code, result.stdout, result.stderr

    return run


def test_escrow_deposit_withdraw_balance(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("escrow", "deposit", "2", "--json")
    assert code == 0, out
    assert json.loads(out)["balance_wei"] == 2 * 10**18
    code, out, _ = cli("escrow", "withdraw", "0.5", "--json")
    assert code == 0
    assert json.loads(out)["balance_wei"] == 15 * 10**17
    code, out, _ = cli("escrow", "balance", "--json")
    assert json.loads(out)["balance_wei"] == 15 * 10**17


def test_workflow_lifecycle(cli) -> None:  # type: ignore[no-untyped-def]
    code, out, err = cli("workflow", "create", json.dumps(SEED_BODY), "--json")
    assert code == 0, err
    wid = json.loads(out)["workflow_id"]
    code, out, _ = cli("workflow", "list", "--json")
    rows = json.loads(out)
    assert [r["id"] for r in rows] == [wid]
    assert rows[0]["spec"]["trigger_data"]["token"] == "ethereum"
    for command, status in (("pause", "paused"), ("resume", "active"), ("cancel", "cancelled")):
        code, out, err = cli("workflow", command, str(wid), "--json")
        assert code == 0, err
        assert json.loads(out)["status"] == status
    code, out, _ = cli("workflow", "show", str(wid), "--json")
    assert json.loads(out)["status"] == "cancelled"


def test_a_state_workflow_on_a_chainlink_feed_is_created_and_shown(cli, dev_chain) -> None:  # type: ignore[no-untyped-def]
    """README's feed example: latestRoundData() word 1 (the answer), int256, below $1,800."""
    feed = dev_chain.deployment.feeds["ethereum"]
    state = {"target": feed, "calldata": "0xfeaf968c", "word": 1, "read_as": "int256", "comparator": "<"}
    body = {**SEED_BODY, "trigger_type": "state", "trigger_data": {**state, "threshold": "180000000000"}}
    code, out, err = cli("workflow", "create", json.dumps(body), "--json")
    assert code == 0, err
    wid = json.loads(out)["workflow_id"]
    code, out, _ = cli("workflow", "show", str(wid), "--json")
    shown = json.loads(out)["spec"]
    assert shown["trigger_type"] in (3, "state") and shown["trigger_data"]["threshold"] == 180_000_000_000
    assert {k: shown["trigger_data"][k] for k in state} == state
    code, _, err = cli("workflow", "create", json.dumps({**body, "trigger_data": {**state, "threshold": "x"}}))
    assert code == 2 and "threshold" in err, err


@pytest.mark.parametrize("kind", ["cron", "state"])
def test_show_and_list_describe_every_kind_in_its_own_words(cli, dev_chain, kind: str) -> None:  # type: ignore[no-untyped-def]
    """`workflow show` / `list` without --json read a CRON or STATE workflow as itself (they took
    every kind but time and interval for a price and failed with a KeyError traceback)."""
    feed = dev_chain.deployment.feeds["ethereum"]
    data, needle = {
        "cron": ({"spec": "0 9 * * 1-5"}, "cron '0 9 * * 1-5' (UTC)"),
        "state": (
            {
                "target": feed,
                "calldata": "0xfeaf968c",
                "word": 1,
                "read_as": "int256",
                "comparator": "<",
                "threshold": 1,
            },
            "0xfeaf968c[1] as int256 <",
        ),
    }[kind]
    body = {**SEED_BODY, "trigger_type": kind, "trigger_data": data}
    code, out, err = cli("workflow", "create", json.dumps(body), "--json")
    assert code == 0, err
    wid = json.loads(out)["workflow_id"]
    code, out, err = cli("workflow", "show", str(wid))
    assert code == 0 and needle in out, (out, err)
    code, out, err = cli("workflow", "list")
    assert code == 0 and needle in out, (out, err)


def test_a_cron_workflow_from_flags(cli) -> None:  # type: ignore[no-untyped-def]
    to = SEED_BODY["action_data"]["to"]  # type: ignore[index]
    code, out, err = cli("workflow", "create", "--cron", "*/5 * * * 1-5", "--send", "0.001", "--to", to, "--json")
    assert code == 0, err
    code, out, _ = cli("workflow", "show", str(json.loads(out)["workflow_id"]), "--json")
    shown = json.loads(out)["spec"]
    assert shown["trigger_type"] in (4, "cron") and shown["trigger_data"]["spec"] == "*/5 * * * 1-5"
    code, _, err = cli("workflow", "create", "--cron", "61 * * * *", "--send", "0.001", "--to", to)
    assert code == 2 and "cron minute: 61 is outside 0-59" in err and "Traceback" not in err, err
    code, _, err = cli("workflow", "create", "--cron", "0 9 * * *", "--every", "60", "--send", "1", "--to", to)
    assert code == 2 and "name one trigger" in err, err


def test_price_set_moves_the_feed(cli, dev_chain) -> None:  # type: ignore[no-untyped-def]
    code, out, err = cli("price", "set", "ethereum", "3198.15", "--json")
    assert code == 0, err
    from autometa.chain.contracts import autometa
    from autometa.domain.assets import asset_to_bytes32

    core = autometa(dev_chain.w3, dev_chain.deployment.address)
    ok, price, source = core.functions.currentPrice(asset_to_bytes32("ethereum"), 0).call()
    assert (ok, price, source) == (True, 319815000000, 1)


@pytest.mark.parametrize(
    ("args", "needle", "exit_code"),
    [
        # 2: bad usage or input
        (("workflow", "create", "{not json"), "invalid JSON", 2),
        (("workflow", "create", json.dumps({**SEED_BODY, "trigger_type": 7})), "trigger_type", 2),
        (("escrow", "balance", "0x123"), "address", 2),
        (("escrow", "deposit", "0"), "positive", 2),
        (("escrow", "deposit", "-1"), "amount must be positive (got -1)", 2),
        (("escrow", "withdraw", "-0.5"), "amount must be positive", 2),
        (("price", "set", "ethereum", "abc"), "not a number", 2),
        (("price", "set", "ethereum", "-3"), "price must be positive", 2),
        (("price", "set", "nosuchcoin", "1"), "no price feed", 2),
        (("escrow", "deposit", "1", "--bogus"), "--bogus", 2),
        # 1: the operation failed, with the contract's reason as a sentence, amounts in coin
        (("escrow", "withdraw", "1000"), "holds 0 coin but 1000 coin is needed", 1),
        (("workflow", "pause", "999"), "workflow 999 does not exist", 1),
    ],
)
def test_bad_input_is_a_clear_error(cli, args: tuple[str, ...], needle: str, exit_code: int) -> None:  # type: ignore[no-untyped-def]
    code, out, err = cli(*args)
    assert code == exit_code, (code, err)
    assert needle in err, err
    assert "Traceback" not in err + out
    assert len(err.strip().splitlines()) <= 6 and "InsufficientEscrow(" not in err


def test_missing_key_and_unreachable_rpc(cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("USER_PRIVATE_KEY")
    code, _, err = cli("escrow", "deposit", "1")
    assert code != 0 and "USER_PRIVATE_KEY" in err
    monkeypatch.setenv("MOONBASE_RPC", "http://127.0.0.1:9")
    code, _, err = cli("escrow", "balance", "0x90F79bf6EB2c4f870365E785982E1f101E93b906")
    assert code != 0 and "cannot reach" in err


def test_bad_setting_fails_naming_it(cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("POLL_INTERVAL", "soon")
    code, _, err = cli("escrow", "balance", "0x90F79bf6EB2c4f870365E785982E1f101E93b906")
    assert code == 2 and "POLL_INTERVAL" in err
    monkeypatch.setenv("POLL_INTERVAL", "10")
    secret = "0x" + "ab" * 31  # too short: invalid, and must not be echoed
    monkeypatch.setenv("WORKER_PRIVATE_KEY", secret)
    code, _, err = cli("escrow", "balance", "0x90F79bf6EB2c4f870365E785982E1f101E93b906")
    assert code == 2 and "WORKER_PRIVATE_KEY" in err and secret[4:] not in err
