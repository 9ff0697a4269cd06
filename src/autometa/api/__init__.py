"""The HTTP API: relayer for signed intents, shared price cache, history and statistics.

`create_app(settings)` builds it; `serve(settings, ...)` runs it with uvicorn."""

from autometa.api.app import create_app
from autometa.api.services import Services

__all__ = ["Services", "create_app"]
