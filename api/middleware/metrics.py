"""The Prometheus instrumentator's middleware, naming a request's handler in a fraction of its
time.

The library resolves the route template of every request before it runs, by flattening the
app's routers and fully matching each route in turn (building a child scope for every one): with
our ~110 routes, about 1 ms of CPU per request, the largest single cost of a registration in the
flash sale's profile. Here the flat list is made once, and only the routes whose path pattern
matches the path go through the library's own matching, so the names, the first-full-match-wins
rule and the fallbacks stay the library's.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from prometheus_fastapi_instrumentator import routing
from prometheus_fastapi_instrumentator.middleware import PrometheusInstrumentatorMiddleware
from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.routing import Mount, Route

# Routes that match nothing but a path their ``path_regex`` matches (Starlette's Route and
# Mount; FastAPI's resolved context of an APIRoute): a regex miss is a sure Match.NONE.
_PLAIN = (Route, Mount, APIRoute)


def _regex_decides(route: Any) -> bool:
    if isinstance(route, _PLAIN):
        return True
    original = getattr(route, "original_route", None)  # FastAPI's _EffectiveRouteContext
    return isinstance(original, APIRoute) and getattr(route, "path_regex", None) is not None


class InstrumentationMiddleware(PrometheusInstrumentatorMiddleware):
    _flat: tuple[tuple[int, int], list[tuple[Any, Any]]] | None = None

    def _routes(self, app: Any) -> list[tuple[Any, Any]]:
        """(route, its path regex or None) for every directly matchable route of ``app``.

        Made again when the app's own route list changes length (a route added to the app, as
        tests do); routers included in it are complete before the app serves (``create_app``)."""
        key = (id(app), len(app.routes))
        if self._flat is None or self._flat[0] != key:
            flat = [
                (route, route.path_regex if _regex_decides(route) else None)
                for route in routing._effective_routes(app.routes)
            ]
            self._flat = (key, flat)
        return self._flat[1]

    def _get_handler(self, request: Request) -> tuple[str, bool]:
        scope = request.scope
        app = scope.get("app")
        if app is None or not getattr(app, "routes", None) or self.should_include_root_path:
            return super()._get_handler(request)
        path = get_route_path(scope)
        candidates = [
            route
            for route, regex in self._routes(app)
            if regex is None or regex.match(path) is not None
        ]
        name = routing._get_route_name(scope, candidates)
        if name is None:  # no route: the library's fallbacks (trailing slash redirects)
            return super()._get_handler(request)
        return name, True


def use_fast_route_names(app: FastAPI) -> None:
    """Swap the instrumentator's middleware (added by ``Instrumentator.instrument``) for ours."""
    for middleware in app.user_middleware:
        if middleware.cls is PrometheusInstrumentatorMiddleware:
            middleware.cls = InstrumentationMiddleware
