"""One error format for every 4xx/5xx: ``{"error": {"code", "message", "details"}}``.

Domain exceptions carry a stable machine-readable code; they are mapped to HTTP status here, once
(``DOMAIN_STATUS``), and answered by one exception handler.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import psycopg
import sqlalchemy.exc
from asgi_correlation_id.context import correlation_id
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.openapi_index import allowed_methods
from api.types import FIELD_ERROR_CODES
from core.logging import get_logger
from domain.errors import (
    Conflict,
    DomainError,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    ValidationFailed,
)
from domain.exports.errors import TooManyExports
from domain.identity.throttle import AccountThrottled
from domain.media.errors import (
    FileTooLarge,
    ImageTooLarge,
    InvalidImage,
    StorageUnavailable,
    UnsupportedFileType,
)
from domain.payment.errors import ProviderRejected, ProviderUnavailable

log = get_logger(__name__)


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. `validation_error`")
    message: str
    details: Any | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class ApiError(Exception):
    """An error with a status and a stable code, raised by routes and dependencies."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorResponse(error=ErrorBody(code=code, message=message, details=details))
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


def _status_code(status: int) -> str:
    return _STATUS_CODES.get(status, HTTPStatus(status).phrase.lower().replace(" ", "_"))


async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names only the first matching route's methods; list every route's.
        headers["Allow"] = ", ".join(allowed_methods(request.app, request.url.path))
    return error_response(exc.status_code, _status_code(exc.status_code), message, headers=headers)


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    details = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg"), "type": err.get("type")}
        for err in exc.errors()
    ]
    codes = {d["type"] for d in details}
    code = codes.pop() if len(codes) == 1 and codes <= FIELD_ERROR_CODES else "validation_error"
    return error_response(422, code, "Request validation failed", details)


@dataclass(frozen=True)
class HttpStatus:
    status: int
    retry_after_s: int | None = None  # sent as Retry-After; an error's own retry_after_s wins


# Every domain error's HTTP status, here and nowhere else: routers let domain errors propagate.
# A class not listed takes its nearest listed base's entry (InvalidState is a Conflict); none: 400.
DOMAIN_STATUS: dict[type[DomainError], HttpStatus] = {
    NotFound: HttpStatus(404),
    Conflict: HttpStatus(409),
    PermissionDenied: HttpStatus(403),
    Unauthenticated: HttpStatus(401),
    ValidationFailed: HttpStatus(422),
    FileTooLarge: HttpStatus(413),
    ImageTooLarge: HttpStatus(413),
    UnsupportedFileType: HttpStatus(415),
    InvalidImage: HttpStatus(415),
    AccountThrottled: HttpStatus(429),  # Retry-After: the account's own wait
    TooManyExports: HttpStatus(429, retry_after_s=10),
    ProviderRejected: HttpStatus(502),  # the provider refused a request of ours: not the caller's
    ProviderUnavailable: HttpStatus(503, retry_after_s=5),
    StorageUnavailable: HttpStatus(503, retry_after_s=1),
}
_UNMAPPED = HttpStatus(400)


def http_status_of(exc: DomainError) -> HttpStatus:
    return next(
        (DOMAIN_STATUS[cls] for cls in type(exc).__mro__ if cls in DOMAIN_STATUS), _UNMAPPED
    )


async def _domain_error(_: Request, exc: DomainError) -> JSONResponse:
    mapped = http_status_of(exc)
    headers: dict[str, str] = {}
    if mapped.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="aqstream"'
    retry_after = getattr(exc, "retry_after_s", None) or mapped.retry_after_s
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return error_response(mapped.status, exc.code, exc.message, exc.details, headers or None)


async def _database_busy(request: Request, exc: Exception) -> JSONResponse:
    """A statement or lock timeout, an exhausted connection pool, a lost connection: transient.
    Shed the request with 503 and Retry-After (nothing was committed), not a 500."""
    cause = getattr(exc, "orig", None) or exc
    log.warning(
        "database_unavailable",
        error=type(cause).__name__,
        detail=str(cause).splitlines()[0] if str(cause) else "",
        path=request.url.path,
    )
    return error_response(
        503,
        "temporarily_unavailable",
        "The service is busy; retry shortly",
        headers={"Retry-After": "1"},
    )


async def _unhandled(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled_error", error=type(exc).__name__)
    # Answered outside the request-id middleware (Starlette's ServerErrorMiddleware): say it here.
    cid = correlation_id.get()
    return error_response(
        500,
        "internal_error",
        "Internal server error",
        headers={"X-Request-ID": cid} if cid else None,
    )


class KeepConnectionAfterError:
    """The outermost layer of the app. Starlette's ServerErrorMiddleware answers an unhandled error
    with ``_unhandled``'s 500 and then re-raises it for the server to log; uvicorn then closes the
    connection, so a keep-alive client lost it after every 500 (and the error was logged twice).
    Once a whole response has been sent, the error ends here (``_unhandled`` has logged it). Only
    a response cut short is re-raised: that connection cannot carry another request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        complete = False

        async def watched(message: Message) -> None:
            nonlocal complete
            await send(message)
            if message["type"] == "http.response.body":
                complete = not message.get("more_body", False)
            elif message["type"] in ("http.response.pathsend", "http.response.zerocopysend"):
                complete = True

        try:
            await self.app(scope, receive, watched)
        except Exception:
            if not complete:
                raise


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    # Registered by class, so they are answered inside the app (the catch-all below is Starlette's
    # server-error path; KeepConnectionAfterError keeps the connection after it).
    for transient in (
        sqlalchemy.exc.OperationalError,  # statement/lock timeout, lost connection (wrapped)
        sqlalchemy.exc.TimeoutError,  # no pooled connection free in time
        psycopg.OperationalError,  # the same, from a statement sent with the commit
    ):
        app.add_exception_handler(transient, _database_busy)
    app.add_exception_handler(Exception, _unhandled)


# Declared on every route so the OpenAPI schema documents the error body.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Malformed request (e.g. an undecodable body)"},
    422: {"model": ErrorResponse, "description": "Validation error"},
    429: {"model": ErrorResponse, "description": "Rate limited (see Retry-After)"},
    500: {"model": ErrorResponse, "description": "Internal error"},
    503: {
        "model": ErrorResponse,
        "description": "Temporarily unavailable (overloaded or a dependency is down); "
        "see Retry-After",
    },
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for a route's error statuses, all in the common format."""
    return {
        status: {"model": ErrorResponse, "description": HTTPStatus(status).phrase}
        for status in statuses
    }
