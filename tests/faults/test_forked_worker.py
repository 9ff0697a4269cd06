"""`autometa worker --fork`: one process per role, forked from a parent that loaded them all, which
then becomes a bare supervisor. The roles do the work exactly once between them, a role killed
with SIGKILL is started again and the work goes on exactly once, SIGTERM stops the whole group,
and a bad start fails at once with the setting named instead of forking anything."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from autometa.chain.accounts import dev_account
from autometa.chain.anvil import free_port

from ..conftest import fresh_pg_database
from ..support.procs import children, rss_mb
from ..support.stack import AUTOMETA, distributed_stack
from .helpers import Scenario, wait_until

pytestmark = [pytest.mark.slow]

ROLES = ("scheduler", "executor", "api")


def _parse(text: str, event: str) -> list[tuple[str, int]]:
    found = []
    for line in text.splitlines():
        if event in line:
            fields = dict(re.findall(r"(\w+)=(\S+)", line))
            found.append((fields["role"], int(fields["pid"])))
    return found


def test_forked_roles_share_the_work_restart_after_a_kill_and_stop_together() -> None:
    port = free_port()
    with fresh_pg_database() as db, distributed_stack(db, executors=(5,)) as stack:
        stack.interval_mining(1)
        proc = stack.start_worker("worker", 5, ROLES, fork=True, API_PORT=str(port), API_HOST="127.0.0.1")
        stack.wait_started("worker", marker="executor.started", timeout=120)
        stack.wait_for("the scheduler to load", lambda: stack.scheduler_loaded("worker"), timeout=120)
        forked = dict(_parse(stack.log_text("worker"), "role.forked"))
        assert sorted(forked) == sorted(ROLES)
        # The parent became the supervisor: a bare interpreter over exactly the three roles.
        assert b"autometa.supervisor" in Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        assert set(children(proc.pid)) == set(forked.values())
        assert rss_mb(proc.pid) < 40, "the supervisor should not hold the roles' libraries"
        assert all(rss_mb(pid) > 80 for pid in forked.values())

        sc = Scenario(stack)
        owners = [dev_account(3), dev_account(8)]
        sc.wave(owners, 4, lead_s=4)
        sc.settle(timeout=90)
        sc.audit().assert_ok()
        wait_until("the API", lambda: httpx.get(f"http://127.0.0.1:{port}/api/utils/healthz").status_code == 200, 60)

        os.kill(forked["executor"], signal.SIGKILL)
        wait_until("the executor to be started again", lambda: _parse(stack.log_text("worker"), "role.restarted"), 60)
        [(role, new_pid)] = _parse(stack.log_text("worker"), "role.restarted")
        assert role == "executor" and new_pid != forked["executor"]
        assert set(children(proc.pid)) == {forked["scheduler"], forked["api"], new_pid}
        wait_until("the new executor", lambda: stack.log_text("worker").count("executor.started") == 2, 90)
        sc.wave(owners, 4, lead_s=4)
        sc.settle(timeout=90)
        sc.audit().assert_ok()  # every due run exactly once, before and after the kill

        roles = set(children(proc.pid))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, stack.log_tail("worker")
        assert not any(Path(f"/proc/{pid}").exists() and rss_mb(pid) for pid in roles)
        assert "roles.stopping" in stack.log_text("worker")


def _worker(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOMETA_", "PYTEST_", "REDIS_", "MOONBASE_"))}
    settings = {"NETWORK": "dev", "DATA_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/a.db", **env}
    return subprocess.run(
        [str(AUTOMETA), "worker", "--fork"], env=base | settings, capture_output=True, text=True, timeout=60
    )


def test_fork_without_redis_is_refused_naming_the_setting(tmp_path: Path) -> None:
    done = _worker(tmp_path)
    assert done.returncode == 2, done.stderr
    assert "REDIS_URL" in done.stderr
    assert "Traceback" not in done.stderr


def test_fork_against_an_unreachable_chain_fails_at_start_with_nothing_left_running(tmp_path: Path) -> None:
    done = _worker(tmp_path, REDIS_URL="redis://127.0.0.1:6379/15", MOONBASE_RPC=f"http://127.0.0.1:{free_port()}")
    assert done.returncode == 1, done.stderr
    assert "cannot reach" in done.stderr
    assert "role.forked" not in done.stdout + done.stderr
