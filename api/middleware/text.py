"""Text PostgreSQL cannot hold is refused in the request target and headers, before routing.

Bodies are guarded by their schemas (``api.types.RequestModel`` refuses NUL in every string).
The path, query string and headers reach SQL through many routes' parameters and dependencies,
so they are checked here, once for all of them: no NUL anywhere (PostgreSQL text cannot store
it; psycopg raises DataError, which was a 500), and the percent-decoded path and query must be
UTF-8 (an invalid sequence would otherwise be replaced, and the query run on other text).
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import error_response

_WHERE = {"path": "The path", "query": "The query string", "header": "A header"}


def _not_text(raw: bytes) -> bool:
    """Whether percent-decoded ``raw`` is not UTF-8 text PostgreSQL can hold."""
    decoded = unquote_to_bytes(raw)
    if b"\x00" in decoded:
        return True
    try:
        decoded.decode("utf-8")
    except UnicodeDecodeError:  # also encoded surrogates, which UTF-8 forbids
        return True
    return False


def refusal(scope: Scope) -> dict[str, str] | None:
    """Where the request carries text PostgreSQL cannot hold (``details`` of the 400), or None."""
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogatepass")
    if "\x00" in scope["path"] or _not_text(raw_path):
        return {"in": "path"}
    query = scope.get("query_string", b"")
    if query and _not_text(query.replace(b"+", b" ")):
        return {"in": "query"}
    for name, value in scope.get("headers", ()):
        if b"\x00" in value or b"\x00" in name:
            return {"in": "header", "name": name.decode("latin-1").lower()}
    return None


class TextGuardMiddleware:
    """400 ``invalid_characters`` for a NUL or non-UTF-8 text in the path, query or headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = refusal(scope) if scope["type"] == "http" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        response = error_response(
            400,
            "invalid_characters",
            f"{_WHERE[found['in']]} contains a NUL character or bytes that are not UTF-8 text",
            details=found,
        )
        await response(scope, receive, send)
