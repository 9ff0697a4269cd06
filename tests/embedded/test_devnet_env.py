"""`autometa devnet > env` (issue 13 item 13): stdout is a usable env file — every key 0x-prefixed
and on one line, the relayer, admin and user keys, DATABASE_URL/REDIS_URL hints — and the chain
makes blocks on its own, so interval workflows keep running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dotenv import dotenv_values
from eth_account import Account
from web3 import Web3

from autometa.chain.accounts import dev_role

AUTOMETA = str(Path(sys.executable).parent / "autometa")


def test_devnet_env_file_is_complete_and_blocks_keep_coming(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    # PYTHONFAULTHANDLER: a devnet that does not stop is made to print every thread's stack (SIGABRT)
    env = {**os.environ, "DATA_DIR": str(tmp_path / "data"), "COLUMNS": "40", "PYTHONFAULTHANDLER": "1"}
    for name in ("MOONBASE_RPC", "RPC_URL", "REGISTRY_ADDRESS"):
        env.pop(name, None)
    with env_file.open("w") as out:
        # started with SIGINT ignored, as a script's background job (or a test runner's worker,
        # which is how a clean-clone CI run hung here) leaves it: SIGINT must still stop it
        proc = subprocess.Popen(
            [AUTOMETA, "devnet"],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
    try:
        deadline = time.monotonic() + 90
        while "REDIS_URL" not in env_file.read_text():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "devnet printed no env in 90 s"
            time.sleep(0.3)
        text = env_file.read_text()
        values = dotenv_values(env_file)
        for role, name in (
            ("executor", "WORKER_PRIVATE_KEY"),
            ("relayer", "RELAYER_PRIVATE_KEY"),
            ("admin", "DEPLOYER_PRIVATE_KEY"),
            ("user", "USER_PRIVATE_KEY"),
        ):
            key = values[name]
            assert key is not None and key.startswith("0x") and len(key) == 66, name
            assert Account.from_key(key).address == dev_role(role).address
        assert "# DATABASE_URL=postgresql+psycopg://" in text and "# REDIS_URL=redis://" in text
        assert values["NETWORK"] == "dev" and values["REGISTRY_ADDRESS"], text
        assert all("=" in line or line.startswith("#") for line in text.splitlines())  # nothing else on stdout
        w3 = Web3(Web3.HTTPProvider(values["MOONBASE_RPC"]))
        first = w3.eth.block_number
        time.sleep(2.5)
        assert w3.eth.block_number >= first + 2  # interval mining without any transaction
        # the CLI in the same data directory finds this devnet by itself
        cli = subprocess.run(
            [AUTOMETA, "escrow", "balance", dev_role("user").address],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert cli.returncode == 0, cli.stderr
        assert "using `autometa devnet`" in cli.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=90)  # a loaded CI machine: anvil alone is given 10 s to stop
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            _, err = proc.communicate(timeout=30)
            raise AssertionError(f"autometa devnet ignored SIGINT for 90 s; stderr:\n{err[-4000:]}") from None
