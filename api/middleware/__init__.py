"""Cross-cutting API rules applied before routing: rate limits and idempotent retries.

Both are pure ASGI middleware (see docs/api-rules.md). They identify the caller the same way, so
the identity is worked out once per request and kept on the ASGI scope.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import Scope

from api.security import peek_user_id

_CALLER = "aq.caller"


@dataclass(frozen=True)
class Caller:
    user_id: str | None
    ip: str


def caller_of(scope: Scope) -> Caller:
    """The verified user id (None when anonymous) and client IP of an HTTP request.

    The client IP is the ASGI client host: uvicorn runs with ``proxy_headers``, so a trusted proxy's
    X-Forwarded-For is already applied. Memoised on the scope so the bearer token is verified once.
    """
    cached = scope.get(_CALLER)
    if cached is None:
        client = scope.get("client")
        cached = Caller(peek_user_id(Request(scope)), client[0] if client else "unknown")
        scope[_CALLER] = cached
    return cached
