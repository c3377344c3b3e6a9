"""The metrics middleware names every route's requests as the instrumentator library does."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_fastapi_instrumentator.middleware import PrometheusInstrumentatorMiddleware
from starlette.requests import Request

from api.app import create_app
from api.middleware.metrics import InstrumentationMiddleware
from core.settings import Settings

ID = "01a2519d-1c4e-77e1-af4f-e9d41322159b"


def _paths(app: FastAPI) -> list[tuple[str, str]]:
    """(method, a concrete path) for every route of the OpenAPI document, plus misses."""
    out = []
    for template, operations in app.openapi()["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", ID, template)
        for method in operations:
            out += [(method.upper(), concrete), ("DELETE", concrete)]
        out.append(("GET", concrete + "/"))  # a trailing slash: the library's fallback
    return [*out, ("GET", "/nowhere"), ("GET", "/health"), ("GET", "/metrics"), ("GET", "/")]


def test_handler_names_match_the_library(settings: Settings) -> None:
    app = create_app(settings)
    assert any(m.cls is InstrumentationMiddleware for m in app.user_middleware)
    ours = InstrumentationMiddleware(app, excluded_handlers=[])
    theirs = PrometheusInstrumentatorMiddleware(app, excluded_handlers=[])
    paths = _paths(app)
    assert len(paths) > 200
    for method, path in paths:
        request = _scope(app, method, path)
        assert ours._get_handler(request) == theirs._get_handler(request), (method, path)


def _scope(app: FastAPI, method: str, path: str) -> Request:
    return Request(
        {
            "type": "http",
            "method": method,
            "path": path,
            "root_path": "",
            "app": app,
            "headers": [],
            "query_string": b"",
        }
    )


def test_a_route_added_after_the_first_request_is_named(settings: Settings) -> None:
    app = create_app(settings)
    ours = InstrumentationMiddleware(app, excluded_handlers=[])
    assert ours._get_handler(_scope(app, "GET", "/t/items/7")) == ("/t/items/7", False)

    @app.get("/t/items/{item_id}")
    def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    assert ours._get_handler(_scope(app, "GET", "/t/items/7")) == ("/t/items/{item_id}", True)
    with TestClient(app) as client:
        assert client.get("/t/items/7").json() == {"id": 7}
