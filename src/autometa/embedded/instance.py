"""Which `autometa up` (or `devnet`) runs in a data directory: a lock held for the process's life
plus what it serves, so a second `up` refuses to start and the CLI finds the running chain by
itself (its port is new on every start)."""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any


@dataclass(frozen=True)
class Instance:
    """What a running `up`/`devnet` serves."""

    pid: int
    kind: str  # "up" or "devnet"
    rpc_url: str | None = None
    api_url: str | None = None

    def describe(self) -> str:
        parts = [f"pid {self.pid}"]
        if self.api_url:
            parts.append(f"API at {self.api_url}")
        if self.rpc_url:
            parts.append(f"chain at {self.rpc_url}")
        return ", ".join(parts)


class AlreadyRunning(Exception):
    """Another process holds the data directory."""

    def __init__(self, data_dir: Path, other: Instance | None) -> None:
        self.other = other
        who = (
            f"`autometa {other.kind}` is already running ({other.describe()})"
            if other
            else ("another process holds the lock")
        )
        super().__init__(f"{who} in {data_dir.resolve()}; stop it first or use another --data-dir")


def lock_path(data_dir: Path) -> Path:
    return data_dir / "instance.lock"


class InstanceLock:
    """An exclusive `flock` on DATA_DIR/instance.lock; the file holds the Instance as JSON. The
    kernel drops the lock when the process dies, so a crash never leaves a stale lock."""

    def __init__(self, data_dir: Path, kind: str) -> None:
        self.data_dir, self.kind = data_dir, kind
        self._file: IO[str] | None = None
        self.instance = Instance(pid=os.getpid(), kind=kind)

    def acquire(self) -> InstanceLock:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path(self.data_dir), "a+")  # noqa: SIM115 - held for the process's life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise AlreadyRunning(self.data_dir, running_instance(self.data_dir, check_lock=False)) from None
        self._file = handle
        self._write()
        return self

    def update(self, **fields: Any) -> None:
        self.instance = Instance(**{**asdict(self.instance), **fields})
        self._write()

    def _write(self) -> None:
        assert self._file is not None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(json.dumps(asdict(self.instance)))
        self._file.flush()

    def release(self) -> None:
        if self._file is not None:
            self._file.seek(0)
            self._file.truncate()
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> InstanceLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def running_instance(data_dir: Path, *, check_lock: bool = True) -> Instance | None:
    """The process serving `data_dir`, or None when none runs (no file, or nobody holds it)."""
    path = lock_path(data_dir)
    if not path.exists():
        return None
    if check_lock:
        with open(path) as probe:
            try:
                fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                pass  # held: someone runs
            else:
                fcntl.flock(probe, fcntl.LOCK_UN)
                return None
    try:
        data = json.loads(path.read_text() or "null")
        return Instance(**data) if isinstance(data, dict) else None
    except (ValueError, TypeError):
        return None
