"""Security headers on every response of the API.

``X-Content-Type-Options: nosniff`` always: browsers must not read a JSON error as HTML or a
script. ``Strict-Transport-Security`` when the API is served over TLS: always with the
``behind_tls`` setting, else when the request arrived over https (uvicorn runs with
``proxy_headers``, so that includes X-Forwarded-Proto from a trusted proxy, and only from one).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def hsts_value(max_age_s: int) -> str:
    return f"max-age={max_age_s}; includeSubDomains"


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, behind_tls: bool, hsts_max_age_s: int) -> None:
        self.app = app
        self.behind_tls = behind_tls
        self.hsts = hsts_value(hsts_max_age_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tls = self.behind_tls or scope.get("scheme") == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                if tls:
                    headers.setdefault("Strict-Transport-Security", self.hsts)
            await send(message)

        await self.app(scope, receive, with_headers)
