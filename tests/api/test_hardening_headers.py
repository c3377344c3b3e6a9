"""Security headers of the API and the dashboards, and the API's metrics off its public port."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from aqstream.stack.servers import free_port
from core.settings import PROJECT_ROOT, Settings
from tests.factories import V1
from tests.live import served

HSTS = "max-age=31536000; includeSubDomains"


# --- the API ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/health", 200),
        ("GET", f"{V1}/events", 200),
        ("GET", f"{V1}/users/me", 401),
        ("GET", f"{V1}/nowhere", 404),
        ("DELETE", "/health", 405),
        ("GET", f"{V1}/events?q=%00", 400),
        ("GET", "/openapi.json", 200),
        ("GET", "/metrics", 200),
    ],
)
def test_every_api_response_says_nosniff(
    client: TestClient, method: str, path: str, status: int
) -> None:
    answer = client.request(method, path)
    assert answer.status_code == status
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "strict-transport-security" not in answer.headers  # plain http, no TLS setting


def test_hsts_over_https(api_app) -> None:
    with TestClient(api_app, base_url="https://testserver") as https:
        assert https.get("/health").headers["strict-transport-security"] == HSTS


def test_hsts_with_the_behind_tls_setting(settings: Settings, client: TestClient) -> None:
    from api.app import create_app

    app = create_app(settings.model_copy(update={"behind_tls": True, "hsts_max_age_s": 600}))
    with TestClient(app) as behind:
        for path in ("/health", f"{V1}/nowhere"):
            assert behind.get(path).headers["strict-transport-security"] == (
                "max-age=600; includeSubDomains"
            )


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def live(settings: Settings, client: TestClient, metrics_port: int) -> Iterator[str]:
    """The API under uvicorn (proxy headers trusted from 127.0.0.1, its default), its metrics on
    a port of their own. The session's app started first (Prometheus counts the first app's)."""
    from api.app import create_app

    app = create_app(
        settings.model_copy(
            update={"api_metrics_port": metrics_port, "api_metrics_host": "127.0.0.1"}
        )
    )
    with served(app) as url:
        yield url


def test_hsts_when_a_trusted_proxy_says_https(live: str) -> None:
    with httpx.Client(base_url=live) as http:
        assert "strict-transport-security" not in http.get("/health").headers
        forwarded = http.get("/health", headers={"X-Forwarded-Proto": "https"})
        assert forwarded.headers["strict-transport-security"] == HSTS


def test_metrics_are_served_on_their_own_port_only(live: str, metrics_port: int) -> None:
    with httpx.Client(base_url=live) as http:
        assert http.get("/metrics").status_code == 404
    metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")
    assert metrics.status_code == 200
    assert "http_requests_total" in metrics.text


# --- docker-compose: /metrics only on the compose network ---------------------------------------


def test_compose_serves_the_api_metrics_off_the_published_port() -> None:
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    api = compose["services"]["api"]
    env = {**compose["x-aqstream"]["environment"], **(api.get("environment") or {})}
    port = int(env["AQSTREAM_API_METRICS_PORT"])
    assert env["AQSTREAM_API_METRICS_HOST"] == "0.0.0.0"  # reachable by the compose network
    assert port != int(env["AQSTREAM_API_PORT"])
    published = [str(p) for p in api.get("ports", [])]
    assert published and all(not re.search(rf":{port}\b", p) for p in published), published
    assert str(port) in [str(p) for p in api.get("expose", [])]


# --- the dashboards -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboards(settings: Settings):
    from dashboards.app import create_app

    return create_app(settings.model_copy(update={"dashboards_api_url": "http://127.0.0.1:9"}))


def _csp(value: str) -> dict[str, list[str]]:
    return {
        name: rest for name, *rest in (part.split() for part in value.split(";") if part.strip())
    }


@pytest.mark.parametrize("path", ["/", "/signin", "/_dash-layout", "/_dash-dependencies"])
def test_dashboards_send_security_headers(dashboards, path: str) -> None:
    answer = dashboards.server.test_client().get(path)
    assert answer.status_code == 200, path
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["X-Frame-Options"] == "DENY"
    csp = _csp(answer.headers["Content-Security-Policy"])
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["default-src"] == ["'self'"]
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
    assert "Strict-Transport-Security" not in answer.headers


def test_the_dashboards_inline_scripts_are_allowed_by_hash(dashboards) -> None:
    """Dash's page starts its renderer with an inline script: its hash is in script-src."""
    page = dashboards.server.test_client().get("/")
    csp = _csp(page.headers["Content-Security-Policy"])
    for script_hash in dashboards.csp_hashes():
        assert script_hash in csp["script-src"]


def test_dashboards_send_hsts_behind_tls(settings: Settings) -> None:
    from dashboards.app import create_app

    app = create_app(settings.model_copy(update={"behind_tls": True, "hsts_max_age_s": 600}))
    answer = app.server.test_client().get("/signin")
    assert answer.headers["Strict-Transport-Security"] == "max-age=600; includeSubDomains"
