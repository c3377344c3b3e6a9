"""The pages the e-mails link to (dashboards/account.py), through the Dash server's Flask routes
against the real API (no browser): opening a link changes nothing, the form's post does, and the
answer is a redirect to the sign-in page's message or back to the page with the reason."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from dashboards import account
from dashboards.app import create_app
from domain.identity import email_verification, password_reset
from tests.dashboards.conftest import PASSWORD
from tests.notification.conftest import outbox_events


@pytest.fixture(scope="module")
def server(dash_settings):
    return create_app(dash_settings).server


def _where(response) -> tuple[str, dict[str, str]]:
    assert response.status_code == 303, response.data
    location = urlsplit(response.headers["Location"])
    return location.path, {k: v[0] for k, v in parse_qs(location.query).items()}


def _me(live_api: str, user: dict) -> dict:
    return httpx.get(f"{live_api}/api/v1/users/me", headers=user["headers"]).json()


def _components(tree) -> list:
    """Every component of a layout, depth first."""
    found, stack = [], [tree]
    while stack:
        node = stack.pop()
        if node is None or isinstance(node, str | int | float):
            continue
        if isinstance(node, list | tuple):
            stack.extend(node)
            continue
        found.append(node)
        stack.append(getattr(node, "children", None))
    return found


def test_the_pages_carry_the_token_to_a_form_that_posts_here() -> None:
    for path, action in (("/verify-email", "/auth/verify-email"),
                         ("/reset-password", "/auth/reset-password")):  # fmt: skip
        parts = _components(account.page(path, "?token=abc_-123"))
        [form] = [c for c in parts if type(c).__name__ == "Form"]
        assert (form.method, form.action) == ("POST", action)
        tokens = [c for c in parts if getattr(c, "name", None) == "token"]
        assert [t.value for t in tokens] == ["abc_-123"]
        # Without a token there is nothing to send.
        bare = _components(account.page(path, ""))
        assert all(c.disabled for c in bare if getattr(c, "type", None) == "submit")


def test_confirming_an_address_from_its_link(server, api, settings, live_api) -> None:
    user = api.register("linked", verified=False)
    key = email_verification.signing_key(settings.ticket_signing_key.get_secret_value())
    token = email_verification.token_for(
        key, uuid.UUID(user["user"]["id"]), user["email"], datetime.now(UTC) + timedelta(hours=1)
    )
    web = server.test_client()
    # Opening the link (a GET, as a mail scanner does) confirms nothing.
    assert web.get(f"/verify-email?token={token}").status_code == 200
    assert _me(live_api, user)["email_verified_at"] is None
    path, query = _where(web.post("/auth/verify-email", data={"token": token[:-2] + "xx"}))
    assert (path, query) == ("/verify-email", {"error": "invalid_verification_token"})
    assert _me(live_api, user)["email_verified_at"] is None
    path, query = _where(web.post("/auth/verify-email", data={"token": token}))
    assert (path, query) == ("/signin", {"message": "email_verified"})
    assert _me(live_api, user)["email_verified_at"] is not None


def test_choosing_a_new_password_from_the_reset_link(
    server, client, api, settings, owner_engine, live_api
) -> None:
    user = api.register("resetting")
    asked = client.post("/api/v1/auth/password-reset", json={"email": user["email"]})
    assert asked.status_code == 202
    [event] = outbox_events(owner_engine, user["user"]["id"], "user.password_reset_requested")
    key = password_reset.signing_key(settings.ticket_signing_key.get_secret_value())
    token = password_reset.token_for(key, uuid.UUID(event["payload"]["reset_id"]))
    web = server.test_client()
    mismatch = web.post(
        "/auth/reset-password", data={"token": token, "password": "one two three", "again": "x"}
    )
    assert _where(mismatch) == ("/reset-password", {"error": "mismatch", "token": token})
    weak = web.post("/auth/reset-password", data={"token": token, "password": "s", "again": "s"})
    assert _where(weak) == ("/reset-password", {"error": "weak_password", "token": token})
    new = "a brand new secret 42"
    done = web.post("/auth/reset-password", data={"token": token, "password": new, "again": new})
    assert _where(done) == ("/signin", {"message": "password_reset"})
    signed_in = httpx.post(
        f"{live_api}/api/v1/auth/login", json={"email": user["email"], "password": new}
    )
    assert signed_in.status_code == 200
    old = httpx.post(
        f"{live_api}/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD}
    )
    assert old.status_code == 401
    # The link works once.
    again = web.post("/auth/reset-password", data={"token": token, "password": new, "again": new})
    assert _where(again) == ("/reset-password", {"error": "invalid_reset_token"})
