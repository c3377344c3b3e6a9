"""The API skeleton: health, readiness, metrics, error format, correlation ids."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.app import create_app
from core.settings import Settings


def test_health_is_ok(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_lists_every_dependency(client: TestClient) -> None:
    response = client.get("/ready")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "broker", "redis", "s3"}
    assert all(check["status"] == "ok" for check in body["checks"].values())


def test_ready_is_503_in_the_error_format_when_a_dependency_is_down(settings: Settings) -> None:
    from aqstream.stack.servers import free_port

    broken = settings.model_copy(
        update={"redis_url": f"redis://127.0.0.1:{free_port()}/0", "ready_timeout_s": 1.0}
    )
    with TestClient(create_app(broken)) as client:
        response = client.get("/ready")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "not_ready"
    assert "redis" in error["message"]
    assert error["details"]["checks"]["redis"]["status"] == "error"
    assert error["details"]["checks"]["database"]["status"] == "ok"


def test_unknown_route_uses_the_error_format(client: TestClient) -> None:
    response = client.get("/api/v1/does-not-exist")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "Not Found", "details": None}
    }


def test_wrong_method_uses_the_error_format(client: TestClient) -> None:
    response = client.post("/health")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_request_id_is_taken_from_the_caller_or_generated(client: TestClient) -> None:
    given = client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    generated = client.get("/health", headers={"X-Request-ID": "bad id\nwith newline"})
    assert generated.headers["X-Request-ID"] not in ("", "bad id\nwith newline")
    assert len(client.get("/health").headers["X-Request-ID"]) >= 16


def test_metrics_are_prometheus_text(client: TestClient) -> None:
    client.get("/ready")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'http_requests_total{handler="/ready"' in response.text


def test_unhandled_errors_are_500_in_the_error_format(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "internal_error", "message": "Internal server error", "details": None}
    }
    assert "secret" not in response.text


def test_docs_ui_is_served(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert "swagger-ui" in response.text
