"""The fork-then-supervise path of `autometa worker --fork` (autometa.runtime.forked and
autometa.supervisor) with stand-in roles, so each supervision rule is checked in seconds: a role
that exits is started again with the restart command, a usage error stops the group, SIGTERM
reaches every role, and roles die with a killed supervisor. Each scenario runs in its own Python
process (the supervisor reaps any child of its process, so never inside pytest)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# A parent that forks two stand-in roles and becomes the supervisor, as `worker --fork` does.
# Each role writes "<role> <pid>" to DIR/started and then does what BEHAVIOUR[role] says.
PARENT = textwrap.dedent(
    """
    import os, sys, time, signal
    from pathlib import Path
    from autometa.runtime.forked import fork_roles

    out, behaviour = Path(sys.argv[1]), dict(a.split("=") for a in sys.argv[2:])

    def run_role(role):
        with open(out / "started", "a") as f:
            f.write(f"{role} {os.getpid()}\\n")
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        what = behaviour[role]
        if what.startswith("exit"):
            return int(what[4:])
        while True:
            time.sleep(0.1)

    restart = [sys.executable, "-c", RESTARTED, str(out)]
    fork_roles(sorted(behaviour), run_role, restart, log_json=True)
    """
)
# What the supervisor starts again: records itself, then runs until SIGTERM.
RESTARTED = textwrap.dedent(
    """
    import os, sys, time, signal
    role = sys.argv[sys.argv.index("--role") + 1]
    with open(os.path.join(sys.argv[1], "started"), "a") as f:
        f.write(f"{role} {os.getpid()} restarted\\n")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        time.sleep(0.1)
    """
)


def _start(tmp_path: Path, **behaviour: str) -> subprocess.Popen[str]:
    code = f"RESTARTED = {RESTARTED!r}\n{PARENT}"
    args = [sys.executable, "-c", code, str(tmp_path), *(f"{k}={v}" for k, v in behaviour.items())]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)


def _started(tmp_path: Path) -> list[list[str]]:
    path = tmp_path / "started"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def _wait(what: str, check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _events(stderr: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")


def test_a_role_that_exits_is_started_again_and_sigterm_stops_every_role(tmp_path: Path) -> None:
    proc = _start(tmp_path, a="exit1", b="run")
    _wait("the restarted role", lambda: any(len(r) == 3 for r in _started(tmp_path)))
    rows = _started(tmp_path)
    assert sorted(r[0] for r in rows) == ["a", "a", "b"]
    assert [r for r in rows if r[0] == "a"][-1][2] == "restarted"
    pids = [int(r[1]) for r in rows if r[0] == "b" or len(r) == 3]
    assert all(_alive(p) for p in pids)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
    assert not any(_alive(p) for p in pids)
    events = [e["event"] for e in _events(stderr)]
    assert events.count("role.exited") == 1 and "role.restarted" in events and "roles.stopping" in events
    assert events.count("role.stopped") == 2


def test_a_usage_error_stops_the_group_instead_of_restarting(tmp_path: Path) -> None:
    proc = _start(tmp_path, a="exit2", b="run")
    _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 2, stderr
    rows = _started(tmp_path)
    assert sorted(r[0] for r in rows) == ["a", "b"]  # nothing started again
    assert not _alive(int(next(r[1] for r in rows if r[0] == "b")))
    refused = [e for e in _events(stderr) if e["event"] == "role.refused"]
    assert refused and refused[0]["role"] == "a" and "setting" in str(refused[0]["hint"])


def test_the_roles_die_with_a_killed_supervisor(tmp_path: Path) -> None:
    proc = _start(tmp_path, a="run", b="run")
    _wait("both roles", lambda: len(_started(tmp_path)) == 2)
    pids = [int(r[1]) for r in _started(tmp_path)]
    cmdline = Path(f"/proc/{proc.pid}/cmdline")
    _wait("the exec into the supervisor", lambda: b"autometa.supervisor" in cmdline.read_bytes())
    proc.kill()
    proc.communicate(timeout=20)
    _wait("the orphaned roles to stop", lambda: not any(_alive(p) for p in pids))
