"""Hardening of sign-in and the own account (issue L): what a stolen access token cannot do,
per-account throttling, the dashboards' browsers' own addresses, and Redis outages."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
import uuid
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, text

from api.app import create_app
from core.settings import Settings
from domain.identity import telegram
from tests.factories import error_body

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a much better passphrase"


def _email(name: str = "user") -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}@example.org"


def _register(client: TestClient, email: str, password: str = PASSWORD) -> dict:
    response = client.post("/api/v1/auth/register", json={"email": email, "password": password})
    assert response.status_code == 201, response.text
    return response.json()


def _login(client: TestClient, email: str, password: str = PASSWORD, **kwargs):
    return client.post("/api/v1/auth/login", json={"email": email, "password": password}, **kwargs)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _password_hash(owner_engine: Engine, user_id: str) -> str:
    with owner_engine.connect() as conn:
        return conn.execute(
            text("SELECT password_hash FROM users WHERE id = :id"), {"id": user_id}
        ).scalar_one()


# --- 5. a stolen access token is not a takeover -------------------------------------------------


def test_a_password_change_without_the_current_password_is_refused_and_writes_nothing(
    client: TestClient, owner_engine: Engine
) -> None:
    email = _email("nocurrent")
    pair = _register(client, email)
    before = _password_hash(owner_engine, pair["user"]["id"])

    response = client.patch(
        "/api/v1/users/me", json={"password": NEW_PASSWORD}, headers=_bearer(pair["access_token"])
    )

    assert response.status_code == 422, response.text
    assert error_body(response)["code"] == "current_password_required"
    assert _password_hash(owner_engine, pair["user"]["id"]) == before
    assert _login(client, email).status_code == 200
    assert _login(client, email, NEW_PASSWORD).status_code == 401


def test_a_password_change_with_a_wrong_current_password_is_refused_and_writes_nothing(
    client: TestClient, owner_engine: Engine
) -> None:
    email = _email("wrongcurrent")
    pair = _register(client, email)
    before = _password_hash(owner_engine, pair["user"]["id"])

    response = client.patch(
        "/api/v1/users/me",
        json={"password": NEW_PASSWORD, "current_password": "not my password"},
        headers=_bearer(pair["access_token"]),
    )

    assert response.status_code == 403, response.text
    assert error_body(response)["code"] == "invalid_current_password"
    assert _password_hash(owner_engine, pair["user"]["id"]) == before
    # Refused, not signed out: the token still works.
    me = client.get("/api/v1/users/me", headers=_bearer(pair["access_token"]))
    assert me.status_code == 200
    assert _login(client, email).status_code == 200


def test_an_email_change_requires_the_current_password(
    client: TestClient, owner_engine: Engine
) -> None:
    email, new_email = _email("oldmail"), _email("newmail")
    pair = _register(client, email)
    headers = _bearer(pair["access_token"])

    missing = client.patch("/api/v1/users/me", json={"email": new_email}, headers=headers)
    wrong = client.patch(
        "/api/v1/users/me",
        json={"email": new_email, "current_password": "not my password"},
        headers=headers,
    )
    assert missing.status_code == 422, missing.text
    assert error_body(missing)["code"] == "current_password_required"
    assert wrong.status_code == 403, wrong.text
    assert error_body(wrong)["code"] == "invalid_current_password"
    assert _login(client, new_email).status_code == 401

    changed = client.patch(
        "/api/v1/users/me",
        json={"email": new_email.upper(), "current_password": PASSWORD},
        headers=headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["email"] == new_email
    assert _login(client, new_email).status_code == 200
    assert _login(client, email).status_code == 401

    taken = client.patch(
        "/api/v1/users/me",
        json={"email": _register(client, _email("other"))["user"]["email"],
              "current_password": PASSWORD},
        headers=headers,
    )  # fmt: skip
    assert taken.status_code == 409, taken.text
    assert error_body(taken)["code"] == "email_taken"


def test_access_and_refresh_tokens_from_before_a_password_change_stop_working_at_once(
    client: TestClient,
) -> None:
    email = _email("revoke")
    first = _register(client, email)
    second = _login(client, email).json()  # another device's session

    response = client.patch(
        "/api/v1/users/me",
        json={"password": NEW_PASSWORD, "current_password": PASSWORD},
        headers=_bearer(first["access_token"]),
    )
    assert response.status_code == 200, response.text

    for pair in (first, second):
        me = client.get("/api/v1/users/me", headers=_bearer(pair["access_token"]))
        assert me.status_code == 401, me.text
        assert error_body(me)["code"] == "token_revoked"
        assert me.headers["WWW-Authenticate"] == 'Bearer realm="aqstream"'
        refreshed = client.post(
            "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
        )
        assert refreshed.status_code == 401, refreshed.text

    fresh = _login(client, email, NEW_PASSWORD)
    assert fresh.status_code == 200, fresh.text
    me = client.get("/api/v1/users/me", headers=_bearer(fresh.json()["access_token"]))
    assert me.status_code == 200, me.text
    renewed = client.post(
        "/api/v1/auth/refresh", json={"refresh_token": fresh.json()["refresh_token"]}
    )
    assert renewed.status_code == 200, renewed.text
    me = client.get("/api/v1/users/me", headers=_bearer(renewed.json()["access_token"]))
    assert me.status_code == 200, me.text


def test_a_refresh_token_issued_before_a_password_change_is_refused_even_if_not_revoked(
    client: TestClient, owner_engine: Engine
) -> None:
    """A sign-in racing a password change (reading the old hash before the change commits) gets
    a refresh token that revoking the user's tokens did not see: it must not outlive the change."""
    pair = _register(client, _email("race"))
    with owner_engine.begin() as conn:  # the change, committed after that sign-in's revocation
        conn.execute(
            text("UPDATE users SET token_version = token_version + 1 WHERE id = :id"),
            {"id": pair["user"]["id"]},
        )
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert refreshed.status_code == 401, refreshed.text
    assert error_body(refreshed)["code"] == "token_revoked"


