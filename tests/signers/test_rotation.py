"""Rotating an executor's key under load, as real processes: `autometa scheduler`, the old
`autometa executor` (a plain dev key) and the new one (an encrypted keystore), one Redis queue,
one PostgreSQL store, anvil with 1 s blocks. 300 workflows fall due while `autometa admin
executor rotate` allow-lists the new key, waits for the new executor, drains the old one (SIGTERM)
and removes its key: every run executes exactly once (0 missed, 0 duplicates), the old
executor exits cleanly with nothing pending, and both keys executed part of the load. Allowing
the new key goes through the contract's admin timelock (queued, applied after its delay); the
rotation happens while the 300 runs fall due (5 per second for a minute)."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from autometa.chain.accounts import dev_account, dev_role
from autometa.chain.admin import pending_changes
from autometa.chain.contracts import autometa
from autometa.chain.signers import LocalKeySigner, write_keystore
from tests.conftest import fresh_pg_database
from tests.faults.helpers import Scenario
from tests.signers.conftest import PASSWORD, SCRYPT_N
from tests.support.stack import AUTOMETA, OWNER_KEYS, distributed_stack

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

OLD_KEY = 5


def test_rotation_under_load_misses_and_doubles_nothing(tmp_path: Path) -> None:
    new = LocalKeySigner.from_key(os.urandom(32))
    keystore = write_keystore(tmp_path / "new-executor.json", new, PASSWORD, iterations=SCRYPT_N)
    password_file = tmp_path / "pw"
    password_file.write_text(PASSWORD)
    old = dev_account(OLD_KEY).address
    with fresh_pg_database("autometa_rotate") as db, distributed_stack(db, executors=(OLD_KEY,)) as stack:
        core = autometa(stack.w3, stack.dep.address)
        stack.w3.provider.make_request("anvil_setBalance", [new.address, hex(10**21)])  # type: ignore[arg-type]
        assert not core.functions.accountOf(new.address).call()[2]
        scenario = Scenario(stack)
        owners = [dev_account(i) for i in OWNER_KEYS]
        stack.start_workers({"exec-old": OLD_KEY})
        first = scenario.wave(owners, 30, lead_s=2)  # workflows exist: allowing an executor is timelocked now
        stack.wait_for("the first executions", lambda: bool(stack.executed_logs()), 60)
        stack.killed.add("exec-old")  # it is about to exit on purpose (drained)
        admin_key = "0x" + bytes(dev_role("admin").key).hex()
        rotate = subprocess.Popen(
            [
                str(AUTOMETA),
                "admin",
                "executor",
                "rotate",
                "--new",
                f"keystore:{keystore}",
                "--old",
                old,
                "--old-pid",
                str(stack.procs["exec-old"].pid),
                "--timeout",
                "120",
                "--json",
            ],
            env=stack.env(ADMIN_SIGNER=admin_key),
            cwd=stack.workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        stack.wait_for(
            "the allow-listing to be queued", lambda: any(c.executor == new.address for c in pending_changes(core))
        )
        assert not core.functions.accountOf(new.address).call()[2]  # queued, not applied
        # The timelock's delay passes (anvil's clock jumps); then 300 more workflows fall due over
        # 40 s, while the rotation applies the change, the new executor starts and the old drains.
        delay = int(core.functions.timelockDelay().call())
        stack.w3.provider.make_request("evm_increaseTime", [delay + 1])  # type: ignore[arg-type]
        stack.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        second = scenario.wave(owners, 300, lead_s=8, spread=60)  # 5 due per second for 60 s
        ids = first + second
        stack.wait_for("the new key to be allowed", lambda: bool(core.functions.accountOf(new.address).call()[2]))
        # The old executor is working through the second wave when the new one starts.
        stack.wait_for("the second wave to start", lambda: any(wid in second for wid, _ in stack.run_counts()), 90)
        executed_before = len(stack.run_counts())
        stack.start(
            "exec-new", "executor", WORKER_SIGNER=f"keystore:{keystore}", KEYSTORE_PASSWORD_FILE=str(password_file)
        )
        out, err = rotate.communicate(timeout=240)
        assert rotate.returncode == 0, f"{out}\n{err}\n{stack.log_tails()}"
        steps = json.loads(out.strip().splitlines()[-1])
        assert steps["old"] == old and steps["new"] == new.address and steps["remove_tx"] and steps["apply_tx"]
        assert stack.procs["exec-old"].wait(timeout=30) == 0  # drained and exited by itself
        old_log = stack.log_text("exec-old")
        assert "executor.draining" in old_log and "executor.drained" in old_log
        assert not core.functions.accountOf(old).call()[2]  # the old key can execute nothing more
        assert executed_before < len(ids), "the load was over before the rotation began"

        scenario.settle(timeout=180)
        report = scenario.audit(extra_accounts=[new.address])
        report.assert_ok()
        assert report.missed == 0 and report.duplicates == 0 and report.executed == len(ids)
        by_sender: Counter[str] = Counter()
        for event in stack.executed_logs():
            by_sender[stack.w3.eth.get_transaction(event.transactionHash)["from"]] += 1
        print(f"rotation: runs by key old={by_sender[old]} new={by_sender[new.address]}")
        second_by_sender: Counter[str] = Counter()
        for event in stack.executed_logs():
            if int(event.args.workflowId) in second:
                second_by_sender[stack.w3.eth.get_transaction(event.transactionHash)["from"]] += 1
        print(f"rotation: second wave by key old={second_by_sender[old]} new={second_by_sender[new.address]}")
        assert second_by_sender[old] > 0 and second_by_sender[new.address] > 0, second_by_sender  # under load
        assert sum(by_sender.values()) == len(ids)
        assert stack.w3.eth.get_transaction_count(old, "pending") == stack.w3.eth.get_transaction_count(old, "latest")
