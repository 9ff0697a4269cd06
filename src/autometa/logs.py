"""Structured logging for every process: console lines for people, JSON lines for machines
(LOG_JSON=true). A last-line-of-defence processor masks anything shaped like a private key."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_KEY_RE = re.compile(r"0x[0-9a-fA-F]{64}(?![0-9a-fA-F])")
_SECRET_FIELDS = {"private_key", "key", "secret", "password", "api_key", "signature_key"}


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return _KEY_RE.sub("0x<redacted>", value)
    return value


def redact_secrets(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask 32-byte hex strings that are not known to be hashes, and fields named like secrets.
    Transaction and block hashes are logged under names ending in `hash`, which are kept."""
    for name, value in list(event.items()):
        if name == "key" and isinstance(value, str) and value.startswith("autometa:"):
            continue  # a Redis key's name, not a secret
        if name in _SECRET_FIELDS:
            event[name] = "<redacted>"
        elif not name.endswith("hash") and name != "tx":
            event[name] = _redact(value)
    return event


class _RedactingFilter(logging.Filter):
    """The same masking for records of stdlib loggers (uvicorn, web3, alembic, …), which do not
    pass through structlog's processors: the message and any traceback are rendered and masked
    here, before a handler formats them."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg, record.args = _redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            # The masked traceback becomes part of the message, and the exception object is
            # dropped: a renderer must never format it again (rich would even show locals).
            record.msg = f"{record.msg}\n{_redact(record.exc_text)}"
            record.exc_info, record.exc_text = None, None
        if record.stack_info:
            record.stack_info = _redact(record.stack_info)
        return True


_REDACTING_FILTER = _RedactingFilter()


class _StderrLogger:
    """Writes to whatever `sys.stderr` is *now* (not the stream at configuration time), so a
    replaced or closed stream never breaks logging."""

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warn = warning = err = error = critical = exception = fatal = msg


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The one stdlib handler: the current `sys.stderr`, like `_StderrLogger`."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _stdlib_event(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A stdlib record's logger name as a field (`logger=uvicorn.error`), like structlog's own."""
    record = event.get("_record")
    if record is not None and "logger" not in event:
        event["logger"] = record.name
    return event


def configure_logging(level: str = "INFO", json: bool = False) -> None:
    """One format for every line: structlog's own, and the stdlib's (uvicorn, taskiq, web3, …)
    rendered by the same processors through one root handler. Calling it again reconfigures
    (never a second handler, so never a line twice)."""
    numeric = getattr(logging, level, logging.INFO)
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    handler = _StderrHandler()
    handler.setLevel(numeric)  # records that other loggers let through (uvicorn sets its own levels)
    handler.addFilter(_REDACTING_FILTER)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, _stdlib_event],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, redact_secrets, renderer],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "taskiq"):
        logger = logging.getLogger(name)  # no handlers of their own: everything goes to the root's
        for old in list(logger.handlers):
            logger.removeHandler(old)
        logger.propagate = True
    for noisy in ("httpx", "httpcore", "alembic", "web3", "websockets", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, numeric))
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            redact_secrets,  # after the traceback is rendered: an exception's message may hold a key
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=lambda *args: _StderrLogger(),
        cache_logger_on_first_use=False,
    )