def test_a_profile_change_without_secrets_needs_no_password_and_keeps_the_session(
    client: TestClient,
) -> None:
    pair = _register(client, _email("harmless"))
    headers = _bearer(pair["access_token"])
    response = client.patch("/api/v1/users/me", json={"display_name": "Renamed"}, headers=headers)
    assert response.status_code == 200, response.text
    assert client.get("/api/v1/users/me", headers=headers).status_code == 200


# --- 6. per-account throttling, whatever the address ----------------------------------------------

THROTTLE = {
    "login_throttle_free_failures": 3,
    "login_throttle_base_s": 1.0,
    "login_throttle_max_s": 4.0,
}


@pytest.fixture(scope="module")
def throttled(settings: Settings) -> Iterator[FastAPI]:
    """The API with a small throttle (3 free failures, then 1 s doubling up to 4 s); the suite's
    per-address limits stay out of the way."""
    app = create_app(settings.model_copy(update=THROTTLE))
    with TestClient(app):
        yield app


def _address() -> str:
    return str(ipaddress.IPv6Address(uuid.uuid4().int))


def _at(app: FastAPI, address: str | None = None) -> TestClient:
    """A client at its own address (the app's lifespan is the fixture's)."""
    return TestClient(app, client=(address or _address(), 40000))


def _assert_throttled(response) -> int:
    assert response.status_code == 429, response.text
    error = error_body(response)
    assert error["code"] == "rate_limited"
    assert error["details"]["scope"] == "account"
    retry_after = int(response.headers["Retry-After"])
    assert error["details"]["retry_after_s"] == retry_after
    return retry_after


