"""README's commands, literally (issue 13 item 7): the two-terminal recipe is run line by line
against a real `autometa up` in a fresh directory, the way a new user would; every other command
line in README's shell blocks names the test that runs it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autometa.chain.anvil import free_port

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
VENV = Path(sys.executable).parent.parent

# Long-running or remote commands README shows, and the test that runs each.
COVERED_ELSEWHERE = {
    "./scripts/run": "tests/embedded/test_up_and_demo.py (`autometa up`, which it runs)",
    "./scripts/test": "this suite",
    ".venv/bin/autometa devnet > .env &": "tests/embedded/test_devnet_env.py",
    ".venv/bin/autometa api &": "tests/embedded/test_distributed_flow.py",
    ".venv/bin/autometa scheduler &": "tests/embedded/test_distributed_flow.py (two of them)",
    ".venv/bin/autometa executor &": "tests/embedded/test_distributed_flow.py",
    "autometa deploy --rpc-url https://sepolia.base.org": "needs the public network; deploy itself: tests/cli",
    "autometa doctor --rpc-url https://sepolia.base.org": "tests/cli/test_doctor.py (anvil, provider stand-in)",
    '.venv/bin/autometa workflow create \'{"trigger_type": "state"': "tests/cli/test_user_commands.py",
}


def shell_blocks(text: str) -> list[list[str]]:
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    joined = [re.sub(r"\\\n\s*", " ", block) for block in blocks]  # continuation lines
    return [[line.strip() for line in block.splitlines() if line.strip()] for block in joined]


def recipe() -> list[str]:
    section = README.split("### Try it", 1)[1].split("\n### ", 1)[0]
    (block,) = shell_blocks(section)
    return block


def test_every_autometa_line_in_readme_is_run_somewhere() -> None:
    lines = [line for block in shell_blocks(README) for line in block]
    commands = [line for line in lines if re.match(r"(\./scripts/|(\.venv/bin/)?autometa )", line)]
    ours = set(recipe())
    for line in commands:
        if line in ours:
            continue
        assert any(line.startswith(prefix) for prefix in COVERED_ELSEWHERE), f"README line run by no test: {line}"


@pytest.mark.slow
def test_the_two_terminal_recipe_runs_as_written(tmp_path: Path) -> None:
    (tmp_path / ".venv").symlink_to(VENV)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MOONBASE_RPC", "RPC_URL", "REGISTRY_ADDRESS", "USER_PRIVATE_KEY", "DATA_DIR", "CHAIN_ID")
    }
    env.update(API_PORT=str(free_port()), COLUMNS="60")
    up = subprocess.Popen(
        [".venv/bin/autometa", "up"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:  # ready when the CLI finds it by itself
            assert up.poll() is None, up.stdout.read() if up.stdout else ""
            assert time.monotonic() < deadline, "autometa up did not come up"
            if (tmp_path / ".autometa" / "instance.lock").exists():
                probe = subprocess.run(
                    [".venv/bin/autometa", "escrow", "balance", "--as", "recipient"],
                    cwd=tmp_path,
                    env=env,
                    capture_output=True,
                    text=True,
                )
                if probe.returncode == 0:
                    break
            time.sleep(0.5)
        outputs = []
        for line in recipe():
            done = subprocess.run(
                ["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
            )
            assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
            assert "Traceback" not in done.stderr
            outputs.append(done.stdout)
        assert json.loads(outputs[-2])["status"] == "cancelled"  # `workflow cancel 2 … --json`
        # what README says next: the price move made workflow 1 fire
        end = time.monotonic() + 60
        while True:
            shown = subprocess.run(
                [".venv/bin/autometa", "workflow", "show", "1", "--json"],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
            )
            row = json.loads(shown.stdout)
            if row["status"] == "completed":
                break
            assert time.monotonic() < end, row
            time.sleep(1)
        assert row["run_count"] == 1
    finally:
        os.killpg(os.getpgid(up.pid), signal.SIGINT)
        out, _ = up.communicate(timeout=30)
    assert up.returncode == 0, out
