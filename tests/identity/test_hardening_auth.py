"""Hardening of sign-in and the own account (issue L): what a stolen access token cannot do,
per-account throttling, the dashboards' browsers' own addresses, and Redis outages."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

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


def test_a_profile_change_without_secrets_needs_no_password_and_keeps_the_session(
    client: TestClient,
) -> None:
    pair = _register(client, _email("harmless"))
    headers = _bearer(pair["access_token"])
    response = client.patch("/api/v1/users/me", json={"display_name": "Renamed"}, headers=headers)
    assert response.status_code == 200, response.text
    assert client.get("/api/v1/users/me", headers=headers).status_code == 200
