"""Rate limits per user, per IP and on credential endpoints, against the real Redis."""

from __future__ import annotations

import hashlib
import ipaddress
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.middleware.idempotency import install_idempotency
from api.middleware.ratelimit import RateLimitMiddleware, install_rate_limiting
from core.settings import Settings

LIMITS = {"rate_limit_user": "3/minute", "rate_limit_ip": "5/minute", "rate_limit_auth": "2/minute"}


def _app(settings: Settings) -> FastAPI:
    app = create_app(settings)

    @app.get("/t/ping")
    def ping() -> dict[str, bool]:
        return {"pong": True}

    @app.post("/t/auth/login")
    def login() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/t/items", status_code=201)
    def create_item() -> dict[str, bool]:
        return {"created": True}

    # The production order: the later install is outermost, so limits run before idempotency.
    install_idempotency(app, settings)
    install_rate_limiting(app, settings)
    install_rate_limiting(app, settings)  # a second call changes nothing
    return app


@pytest.fixture(scope="module")
def app(settings: Settings) -> FastAPI:
    return _app(settings.model_copy(update={**LIMITS, "rate_limit_enabled": True}))


def _new_ip() -> str:
    """A fresh address per client, so tests sharing the Redis never share a counter."""
    return str(ipaddress.IPv6Address(uuid.uuid4().int))


@contextmanager
def _client_at(app: FastAPI, ip: str | None = None) -> Iterator[TestClient]:
    with TestClient(app, client=(ip or _new_ip(), 40000)) as client:
        yield client


def _bearer(app: FastAPI) -> dict[str, str]:
    token, _ = app.state.aq.tokens.issue(uuid.uuid4())
    return {"Authorization": f"Bearer {token}"}


def _assert_limited(response, *, limit: int, scope: str) -> None:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["details"]["scope"] == scope
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert error["details"]["retry_after_s"] == retry_after
    assert response.headers["x-ratelimit-limit"] == str(limit)
    assert response.headers["x-ratelimit-remaining"] == "0"


def test_anonymous_requests_are_limited_per_ip(app: FastAPI) -> None:
    with _client_at(app) as client:
        allowed = [client.get("/t/ping") for _ in range(5)]
        refused = client.get("/t/ping")
    with _client_at(app) as elsewhere:
        other_ip = elsewhere.get("/t/ping")

    assert [r.status_code for r in allowed] == [200] * 5
    assert [r.headers["x-ratelimit-limit"] for r in allowed] == ["5"] * 5
    assert [r.headers["x-ratelimit-remaining"] for r in allowed] == ["4", "3", "2", "1", "0"]
    _assert_limited(refused, limit=5, scope="ip")
    assert other_ip.status_code == 200


def test_users_are_limited_per_user_and_still_count_against_their_ip(app: FastAPI) -> None:
    ip = _new_ip()
    with _client_at(app, ip) as client:
        alice, bob = _bearer(app), _bearer(app)
        as_alice = [client.get("/t/ping", headers=alice) for _ in range(3)]
        alice_refused = client.get("/t/ping", headers=alice)
        as_bob = client.get("/t/ping", headers=bob)
        anonymous = client.get("/t/ping")
        ip_refused = client.get("/t/ping")
    with _client_at(app) as elsewhere:
        alice_elsewhere = elsewhere.get("/t/ping", headers=alice)
        bob_elsewhere = elsewhere.get("/t/ping", headers=bob)

    assert [r.status_code for r in as_alice] == [200] * 3
    # The tighter of the user (3) and IP (5) limits is reported.
    assert [r.headers["x-ratelimit-limit"] for r in as_alice] == ["3"] * 3
    assert [r.headers["x-ratelimit-remaining"] for r in as_alice] == ["2", "1", "0"]
    _assert_limited(alice_refused, limit=3, scope="user")
    # Alice's refused request did not count against the IP: 3 + Bob + anonymous = 5.
    assert as_bob.status_code == 200
    assert anonymous.status_code == 200
    _assert_limited(ip_refused, limit=5, scope="ip")
    _assert_limited(alice_elsewhere, limit=3, scope="user")
    assert bob_elsewhere.status_code == 200


def test_credential_endpoints_have_their_own_tighter_limit(app: FastAPI) -> None:
    with _client_at(app) as client:
        logins = [client.post("/t/auth/login") for _ in range(2)]
        refused = client.post("/t/auth/login")
        other = client.get("/t/ping")

    assert [r.status_code for r in logins] == [200, 200]
    assert [r.headers["x-ratelimit-remaining"] for r in logins] == ["1", "0"]
    _assert_limited(refused, limit=2, scope="auth")
    assert other.status_code == 200
    # Two logins counted against the IP limit of 5 as well.
    assert other.headers["x-ratelimit-remaining"] == "2"


@pytest.mark.parametrize("path", ["/health", "/metrics", "/openapi.json", "/docs"])
def test_exempt_paths_are_never_limited_or_counted(app: FastAPI, path: str) -> None:
    with _client_at(app) as client:
        responses = [client.get(path) for _ in range(8)]
        counted = client.get("/t/ping")

    assert [r.status_code for r in responses] == [200] * 8
    assert all("x-ratelimit-limit" not in r.headers for r in responses)
    assert counted.headers["x-ratelimit-remaining"] == "4"


def test_a_limited_request_does_not_claim_an_idempotency_key(app: FastAPI) -> None:
    ip = _new_ip()
    key = f"test-{uuid.uuid4()}"
    with _client_at(app, ip) as client:
        for _ in range(5):
            assert client.get("/t/ping").status_code == 200
        refused = client.post("/t/items", headers={"X-Idempotency-Key": key})
        redis_key = f"aq:idem:ip:{ip}:{hashlib.sha256(key.encode()).hexdigest()}"
        claimed = app.state.aq.redis.exists(redis_key)

    _assert_limited(refused, limit=5, scope="ip")
    assert claimed == 0


def test_rate_limits_can_be_disabled(settings: Settings) -> None:
    app = _app(settings.model_copy(update={**LIMITS, "rate_limit_enabled": False}))
    assert not any(m.cls is RateLimitMiddleware for m in app.user_middleware)
    with _client_at(app) as client:
        responses = [client.get("/t/ping") for _ in range(8)]
    assert [r.status_code for r in responses] == [200] * 8
    assert all("x-ratelimit-limit" not in r.headers for r in responses)


def test_requests_pass_when_redis_is_down(settings: Settings) -> None:
    from aqstream.stack.servers import free_port

    broken = settings.model_copy(
        update={**LIMITS, "redis_url": f"redis://127.0.0.1:{free_port()}/0"}
    )
    with _client_at(_app(broken)) as client:
        responses = [client.get("/t/ping") for _ in range(8)]
    assert [r.status_code for r in responses] == [200] * 8
    assert all("x-ratelimit-limit" not in r.headers for r in responses)


def test_a_malformed_limit_fails_at_start_up(settings: Settings) -> None:
    with pytest.raises(ValueError):
        _app(settings.model_copy(update={"rate_limit_enabled": True, "rate_limit_ip": "lots"}))
