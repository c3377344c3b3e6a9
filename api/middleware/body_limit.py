"""Request bodies over their route's limit are refused with 413 before they are buffered.

A declared Content-Length over the limit is answered at once, before a byte of the body is
read. A body without one (chunked) is counted as it streams in: the chunk that passes the limit
raises ``BodyTooLarge`` from ``receive``, so whoever is reading (the idempotency fingerprint,
FastAPI's body parsing, the media upload's parser) stops there, and the 413 is answered. Runs
before idempotency, which would otherwise spool the whole body to fingerprint it.

Starlette's own ``RequestBodyLimitMiddleware`` (``FastAPI(max_body_size=...)``) is not used: its
413 is plain text, and a route's own limit only applies once routing has reached the route,
after our middleware has read the body.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once the body passes its limit. An HTTPException, so FastAPI's
    body parsing lets it through; the app answers it with ``body_too_large``."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body exceeds the limit of {limit} bytes")
        self.limit = limit


def body_too_large(limit: int) -> Response:
    # The rest of the body is not read, so the connection cannot carry another request.
    return error_response(
        413,
        "payload_too_large",
        f"The request body exceeds the limit of {limit} bytes",
        details={"limit_bytes": limit},
        headers={"Connection": "close"},
    )


async def answer_body_too_large(_: Request, exc: Exception) -> Response:
    """Exception handler of ``BodyTooLarge`` raised inside the app."""
    assert isinstance(exc, BodyTooLarge)
    return body_too_large(exc.limit)


class BodyLimitMiddleware:
    """``default`` bytes for every request; ``paths`` maps exact paths (uploads) to their own."""

    def __init__(self, app: ASGIApp, *, default: int, paths: Mapping[str, int]) -> None:
        self.app = app
        self.default = default
        self.paths = dict(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.paths.get(scope["path"], self.default)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await body_too_large(limit)(scope, receive, send)
            return

        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            if received > limit:  # a reader that goes on after the refusal
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if started:
                raise
            await body_too_large(limit)(scope, receive, send)