def test_wrong_passwords_from_many_addresses_throttle_the_account(throttled: FastAPI) -> None:
    email = _email("spread")
    _register(_at(throttled), email)
    for _ in range(3):
        assert _login(_at(throttled), email, "guess-guess-guess").status_code == 401

    # The right password from yet another address: refused before it is checked.
    retry_after = _assert_throttled(_login(_at(throttled), email))
    assert retry_after == 1
    _assert_throttled(_login(_at(throttled), email, "guess-guess-guess"))

    time.sleep(retry_after + 0.1)
    assert _login(_at(throttled), email).status_code == 200


def test_the_wait_doubles_with_each_further_failure_up_to_its_cap(throttled: FastAPI) -> None:
    email = _email("doubling")
    _register(_at(throttled), email)
    for _ in range(3):
        assert _login(_at(throttled), email, "guess-guess-guess").status_code == 401
    waits = []
    for _ in range(4):
        wait = _assert_throttled(_login(_at(throttled), email, "guess-guess-guess"))
        waits.append(wait)
        time.sleep(wait + 0.1)
        assert _login(_at(throttled), email, "guess-guess-guess").status_code == 401
    assert waits == [1, 2, 4, 4]


def test_a_success_resets_the_count(throttled: FastAPI) -> None:
    email = _email("reset")
    _register(_at(throttled), email)
    for _ in range(2):
        assert _login(_at(throttled), email, "guess-guess-guess").status_code == 401
    assert _login(_at(throttled), email).status_code == 200
    for _ in range(2):
        assert _login(_at(throttled), email, "guess-guess-guess").status_code == 401
    assert _login(_at(throttled), email).status_code == 200


def test_an_unknown_email_is_throttled_alike(throttled: FastAPI) -> None:
    """A 429 only for existing accounts would tell which e-mails have one."""
    email = _email("nobody")
    for _ in range(3):
        assert _login(_at(throttled), email).status_code == 401
    _assert_throttled(_login(_at(throttled), email))


def test_an_address_the_user_signed_in_from_is_not_locked_out_by_others(
    throttled: FastAPI,
) -> None:
    email, home = _email("home"), _address()
    _register(_at(throttled), email)
    assert _login(_at(throttled, home), email).status_code == 200
    for _ in range(3):
        assert _login(_at(throttled), email, "guess-guess-guess").status_code == 401
    _assert_throttled(_login(_at(throttled), email))

    assert _login(_at(throttled, home), email).status_code == 200
    _assert_throttled(_login(_at(throttled), email))
    # The known address has a count of its own.
    for _ in range(3):
        assert _login(_at(throttled, home), email, "guess-guess-guess").status_code == 401
    _assert_throttled(_login(_at(throttled, home), email))


def test_wrong_current_passwords_count_against_the_account(throttled: FastAPI) -> None:
    email = _email("stolen")
    pair = _register(_at(throttled), email)
    thief = _at(throttled)
    for _ in range(3):
        response = thief.patch(
            "/api/v1/users/me",
            json={"password": NEW_PASSWORD, "current_password": "guess-guess-guess"},
            headers=_bearer(pair["access_token"]),
        )
        assert response.status_code == 403, response.text
    _assert_throttled(
        thief.patch(
            "/api/v1/users/me",
            json={"password": NEW_PASSWORD, "current_password": PASSWORD},
            headers=_bearer(pair["access_token"]),
        )
    )
    _assert_throttled(_login(_at(throttled), email))


# --- 7. the dashboards' browsers sign in from their own addresses ---------------------------------

DASHBOARDS_SECRET = "dashboards-forwarding-secret-for-the-suite"
FORWARDING = {
    "dashboards_client_secret": SecretStr(DASHBOARDS_SECRET),
    "rate_limit_enabled": True,
    "rate_limit_auth": "3/minute",
}


def _forwarded(address: str, secret: str = DASHBOARDS_SECRET, at: float | None = None) -> dict:
    """The headers the dashboards add: the browser's address, signed with the shared secret."""
    stamp = str(int(at if at is not None else time.time()))
    mac = hmac.new(secret.encode(), f"{stamp}:{address}".encode(), hashlib.sha256).hexdigest()
    return {"X-AqStream-Client-IP": address, "X-AqStream-Client-Signature": f"{stamp}:{mac}"}


