"""Sign-up, sign-in (e-mail and Telegram), the own profile, and the events they write."""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from api.app import create_app
from core.settings import Settings
from domain.errors import ValidationFailed
from domain.identity import telegram
from domain.identity.service import normalize_email
from tests.factories import error_body, outbox_rows

BOT_TOKEN = "123456:TEST-bot-token-for-the-suite"
PASSWORD = "correct horse battery"


def _email(name: str = "user") -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}@example.org"


def _register(client: TestClient, email: str, password: str = PASSWORD, **extra: Any):
    return client.post(
        "/api/v1/auth/register", json={"email": email, "password": password, **extra}
    )


def _login(client: TestClient, email: str, password: str = PASSWORD):
    return client.post("/api/v1/auth/login", json={"email": email, "password": password})


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _telegram_fields(telegram_id: int, **fields: Any) -> dict[str, Any]:
    data = {"id": telegram_id, "auth_date": int(time.time()), **fields}
    data["hash"] = telegram.sign(data, BOT_TOKEN)
    return data


def _telegram_id() -> int:
    return 10**9 + secrets.randbelow(10**12)


# --- registration ---------------------------------------------------------------------------------


def test_register_answers_201_with_a_token_pair_and_the_user(client: TestClient) -> None:
    email = _email("reg")
    response = _register(client, email, display_name="Ada Lovelace")
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "user"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == client.app.state.aq.settings.access_token_ttl_s
    assert body["access_token"].count(".") == 2
    assert body["refresh_token"] and body["refresh_token"] != body["access_token"]
    user = body["user"]
    assert uuid.UUID(user["id"])
    assert user["email"] == email
    assert user["display_name"] == "Ada Lovelace"
    assert user["telegram_username"] is None
    assert user["locale"] == "en"
    assert user["is_platform_admin"] is False
    assert user["created_at"]
    assert "password_hash" not in user and "password" not in user

    me = client.get("/api/v1/users/me", headers=_bearer(body["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json() == user


def test_register_without_display_name_uses_the_local_part(client: TestClient) -> None:
    email = _email("localpart")
    response = _register(client, email)
    assert response.status_code == 201, response.text
    assert response.json()["user"]["display_name"] == email.split("@")[0]


def test_email_is_normalized_and_unique_case_insensitively(client: TestClient) -> None:
    tag = uuid.uuid4().hex[:10]
    first = _register(client, f"Ada-{tag}@Example.ORG")
    assert first.status_code == 201, first.text
    assert first.json()["user"]["email"] == f"ada-{tag}@example.org"

    again = _register(client, f"ada-{tag}@example.org")
    assert again.status_code == 409, again.text
    assert error_body(again)["code"] == "email_taken"

    # Sign-in is case-insensitive too.
    login = _login(client, f"ADA-{tag}@example.org")
    assert login.status_code == 200, login.text
    assert login.json()["user"]["id"] == first.json()["user"]["id"]


def test_weak_password_is_422(client: TestClient) -> None:
    email = _email("weak")
    response = _register(client, email, password="short")
    assert response.status_code == 422, response.text
    error = error_body(response)
    assert error["code"] == "validation_error"
    assert any(d["loc"] == ["body", "password"] for d in error["details"])
    # No account was created.
    assert _login(client, email, "short").status_code == 401


@pytest.mark.parametrize("bad", ["not-an-email", "two@@example.org", "nobody@", "@example.org"])
def test_invalid_email_is_422_invalid_email(client: TestClient, bad: str) -> None:
    response = _register(client, bad)
    assert response.status_code == 422, response.text
    assert error_body(response)["code"] == "invalid_email"


def test_normalize_email_unit() -> None:
    assert normalize_email("Grace.Hopper@EXAMPLE.org") == "grace.hopper@example.org"
    with pytest.raises(ValidationFailed) as exc:
        normalize_email("no at sign")
    assert exc.value.code == "invalid_email"


def test_register_writes_user_registered_to_the_outbox(
    client: TestClient, owner_engine: Engine
) -> None:
    email = _email("outbox")
    response = _register(client, email, display_name="Outbox User")
    assert response.status_code == 201, response.text
    user_id = response.json()["user"]["id"]

    rows = outbox_rows(owner_engine, user_id)
    # The sign-up, then the request to confirm the address (tests/identity/test_email_verification.py).
    assert [r["event_type"] for r in rows] == [
        "user.registered",
        "user.email_verification_requested",
    ]
    row = rows[0]
    assert row["aggregate_type"] == "user"
    assert row["tenant_id"] is None
    payload = row["payload"]
    assert payload["user_id"] == user_id
    assert payload["email"] == email
    assert payload["method"] == "email"
    assert payload["display_name"] == "Outbox User"
    assert "password" not in str(payload).lower()


# --- login ----------------------------------------------------------------------------------------


def test_login_answers_a_fresh_token_pair(client: TestClient) -> None:
    email = _email("login")
    registered = _register(client, email).json()
    response = _login(client, email)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"]["id"] == registered["user"]["id"]
    assert body["token_type"] == "bearer"
    assert body["refresh_token"] != registered["refresh_token"]
    me = client.get("/api/v1/users/me", headers=_bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == registered["user"]["id"]


def test_wrong_password_and_unknown_email_are_the_same_401(client: TestClient) -> None:
    email = _email("wrongpw")
    assert _register(client, email).status_code == 201

    wrong = _login(client, email, "not the right password")
    unknown = _login(client, _email("nobody"))
    malformed = _login(client, "not-an-email")
    for response in (wrong, unknown, malformed):
        assert response.status_code == 401, response.text
        assert error_body(response)["code"] == "invalid_credentials"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert error_body(wrong)["message"] == error_body(unknown)["message"]


# --- the own profile ------------------------------------------------------------------------------


def test_users_me_without_a_token_is_401_with_www_authenticate(client: TestClient) -> None:
    for response in (
        client.get("/api/v1/users/me"),
        client.patch("/api/v1/users/me", json={"locale": "de"}),
        client.get("/api/v1/users/me", headers={"Authorization": "Basic dXNlcjpwYXNz"}),
    ):
        assert response.status_code == 401, response.text
        assert error_body(response)["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="aqstream"'


def test_garbage_bearer_token_is_401_with_www_authenticate(client: TestClient) -> None:
    response = client.get("/api/v1/users/me", headers=_bearer("not.a.jwt"))
    assert response.status_code == 401
    assert error_body(response)["code"] == "invalid_token"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="aqstream"'


def test_token_of_a_user_that_does_not_exist_is_401(client: TestClient) -> None:
    token, _ = client.app.state.aq.tokens.issue(uuid.uuid4())
    response = client.get("/api/v1/users/me", headers=_bearer(token))
    assert response.status_code == 401
    assert error_body(response)["code"] == "unauthorized"


def test_patch_me_changes_display_name_and_locale(client: TestClient, owner_engine: Engine) -> None:
    pair = _register(client, _email("patch"), display_name="Before").json()
    headers = _bearer(pair["access_token"])
    user_id = pair["user"]["id"]

    response = client.patch(
        "/api/v1/users/me", json={"display_name": "After", "locale": "de-DE"}, headers=headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == user_id
    assert body["display_name"] == "After"
    assert body["locale"] == "de-DE"
    assert client.get("/api/v1/users/me", headers=headers).json() == body

    updates = [r for r in outbox_rows(owner_engine, user_id) if r["event_type"] == "user.updated"]
    assert len(updates) == 1
    assert updates[0]["payload"]["user_id"] == user_id
    assert sorted(updates[0]["payload"]["changed"]) == ["display_name", "locale"]
    assert updates[0]["tenant_id"] is None

    # Setting the same values again changes nothing and writes no event.
    same = client.patch("/api/v1/users/me", json={"display_name": "After"}, headers=headers)
    assert same.status_code == 200
    updates = [r for r in outbox_rows(owner_engine, user_id) if r["event_type"] == "user.updated"]
    assert len(updates) == 1


def test_patch_me_validates_its_fields(client: TestClient) -> None:
    headers = _bearer(_register(client, _email("patchval")).json()["access_token"])
    for body in ({"locale": "english"}, {"display_name": ""}, {"password": "short"}):
        response = client.patch("/api/v1/users/me", json=body, headers=headers)
        assert response.status_code == 422, (body, response.text)
        assert error_body(response)["code"] == "validation_error"


def test_password_change_then_login_with_the_new_one(
    client: TestClient, owner_engine: Engine
) -> None:
    email = _email("pwchange")
    pair = _register(client, email).json()
    new_password = "a much better passphrase"
    response = client.patch(
        "/api/v1/users/me",
        json={"password": new_password, "current_password": PASSWORD},
        headers=_bearer(pair["access_token"]),
    )
    assert response.status_code == 200, response.text
    assert "password" not in response.json()

    old = _login(client, email, PASSWORD)
    assert old.status_code == 401
    assert error_body(old)["code"] == "invalid_credentials"
    new = _login(client, email, new_password)
    assert new.status_code == 200, new.text
    assert new.json()["user"]["id"] == pair["user"]["id"]

    updates = [
        r
        for r in outbox_rows(owner_engine, pair["user"]["id"])
        if r["event_type"] == "user.updated"
    ]
    assert [u["payload"]["changed"] for u in updates] == [["password"]]
    assert new_password not in str(updates[0]["payload"])


# --- Telegram -------------------------------------------------------------------------------------


def test_telegram_sign_follows_the_documented_scheme() -> None:
    import hashlib
    import hmac

    fields = {"id": 42, "auth_date": 1700000000, "first_name": "Ada", "hash": "ignored"}
    check = "auth_date=1700000000\nfirst_name=Ada\nid=42"
    assert telegram.data_check_string(fields) == check
    expected = hmac.new(
        hashlib.sha256(BOT_TOKEN.encode()).digest(), check.encode(), hashlib.sha256
    ).hexdigest()
    assert telegram.sign(fields, BOT_TOKEN) == expected


def test_telegram_login_creates_the_user_then_finds_it_again(
    client: TestClient, owner_engine: Engine
) -> None:
    telegram_id = _telegram_id()
    username = f"tg_{uuid.uuid4().hex[:12]}"
    fields = _telegram_fields(telegram_id, first_name="Tele", last_name="Gram", username=username)
    first = client.post("/api/v1/auth/telegram", json=fields)
    assert first.status_code == 200, first.text
    body = first.json()
    user = body["user"]
    assert user["email"] is None
    assert user["display_name"] == "Tele Gram"
    assert user["telegram_username"] == username
    assert body["refresh_token"]
    me = client.get("/api/v1/users/me", headers=_bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == user["id"]

    rows = outbox_rows(owner_engine, user["id"])
    assert [r["event_type"] for r in rows] == ["user.registered"]
    assert rows[0]["payload"]["method"] == "telegram"
    assert rows[0]["payload"]["telegram_id"] == telegram_id
    assert rows[0]["payload"]["email"] is None

    renamed = f"tg_{uuid.uuid4().hex[:12]}"
    second = client.post(
        "/api/v1/auth/telegram", json=_telegram_fields(telegram_id, username=renamed)
    )
    assert second.status_code == 200, second.text
    assert second.json()["user"]["id"] == user["id"]
    assert second.json()["user"]["telegram_username"] == renamed
    # A returning user is not registered twice.
    assert [r["event_type"] for r in outbox_rows(owner_engine, user["id"])] == ["user.registered"]


def test_telegram_login_with_a_bad_hash_is_401(client: TestClient) -> None:
    fields = _telegram_fields(_telegram_id(), first_name="Mallory")
    tampered = {**fields, "first_name": "Alice"}
    for body in (tampered, {**fields, "hash": "0" * 64}):
        response = client.post("/api/v1/auth/telegram", json=body)
        assert response.status_code == 401, response.text
        assert error_body(response)["code"] == "invalid_telegram_signature"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")

    signed_with_another_bot = {**fields}
    signed_with_another_bot["hash"] = telegram.sign(fields, "654321:ANOTHER-bot")
    response = client.post("/api/v1/auth/telegram", json=signed_with_another_bot)
    assert response.status_code == 401
    assert error_body(response)["code"] == "invalid_telegram_signature"


def test_telegram_login_with_a_stale_auth_date_is_401(
    client: TestClient, settings: Settings
) -> None:
    telegram_id = _telegram_id()
    stale = {
        "id": telegram_id,
        "auth_date": int(time.time()) - settings.telegram_auth_max_age_s - 60,
    }
    stale["hash"] = telegram.sign(stale, BOT_TOKEN)
    response = client.post("/api/v1/auth/telegram", json=stale)
    assert response.status_code == 401, response.text
    assert error_body(response)["code"] == "telegram_auth_expired"

    future = {"id": telegram_id, "auth_date": int(time.time()) + 3600}
    future["hash"] = telegram.sign(future, BOT_TOKEN)
    response = client.post("/api/v1/auth/telegram", json=future)
    assert response.status_code == 401, response.text
    assert error_body(response)["code"] == "telegram_auth_expired"


def test_telegram_login_is_404_when_no_bot_token_is_configured(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"telegram_bot_token": None}))
    with TestClient(app) as c:
        response = c.post("/api/v1/auth/telegram", json=_telegram_fields(_telegram_id()))
    assert response.status_code == 404, response.text
    assert error_body(response)["code"] == "telegram_disabled"


def test_blank_display_name_falls_back_to_the_local_part(client: TestClient) -> None:
    # The schema accepts "   " (min_length=1); the service must not store it stripped to "".
    email = _email("blank")
    response = _register(client, email, display_name="   ")
    assert response.status_code == 201, response.text
    assert response.json()["user"]["display_name"] == email.split("@")[0]


def test_the_timing_dummy_password_opens_nothing(client: TestClient) -> None:
    # Unknown e-mails are checked against a dummy hash of this very password.
    response = _login(client, _email("ghost"), "timing-equaliser")
    assert response.status_code == 401
    assert error_body(response)["code"] == "invalid_credentials"
