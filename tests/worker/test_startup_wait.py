"""A worker started while its database or Redis restarts waits for it instead of exiting (the
chaos bench's replacement executor, started during the PostgreSQL restart, exited 1)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy.exc import OperationalError

from autometa.runtime import chain as runtime_chain
from autometa.store import Store


async def test_a_refused_database_is_waited_for_then_used(tmp_path) -> None:  # type: ignore[no-untyped-def]
    attempts: list[float] = []

    def open_when_up(url: str) -> Store:
        attempts.append(time.monotonic())
        if len(attempts) < 3:  # the first two attempts meet a database that refuses connections
            return Store.open("postgresql+psycopg://autometa@127.0.0.1:9/none", migrate=False).engine.connect()  # type: ignore[return-value]
        return Store.open(url)

    store = await runtime_chain._while_unreachable("database", _thread, open_when_up, f"sqlite:///{tmp_path}/s.db")
    try:
        assert len(attempts) == 3 and store.workflows.count() == 0
    finally:
        store.close()


async def test_other_errors_are_not_retried() -> None:
    calls = 0

    async def broken() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("not a connection problem")

    with pytest.raises(ValueError, match="not a connection problem"):
        await runtime_chain._while_unreachable("database", broken)
    assert calls == 1


async def test_it_gives_up_after_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime_chain, "STARTUP_WAIT_S", 1.0)

    def refused() -> None:
        Store.open("postgresql+psycopg://autometa@127.0.0.1:9/none", migrate=False).engine.connect()

    started = time.monotonic()
    with pytest.raises(OperationalError):
        await runtime_chain._while_unreachable("database", _thread, refused)
    assert time.monotonic() - started < 10


async def _thread(fn, *args):  # type: ignore[no-untyped-def]
    import asyncio

    return await asyncio.to_thread(fn, *args)
