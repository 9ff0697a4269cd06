"""Each role in its own process, forked from one interpreter that has already imported them all.

Why: three separate `autometa scheduler`, `executor` and `api` processes each import the same
~120 MB of libraries (web3, SQLAlchemy, FastAPI, …). Children forked after the imports share
those pages with each other copy-on-write, and `gc.freeze()` keeps the collector from writing to
(and so copying) them: the roles keep their own process — a crash or a stuck event loop in one
does not stop the others — for much less memory than three (README "Idle cost"). Once the
children run, the parent execs into `autometa.supervisor`, a bare interpreter that restarts a
role that exits and passes signals on: an idle parent holding the preloaded heap would keep
every page the children have copied a fourth time."""

from __future__ import annotations

import gc
import importlib
import json
import os
import pkgutil
import signal
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

import structlog

from autometa.supervisor import SIGNALS, die_with_parent, exit_code

log = structlog.get_logger("autometa.runtime")


def preload() -> int:
    """Import every Autometa module (and so every library a role uses) before forking, then
    freeze what exists into the collector's permanent generation. As the `gc` documentation
    advises for fork without exec, the collector is off while importing (a collection leaves
    freed holes in pages the children would then fill, copying them) and each child turns it
    back on (`_child_exit`). Returns the number of modules loaded."""
    import autometa

    gc.disable()
    for module in pkgutil.walk_packages(autometa.__path__, "autometa."):
        importlib.import_module(module.name)
    gc.freeze()
    return len(sys.modules)


def in_child(fn: Callable[[], int]) -> int:
    """Run `fn` in a forked child and wait for it: its exit code. For work whose connections
    must not outlive it in the parent (web3 shares one HTTP session per endpoint per process)."""
    pid = os.fork()
    if pid == 0:
        _child_exit(fn)
    return exit_code(os.waitpid(pid, 0)[1])


def fork_roles(
    roles: Sequence[str], run_role: Callable[[str], int], restart_command: list[str], log_json: bool
) -> NoReturn:
    """Fork one child per role (each runs `run_role(role)` and exits with its result), then
    exec this process into the supervisor, which starts a role that exits again with
    `restart_command + ["--role", role]`. Signals stay blocked from before the first fork until
    the supervisor waits for them, so none is lost in between."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    pids: dict[str, int] = {}
    for role in roles:
        pid = os.fork()
        if pid == 0:

            def run(role: str = role) -> int:
                signal.pthread_sigmask(signal.SIG_SETMASK, previous)
                structlog.contextvars.bind_contextvars(process=role)
                return run_role(role)

            _child_exit(run)
        pids[role] = pid
        log.info("role.forked", role=role, pid=pid)
    plan = {"pids": pids, "command": restart_command, "log_json": log_json}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "autometa.supervisor", json.dumps(plan)])


def _child_exit(fn: Callable[[], int]) -> NoReturn:
    """In a child: run `fn`, then leave with its code, never returning into the parent's code."""
    code = 1
    try:
        die_with_parent()
        gc.enable()
        code = fn()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 (a child must never return into the parent's code)
        log.exception("child.crashed")
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
