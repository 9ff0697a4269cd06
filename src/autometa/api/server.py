"""Running the API with uvicorn: standalone (`autometa api`) or inside `autometa up`'s event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import uvicorn

from autometa.api.app import create_app
from autometa.api.services import Services
from autometa.config import Settings
from autometa.prices import SharedPriceCache
from autometa.store import Store


class Server(uvicorn.Server):
    """uvicorn, telling the app when shutdown starts: uvicorn waits for open responses to finish
    and never tells a streaming one, so the live feed (`routes/stream.py`) ends on this event."""

    async def shutdown(self, sockets: list[Any] | None = None) -> None:
        stopping = getattr(getattr(self.config.app, "state", None), "stopping", None)
        if stopping is not None:
            stopping.set()
        await super().shutdown(sockets)


class EmbeddedServer(Server):
    """A uvicorn server that leaves signal handling to its host (`autometa up` owns Ctrl-C)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


_EmbeddedServer = EmbeddedServer  # the name `autometa.embedded.api` imports


def uvicorn_config(settings: Settings, app: Any, **overrides: Any) -> uvicorn.Config:
    options: dict[str, Any] = {
        "host": settings.API_HOST,
        "port": settings.API_PORT,
        "log_level": settings.LOG_LEVEL.lower(),
        "access_log": False,
        "server_header": False,
        "proxy_headers": False,
        "log_config": None,  # uvicorn's lines go through our one handler and format (`logs.py`)
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)


def run(settings: Settings, **overrides: Any) -> None:
    """Serve until SIGINT/SIGTERM (the `autometa api` command)."""
    Server(uvicorn_config(settings, create_app(settings), **overrides)).run()


async def run_api(
    settings: Settings, store: Store, stop: asyncio.Event, *, prices: SharedPriceCache | None = None
) -> None:
    """`autometa up`'s API runner: serve on API_HOST:API_PORT with `up`'s store (and, if given,
    its price cache) until `stop`. Bind extra arguments with functools.partial."""
    services = await Services.from_settings(settings, store=store, prices=prices)
    server = EmbeddedServer(uvicorn_config(settings, create_app(settings, services=services)))
    task = asyncio.create_task(server.serve())
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([task, stopper], return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True
        stopper.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await services.aclose()
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]
    if not stop.is_set() and server.started is False:
        raise RuntimeError(f"the API could not listen on {settings.API_HOST}:{settings.API_PORT}")
