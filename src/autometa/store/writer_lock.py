"""A queue for SQLite's single writer: threads wait on a lock, processes on ``flock`` of a file
beside the database, and only the holder issues ``BEGIN IMMEDIATE``.

Why: SQLite's busy handler polls with growing sleeps (1, 2, 5, … up to 100 ms, see
``sqliteDefaultBusyCallback`` in sqlite's main.c) and is not fair, so a writer that commits
many small transactions (the indexer, the notification outbox's producer) can keep another
(a delivery worker) waiting for hundreds of milliseconds, seconds under CPU load: measured
with bench/notify.py, BEGIN IMMEDIATE took up to 0.56–1.9 s at 900 events/s. A blocked
``flock`` is woken by the kernel as soon as the holder lets go, and a process that dies
holding it loses it with its file descriptors.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine

try:
    import fcntl
except ImportError:  # not a POSIX system: SQLite's own busy waiting only
    fcntl = None  # type: ignore[assignment]

_LOCKS: dict[str, WriterLock] = {}
_GUARD = threading.Lock()


class WriterLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._threads = threading.RLock()
        self._fd: int | None = None
        self._pid: int | None = None
        self._depth = 0  # nested write sessions of the holding thread

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._threads:
            if self._depth == 0:
                fcntl.flock(self._file(), fcntl.LOCK_EX)
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _file(self) -> int:
        # A forked child shares its parent's open file description, and with it the flock: reopen.
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        return self._fd


def writer_lock(engine: Engine | None) -> contextlib.AbstractContextManager[None]:
    """The lock of ``engine``'s SQLite file; nothing for PostgreSQL or an in-memory database."""
    if fcntl is None or engine is None or engine.dialect.name != "sqlite":
        return contextlib.nullcontext()
    if engine.url.database in (None, "", ":memory:"):
        return contextlib.nullcontext()
    path = str(Path(str(engine.url.database)).expanduser().resolve()) + "-writer.lock"
    with _GUARD:
        lock = _LOCKS.get(path)
        if lock is None:
            lock = _LOCKS[path] = WriterLock(Path(path))
    return lock.held()
