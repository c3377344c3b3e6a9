"""Password reset by e-mail through the real pipeline: POST /auth/password-reset -> the outbox ->
the relay -> Kafka -> the notifications agent -> the SMTP stand-in; then the link's token sets
the password once and signs every session out."""

from __future__ import annotations

import ipaddress
import re
import uuid

import pytest

from api.middleware.ratelimit import _credential
from domain.identity.password_reset import signing_key, token_for
from tests.factories import V1, assert_error
from tests.notification.conftest import outbox_events
from tests.worker.conftest import wait_for

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new secret 42"
LINK = re.compile(r"https://app\.example/reset\?token=([A-Za-z0-9_-]{43})")


@pytest.fixture
def reset_settings(worker_settings):
    return worker_settings.model_copy(
        update={"password_reset_url": "https://app.example/reset?token={token}"}
    )


def _reset_mail(smtp, email: str) -> list:
    return [m for m in smtp.to(email) if m["Subject"] == "Reset your AqStream password"]


def test_reset_link_by_email_sets_the_password_once_and_signs_everything_out(
    client, api, owner_engine, smtp, reset_settings, pipeline
) -> None:
    pipeline(reset_settings, "relay-password-reset")
    user = api.register("forgetful")
    second_login = client.post(
        f"{V1}/auth/login", json={"email": user["email"], "password": PASSWORD}
    )
    assert second_login.status_code == 200

    asked = client.post(f"{V1}/auth/password-reset", json={"email": user["email"].upper()})
    assert asked.status_code == 202, asked.text
    [mail] = wait_for(lambda: _reset_mail(smtp, user["email"]), 60, "the reset e-mail")
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    token = LINK.search(text).group(1)
    assert f'href="https://app.example/reset?token={token}"' in html
    # The minutes left when the worker wrote it (the link lasts 60; a slow pipeline takes some).
    minutes = int(re.search(r"within (\d+) minutes", text).group(1))
    assert 50 <= minutes <= 60, text
    # The event carries the reset's id, never the token; the token is the id's HMAC.
    [event] = outbox_events(owner_engine, user["user"]["id"], "user.password_reset_requested")
    assert token not in str(event["payload"]) and set(event["payload"]) >= {"reset_id", "email"}
    key = signing_key(reset_settings.ticket_signing_key.get_secret_value())
    assert token_for(key, uuid.UUID(event["payload"]["reset_id"])) == token
    # The notification log holds the message for the user alone, by e-mail.
    with owner_engine.connect() as conn:
        from sqlalchemy import text as sql

        row = conn.execute(
            sql("SELECT channel, tenant_id, status FROM notifications WHERE source_event_id = :e"),
            {"e": event["id"]},
        ).one()
    assert row.channel == "email" and row.tenant_id is None

    # A bad token, a short password: refused, and the token stays usable.
    bad = client.post(
        f"{V1}/auth/password-reset/confirm", json={"token": "x" * 43, "new_password": NEW_PASSWORD}
    )
    assert_error(bad, 422, "invalid_reset_token")
    short = client.post(
        f"{V1}/auth/password-reset/confirm", json={"token": token, "new_password": "short1"}
    )
    assert short.status_code == 422

    done = client.post(
        f"{V1}/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert done.status_code == 204, done.text
    again = client.post(
        f"{V1}/auth/password-reset/confirm", json={"token": token, "new_password": "another one 99"}
    )
    assert_error(again, 422, "invalid_reset_token")

    # Every session is over: access tokens, and both sign-ins' refresh tokens.
    assert_error(client.get(f"{V1}/users/me", headers=user["headers"]), 401, "token_revoked")
    for refresh in (user["refresh_token"], second_login.json()["refresh_token"]):
        refused = client.post(f"{V1}/auth/refresh", json={"refresh_token": refresh})
        assert refused.status_code == 401, refused.text
    old = client.post(f"{V1}/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert_error(old, 401, "invalid_credentials")
    new = client.post(f"{V1}/auth/login", json={"email": user["email"], "password": NEW_PASSWORD})
    assert new.status_code == 200, new.text
    assert [e["event_type"] for e in outbox_events(owner_engine, user["user"]["id"])][-2:] == [
        "user.password_reset_requested",
        "user.password_reset",
    ]


def test_unknown_address_is_answered_alike_and_sends_nothing(client, api, owner_engine) -> None:
    nobody = f"nobody-{uuid.uuid4().hex[:8]}@example.org"
    answer = client.post(f"{V1}/auth/password-reset", json={"email": nobody})
    assert answer.status_code == 202 and answer.content in (b"", b"null")
    with owner_engine.connect() as conn:
        from sqlalchemy import text as sql

        found = conn.execute(
            sql(
                "SELECT count(*) FROM outbox WHERE event_type = 'user.password_reset_requested' "
                "AND payload->>'email' = :e"
            ),
            {"e": nobody},
        ).scalar()
    assert found == 0
    assert_error(
        client.post(f"{V1}/auth/password-reset", json={"email": "not an address"}), 422,
        "invalid_email",
    )  # fmt: skip


def test_requests_for_one_account_are_spaced(client, api, owner_engine) -> None:
    user = api.register("impatient")
    for _ in range(3):
        assert (
            client.post(f"{V1}/auth/password-reset", json={"email": user["email"]}).status_code
            == 202
        )
    events = outbox_events(owner_engine, user["user"]["id"], "user.password_reset_requested")
    assert len(events) == 1


def test_reset_routes_are_throttled_like_sign_in(settings) -> None:
    """The credential limit per address (AQSTREAM_RATE_LIMIT_AUTH), counted in the real Redis."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    for path in ("/api/v1/auth/password-reset", "/api/v1/auth/password-reset/confirm"):
        assert _credential(path)
    limited = settings.model_copy(
        update={"rate_limit_auth": "2/minute", "rate_limit_enabled": True}
    )
    address = str(ipaddress.IPv6Address(uuid.uuid4().int))  # a counter of this test's own
    with TestClient(create_app(limited), client=(address, 40000)) as client:
        body = {"email": f"someone-{uuid.uuid4().hex[:8]}@example.org"}
        answers = [client.post(f"{V1}/auth/password-reset", json=body) for _ in range(3)]
        confirm = client.post(
            f"{V1}/auth/password-reset/confirm", json={"token": "x" * 43, "new_password": "p" * 12}
        )
    assert [a.status_code for a in answers] == [202, 202, 429]
    assert_error(answers[2], 429, "rate_limited")
    assert_error(confirm, 429, "rate_limited")