@pytest.fixture(scope="module")
def forwarding(settings: Settings) -> Iterator[FastAPI]:
    app = create_app(settings.model_copy(update=FORWARDING))
    with TestClient(app):
        yield app


def test_signed_browser_addresses_from_the_dashboards_are_counted_apart(
    forwarding: FastAPI,
) -> None:
    dashboards = _at(forwarding)  # one peer address for every browser
    browser_a, browser_b = _address(), _address()
    for _ in range(3):
        wrong = _login(dashboards, _email("a"), headers=_forwarded(browser_a))
        assert wrong.status_code == 401, wrong.text
    refused = _login(dashboards, _email("a"), headers=_forwarded(browser_a))
    assert refused.status_code == 429, refused.text
    assert error_body(refused)["details"]["scope"] == "auth"

    assert _login(dashboards, _email("b"), headers=_forwarded(browser_b)).status_code == 401
    # Unsigned requests of the dashboards' own address were not counted by the browsers'.
    assert _login(dashboards, _email("c")).status_code == 401


def test_an_unsigned_forged_or_stale_address_is_ignored(forwarding: FastAPI) -> None:
    peer = _address()
    claimed = [
        {"X-AqStream-Client-IP": _address()},
        {"X-Forwarded-For": _address()},
        _forwarded(_address(), secret="not-the-dashboards-secret"),
        _forwarded(_address(), at=time.time() - 3600),
        {**_forwarded(_address()), "X-AqStream-Client-IP": _address()},  # signature of another
    ]
    answers = [_login(_at(forwarding, peer), _email("forged"), headers=h) for h in claimed]
    # All five counted against the one real peer: 3 allowed, then refused.
    assert [a.status_code for a in answers] == [401, 401, 401, 429, 429]


def test_the_dashboards_forward_each_browsers_address(settings: Settings) -> None:
    """22 failed sign-ins from one browser no longer lock every organizer out."""
    from dashboards.app import create_app as create_dashboards
    from tests.live import served

    api_settings = settings.model_copy(update=FORWARDING)
    with served(create_app(api_settings)) as api_url:
        server = create_dashboards(
            api_settings.model_copy(update={"dashboards_api_url": api_url})
        ).server
        with TestClient(create_app(api_settings)) as api:
            user = _register(api, _email("organizer"))
        mallory = server.test_client()
        mallory.environ_base["REMOTE_ADDR"] = "203.0.113.66"
        for _ in range(4):
            answer = mallory.post(
                "/auth/login", data={"email": _email("x"), "password": "guess-guess-guess"}
            )
        assert answer.headers["Location"].startswith("/signin?message=rate_limited")

        organizer = server.test_client()
        organizer.environ_base["REMOTE_ADDR"] = "198.51.100.7"
        signed_in = organizer.post(
            "/auth/login", data={"email": user["user"]["email"], "password": PASSWORD}
        )
        assert signed_in.status_code == 303
        assert signed_in.headers["Location"] == "/", signed_in.headers["Location"]


# --- 8. Redis away: credential endpoints fail closed with a 503, before any password check ------


@pytest.fixture(scope="module", params=[True, False], ids=["limits-on", "limits-off"])
def redis_down(request, settings: Settings) -> Iterator[FastAPI]:
    """The API with its Redis at a closed port, with and without the rate limit middleware (the
    endpoints must fail closed by themselves too)."""
    from aqstream.stack.servers import free_port

    broken = settings.model_copy(
        update={
            "redis_url": f"redis://127.0.0.1:{free_port()}/0",
            "rate_limit_enabled": request.param,
        }
    )
    app = create_app(broken)
    with TestClient(app):
        yield app


