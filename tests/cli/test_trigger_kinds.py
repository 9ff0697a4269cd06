"""`autometa workflow kinds` lists the registry's kinds; `workflow create` refuses an unknown
kind with a message and a non-zero exit, before touching the chain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autometa.chain.accounts import dev_role
from autometa.cli.main import app
from autometa.domain.triggers import all_kinds

ACTION = {"action_type": 0, "action_data": {"to": "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65", "amount_wei": "1"}}


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("USER_PRIVATE_KEY", dev_role("user").key.hex())
    monkeypatch.setenv("MOONBASE_RPC", "http://127.0.0.1:9")  # nothing listens: a chain call would fail

    def invoke(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, list(args))
        return result.exit_code, result.stdout + result.stderr

    return invoke


def test_kinds_are_the_registrys(run) -> None:  # type: ignore[no-untyped-def]
    code, out = run("workflow", "kinds", "--json")
    assert code == 0, out
    listed = json.loads(out)
    assert [(k["name"], k["code"], k["creatable"]) for k in listed] == [
        (k.name, k.code, k.needs_contract is None) for k in all_kinds()
    ]
    code, out = run("workflow", "kinds")
    assert code == 0 and all(k.name in out for k in all_kinds())


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        ({"trigger_type": "hourly", "trigger_data": {"at": 1}}, "unknown trigger kind 'hourly'"),
        ({"trigger_type": 7, "trigger_data": {"at": 1}}, "unknown trigger kind 7"),
    ],
)
def test_create_refuses_unknown_kinds(run, trigger: dict[str, object], message: str) -> None:  # type: ignore[no-untyped-def]
    code, out = run("workflow", "create", json.dumps({**trigger, **ACTION}))
    assert code != 0 and message in " ".join(out.split()), out
