"""The HTTP API: relayer for signed intents, shared price cache, history and statistics.

`create_app(settings)` builds it; `serve(settings, ...)` runs it with uvicorn. Both names are
loaded on first use: the typed client imports `autometa.api.schemas` and must not pull in
FastAPI, the store or the server with it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autometa.api.app import create_app
    from autometa.api.services import Services

__all__ = ["Services", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from autometa.api.app import create_app

        return create_app
    if name == "Services":
        from autometa.api.services import Services

        return Services
    raise AttributeError(f"module 'autometa.api' has no attribute {name!r}")