def _assert_unavailable(response) -> None:
    assert response.status_code == 503, response.text
    assert error_body(response)["code"] == "auth_unavailable"
    assert int(response.headers["Retry-After"]) >= 1


def test_sign_up_without_redis_is_a_503_and_creates_no_account(
    redis_down: FastAPI, owner_engine: Engine
) -> None:
    email = _email("noredis")
    response = _at(redis_down).post(
        "/api/v1/auth/register", json={"email": email, "password": PASSWORD}
    )
    _assert_unavailable(response)
    with owner_engine.connect() as conn:
        count = conn.execute(
            text("SELECT count(*) FROM users WHERE email = :e"), {"e": email}
        ).scalar_one()
    assert count == 0


def test_sign_in_without_redis_answers_the_same_503_for_any_password(
    redis_down: FastAPI, client: TestClient
) -> None:
    email = _email("oracle")
    _register(client, email)
    right = _login(_at(redis_down), email)
    wrong = _login(_at(redis_down), email, "guess-guess-guess")
    unknown = _login(_at(redis_down), _email("nobody"))
    for response in (right, wrong, unknown):
        _assert_unavailable(response)
    assert right.json() == wrong.json() == unknown.json()


def test_refresh_logout_and_telegram_without_redis_are_503(
    redis_down: FastAPI, client: TestClient
) -> None:
    pair = _register(client, _email("tokens"))
    at = _at(redis_down)
    _assert_unavailable(
        at.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    )
    _assert_unavailable(
        at.post(
            "/api/v1/auth/logout",
            json={"refresh_token": pair["refresh_token"]},
            headers=_bearer(pair["access_token"]),
        )
    )
    fields = {"id": 10**9 + uuid.uuid4().int % 10**12, "auth_date": int(time.time())}
    fields["hash"] = telegram.sign(fields, "123456:TEST-bot-token-for-the-suite")
    _assert_unavailable(at.post("/api/v1/auth/telegram", json=fields))


def test_a_password_change_without_redis_is_a_503_and_writes_nothing(
    redis_down: FastAPI, client: TestClient, owner_engine: Engine
) -> None:
    email = _email("pwnoredis")
    pair = _register(client, email)
    before = _password_hash(owner_engine, pair["user"]["id"])
    at, headers = _at(redis_down), _bearer(pair["access_token"])

    for current in (PASSWORD, "guess-guess-guess"):
        response = at.patch(
            "/api/v1/users/me",
            json={"password": NEW_PASSWORD, "current_password": current},
            headers=headers,
        )
        _assert_unavailable(response)
    assert _password_hash(owner_engine, pair["user"]["id"]) == before

    # What needs no Redis still works (rate limits fail open for everything but credentials).
    renamed = at.patch("/api/v1/users/me", json={"display_name": "Still here"}, headers=headers)
    assert renamed.status_code == 200, renamed.text
    assert at.get("/api/v1/users/me", headers=headers).status_code == 200


def test_the_rate_limits_fail_closed_for_credential_paths_only(settings: Settings) -> None:
    """Without Redis the middleware refuses a credential path before its endpoint runs (here one
    that needs no Redis itself) and lets other requests through unlimited."""
    from aqstream.stack.servers import free_port

    app = create_app(
        settings.model_copy(
            update={"redis_url": f"redis://127.0.0.1:{free_port()}/0", "rate_limit_enabled": True}
        )
    )
    ran = []

    @app.post("/t/auth/login")
    def fake_login() -> dict[str, bool]:
        ran.append(True)
        return {"ok": True}

    @app.get("/t/ping")
    def ping() -> dict[str, bool]:
        return {"pong": True}

    with TestClient(app) as at:
        first, again = at.post("/t/auth/login"), at.post("/t/auth/login")  # again: in the pause
        pings = [at.get("/t/ping") for _ in range(3)]
    _assert_unavailable(first)
    _assert_unavailable(again)
    assert ran == []
    assert [p.status_code for p in pings] == [200, 200, 200]
