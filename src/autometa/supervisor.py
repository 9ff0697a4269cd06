"""What watches the roles of `autometa worker --fork` once they run: the preloaded parent execs
into this module (see autometa.runtime.forked), so the process left behind is a bare interpreter
(~10 MB) instead of a copy of everything its children loaded — pages each child has already
copied would otherwise be held a fourth time by an idle parent. Standard library only, on
purpose: importing anything of ours or a library would bring that memory back.

SIGINT/SIGTERM are passed to every role, and the supervisor exits once they have (SIGKILL after
a grace period). A role that exits on its own is started again after a back-off (1 s, doubling
to 60 s, back to 1 s once a role has run for a minute) as a fresh `autometa worker --role R`
process: a restarted role no longer shares its parent's pages. A usage error (exit 2) is not
retried: every role is stopped and the supervisor exits 2.

Invoked as `python -m autometa.supervisor PLAN_JSON` with SIGCHLD, SIGINT and SIGTERM blocked
(the mask survives exec, so no signal sent in between is lost); PLAN_JSON holds the children's
pids by role, the command that starts one role, and whether logs are JSON."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

EXIT_USAGE = 2
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 60.0
HEALTHY_AFTER_S = 60.0
STOP_GRACE_S = 30.0
SIGNALS = (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM)
_LEVELS = {"info": "info", "warning": "warning", "error": "error"}


@dataclass
class Role:
    """One role's process: its pid (0: not running), when it started, when to start it again."""

    name: str
    pid: int
    started: float
    backoff: float = FIRST_BACKOFF_S
    restart_at: float | None = None


def exit_code(status: int) -> int:
    """A wait status as a shell shows it: the exit code, or 128 + the signal that ended it."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


class Supervisor:
    """Keeps `roles` running until a signal; `command(role)` is the argv that starts one again."""

    def __init__(self, pids: dict[str, int], command: list[str], log_json: bool = False) -> None:
        now = time.monotonic()
        self.roles = {name: Role(name, pid, now) for name, pid in pids.items()}
        self.command = command
        self.log_json = log_json
        self.stopping = False
        self.kill_at = 0.0
        self.code = 0

    def run(self) -> int:
        """Supervise until every role has exited after a stop: the exit code of the whole."""
        self.reap()  # a role that ended before the exec left its SIGCHLD pending and a zombie
        while self.live() or (not self.stopping and any(r.restart_at is not None for r in self.roles.values())):
            timeout = self.next_wait()
            info = signal.sigtimedwait(SIGNALS, timeout) if timeout is not None else signal.sigwaitinfo(SIGNALS)
            if info is not None and info.si_signo in (signal.SIGINT, signal.SIGTERM):
                self.stop(f"signal {signal.Signals(info.si_signo).name}")
            self.reap()
            self.restart_due()
            if self.stopping and self.live() and time.monotonic() >= self.kill_at:
                self.log("warning", "roles.killed", after_s=STOP_GRACE_S)
                self.signal_all(signal.SIGKILL)
        return self.code

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            role = next((r for r in self.roles.values() if r.pid == pid), None)
            if role is not None:
                role.pid = 0
                self.exited(role, exit_code(status))

    def exited(self, role: Role, code: int) -> None:
        if self.stopping:
            self.log("info", "role.stopped", role=role.name, code=code)
            if code not in (0, 128 + signal.SIGTERM, 128 + signal.SIGINT) and not self.code:
                self.code = code
            return
        if code == EXIT_USAGE:
            self.log(
                "error", "role.refused", role=role.name, code=code, hint="fix the setting it names, then start again"
            )
            self.code = code
            self.stop(f"{role.name} exited with a usage error")
            return
        ran = time.monotonic() - role.started
        if ran >= HEALTHY_AFTER_S:
            role.backoff = FIRST_BACKOFF_S
        role.restart_at = time.monotonic() + role.backoff
        self.log("warning", "role.exited", role=role.name, code=code, ran_s=round(ran, 1), restart_in_s=role.backoff)
        role.backoff = min(MAX_BACKOFF_S, role.backoff * 2)

    def restart_due(self) -> None:
        now = time.monotonic()
        for role in self.roles.values():
            if not self.stopping and role.restart_at is not None and role.restart_at <= now:
                role.pid, role.started, role.restart_at = self.spawn(role.name), now, None
                self.log("info", "role.restarted", role=role.name, pid=role.pid)

    def spawn(self, name: str) -> int:
        """Start `autometa worker --role NAME` with no signal blocked, dying with this process."""
        pid = os.fork()
        if pid == 0:
            try:
                die_with_parent()
                signal.pthread_sigmask(signal.SIG_SETMASK, [])
                argv = [*self.command, "--role", name]
                os.execv(argv[0], argv)
            finally:
                os._exit(127)
        return pid

    def stop(self, why: str) -> None:
        if not self.stopping:
            self.log("info", "roles.stopping", why=why)
            self.stopping = True
            self.kill_at = time.monotonic() + STOP_GRACE_S
            for role in self.roles.values():
                role.restart_at = None
        self.signal_all(signal.SIGTERM)

    def signal_all(self, sig: int) -> None:
        for role in self.roles.values():
            if role.pid:
                try:
                    os.kill(role.pid, sig)
                except ProcessLookupError:
                    pass

    def live(self) -> bool:
        return any(r.pid for r in self.roles.values())

    def next_wait(self) -> float | None:
        """Seconds until the next restart or the stop's kill deadline; None: wait for a signal."""
        moments = [r.restart_at for r in self.roles.values() if r.restart_at is not None]
        if self.stopping:
            moments = [self.kill_at]
        return max(0.0, min(moments) - time.monotonic()) if moments else None

    def log(self, level: str, event: str, **fields: Any) -> None:
        """One line in the shape of the roles' own (console, or JSON with LOG_JSON)."""
        stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        if self.log_json:
            line = json.dumps(
                {"event": event, "level": level, "timestamp": stamp, "logger": "autometa.supervisor", **fields}
            )
        else:
            pairs = " ".join(f"{k}={v}" for k, v in fields.items())
            line = f"{stamp} [{_LEVELS.get(level, level):<9}] {event:<30} {pairs}"
        print(line, file=sys.stderr, flush=True)


def die_with_parent() -> None:
    """On Linux, have the kernel send this process SIGTERM when its parent dies (even by kill -9),
    so no role runs on unsupervised. Elsewhere a no-op."""
    if sys.platform != "linux":
        return
    import contextlib
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)


def main(argv: list[str]) -> int:
    plan = json.loads(argv[0])
    pids = {str(k): int(v) for k, v in plan["pids"].items()}
    return Supervisor(pids, [str(a) for a in plan["command"]], bool(plan.get("log_json"))).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
