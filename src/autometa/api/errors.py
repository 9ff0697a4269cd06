"""Errors as HTTP answers: every failure a client can cause is a 4xx naming the field, every
failure of a dependency (chain, database, Redis) is a 503 with the reason, and only a bug is a
500. One JSON shape for all of them (`schemas.ErrorOut`)."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from autometa.chain.revert import TransactionReverted
from autometa.chain.sender import SigningFailed
from autometa.chain.sentences import human
from autometa.domain.triggers import known_names

log = structlog.get_logger("autometa.api")


class ApiError(Exception):
    """A failure with a status, a stable code and a sentence for the client."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        field: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message
        self.field, self.details, self.headers = field, details, headers

    def response(self) -> JSONResponse:
        return error_response(self.status, self.error, self.message, self.field, self.details, self.headers)


class Unavailable(ApiError):
    """A dependency is down or not configured: 503 with the reason."""

    def __init__(self, what: str, message: str) -> None:
        super().__init__(503, f"{what}_unavailable", message)


def invalid(field: str, message: str, status: int = 422) -> ApiError:
    return ApiError(status, "validation_error", f"{field}: {message}", field=field)


def error_response(
    status: int,
    error: str,
    message: str,
    field: str | None = None,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"error": error, "message": message, "field": field}
    if details is not None:
        body["details"] = details
    return JSONResponse(body, status_code=status, headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    """`("body", "trigger_data", "price", "at")` → `trigger_data.at` (drop the union's tag)."""
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    tags = {*known_names(), "native", "erc20", "call"}
    parts = [p for p in parts if p not in tags and not p.startswith("function-")]
    return ".".join(parts) or "body"


def _error_field(error: Any) -> str:
    field = _field(error.get("loc", ()))
    # a nested boolean refused by schemas._refuse_booleans: its path within the field
    path = str((error.get("ctx") or {}).get("path") or "") if error.get("type") == "bool_type" else ""
    if path:
        field = path if field == "body" else f"{field}.{path}"
    return field


def validation_details(errors: Any) -> list[dict[str, Any]]:
    """Field, message and type of each error; never the input (it may be huge or binary)."""
    return [
        {"field": _error_field(e), "message": str(e.get("msg", "")), "type": str(e.get("type", ""))} for e in errors
    ]


# Custom errors of the contract → (status, field) for a relayer simulation that reverts.
_REVERT_STATUS: dict[str, tuple[int, str | None]] = {
    "InvalidSignature": (401, "signature"),
    "SignatureExpired": (400, "deadline"),
    "InvalidAccountNonce": (409, "nonce"),
    "InsufficientEscrow": (402, "max_relayer_fee_wei"),
    "InvalidSpec": (422, None),
    "UnknownWorkflow": (404, None),
    "NotWorkflowOwner": (403, "user_address"),
    "InvalidTransition": (409, None),
    "ExecutionIsPaused": (503, None),
    "UnknownAsset": (422, "trigger_data.token"),  # an asset the admin did not register on-chain
    "NonCanonicalCalldata": (400, None),
}


def revert_error(exc: TransactionReverted) -> ApiError:
    status, field = _REVERT_STATUS.get(exc.error_name, (400, None))
    if exc.error_name == "InvalidSpec":
        field = str(exc.args_by_name.get("field", "")) or None
    details = {"reason": exc.reason.message, "name": exc.error_name}
    return ApiError(
        status, "contract_refused", f"the contract refuses this: {human(exc.reason)}", field=field, details=details
    )


def install_handlers(app: FastAPI) -> None:
    """Map every exception type to its answer (see the module docstring)."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = validation_details(exc.errors())
        if any(d["type"] == "json_invalid" for d in details):
            return error_response(400, "invalid_json", "body: not valid JSON", "body", details)
        first = details[0] if details else {"field": "body", "message": "invalid"}
        return error_response(422, "validation_error", f"{first['field']}: {first['message']}", first["field"], details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
        return error_response(exc.status_code, code, str(exc.detail), headers=headers)

    @app.exception_handler(TransactionReverted)
    async def _reverted(request: Request, exc: TransactionReverted) -> JSONResponse:
        return revert_error(exc).response()

    @app.exception_handler(SigningFailed)
    async def _unsigned(request: Request, exc: SigningFailed) -> JSONResponse:
        # Nothing was signed, journaled or sent; the message names the key (path, KMS id), never a secret.
        log.warning("signer_failed", path=request.url.path, error=str(exc))
        return Unavailable("signer", f"the relayer could not sign, nothing was sent: {str(exc)[:300]}").response()

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        dependency = dependency_failure(exc)
        if dependency is not None:
            log.warning("dependency_failed", path=request.url.path, error=dependency.message)
            return dependency.response()
        log.exception("unhandled_error", path=request.url.path, method=request.method)
        return error_response(500, "internal_error", "internal error (a bug: please report it)")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path. Starlette's 405 names only the first route
    that matched the path, so a path served by two routes (GET and DELETE of one subscription)
    would announce half of what it allows."""
    methods: set[str] = set()
    scope = {**request.scope, "method": "\x00"}  # matches no route fully: every path match is partial
    for route in request.app.routes:
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)


def dependency_failure(exc: BaseException) -> ApiError | None:
    """A 503 for errors of the chain node, the database or Redis; None for anything else."""
    from redis.exceptions import RedisError
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout
    from web3.exceptions import Web3Exception

    if isinstance(exc, RedisError):
        return Unavailable("redis", f"Redis failed: {type(exc).__name__}")
    if isinstance(exc, OperationalError | PoolTimeout):
        return Unavailable("database", f"the database failed: {type(exc).__name__}")
    if isinstance(exc, Web3Exception | ConnectionError | TimeoutError | OSError):
        return Unavailable("chain", f"the chain node failed: {type(exc).__name__}: {str(exc)[:200]}")
    try:
        import aiohttp

        if isinstance(exc, aiohttp.ClientError):
            return Unavailable("chain", f"the chain node is unreachable: {type(exc).__name__}")
    except ImportError:  # pragma: no cover
        pass
    return None
