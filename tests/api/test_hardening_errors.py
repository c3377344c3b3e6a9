"""An unhandled error is a 500 in the common error format, logged once, and the keep-alive
connection it arrived on carries on (uvicorn used to drop it: Starlette re-raises after its 500)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient

from core.settings import Settings
from tests.live import served


def _app(settings: Settings) -> FastAPI:
    from api.app import create_app

    app = create_app(settings.model_copy(update={"rate_limit_enabled": False}))

    @app.get("/t/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    @app.post("/t/boom")
    async def boom_after_reading(request: Request) -> None:
        await request.body()
        raise RuntimeError("boom after the body")

    @app.get("/t/peer")
    def peer(request: Request) -> dict[str, int]:
        assert request.client is not None
        return {"port": request.client.port}

    @app.get("/t/cut-short")
    def cut_short() -> StreamingResponse:
        def chunks() -> Iterator[bytes]:
            yield b"the start"
            raise RuntimeError("the stream broke")

        return StreamingResponse(chunks(), media_type="text/plain")

    return app


@pytest.fixture(scope="module")
def live_url(settings: Settings, client: TestClient) -> Iterator[str]:
    # The session's app started first: Prometheus counts the requests of the first app started
    # in a process (the metrics of any later one are duplicates, and dropped).
    with served(_app(settings)) as url:
        yield url


def test_after_a_500_the_same_connection_serves_the_next_request(
    live_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with httpx.Client(base_url=live_url) as http:
        first = http.get("/t/peer").json()["port"]
        caplog.set_level(logging.INFO)
        failed = http.get("/t/boom")
        assert failed.status_code == 500
        assert failed.json() == {
            "error": {"code": "internal_error", "message": "Internal server error", "details": None}
        }
        assert failed.headers.get("connection") != "close"
        assert failed.headers["x-request-id"]
        assert failed.headers["x-content-type-options"] == "nosniff"
        after = http.get("/t/peer")
        assert after.status_code == 200
        assert after.json()["port"] == first, "the connection was not reused"
        failed_post = http.post("/t/boom", content=b"{}")
        assert failed_post.status_code == 500
        assert http.get("/t/peer").json()["port"] == first
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [(r.name, _event(r)) for r in errors] == [("api.errors", "unhandled_error")] * 2


def _event(record: logging.LogRecord) -> str:
    return record.msg["event"] if isinstance(record.msg, dict) else record.getMessage()


def test_a_response_cut_short_still_closes_its_connection(live_url: str) -> None:
    """Half a body cannot be followed by another response on the same connection."""
    with httpx.Client(base_url=live_url) as http:
        first = http.get("/t/peer").json()["port"]
        with pytest.raises(httpx.HTTPError):
            http.get("/t/cut-short")
        assert http.get("/t/peer").json()["port"] != first
