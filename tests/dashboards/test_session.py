"""Signing in and out through the Dash server's Flask routes, against the real API (no browser):
cookies, redirects, refresh before expiry, one refresh per token, sign-out revokes."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import jwt
import pytest

from dashboards import format as fmt
from dashboards.app import create_app
from dashboards.session import (
    ACCESS_COOKIE,
    LOCALE_COOKIE,
    REFRESH_COOKIE,
    safe_next,
    token_expiry,
)
from tests.dashboards.conftest import PASSWORD

# Fresh per run: the API throttles sign-ins per account, and the test Redis outlives a run.
NOBODY = f"nobody-{uuid.uuid4().hex[:8]}@example.org"


@pytest.fixture(scope="module")
def server(dash_settings):
    return create_app(dash_settings).server


@pytest.fixture
def user(api) -> dict:
    return api.register("dash-user")


def login(web, email: str, password: str = PASSWORD, next_: str = "/"):
    return web.post("/auth/login", data={"email": email, "password": password, "next": next_})


def cookie_header(response, name: str) -> str:
    return next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{name}="))


def expired_token() -> str:
    return jwt.encode({"sub": "x", "exp": int(time.time()) - 60}, "k" * 32, "HS256")


def test_sign_in_sets_http_only_lax_cookies_and_goes_where_asked(server, user, live_api) -> None:
    web = server.test_client()
    response = login(web, user["email"], next_="/exports?org=1")
    assert response.status_code == 303 and response.headers["Location"] == "/exports?org=1"
    for name in (ACCESS_COOKIE, REFRESH_COOKIE):
        header = cookie_header(response, name)
        assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header
        assert "Secure" not in header  # AQSTREAM_DASHBOARDS_COOKIE_SECURE is off here
    token = web.get_cookie(ACCESS_COOKIE).value
    me = httpx.get(f"{live_api}/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["email"] == user["email"]


def test_sign_in_keeps_the_users_locale_for_formatting(server, user, monkeypatch) -> None:
    """The locale of GET /users/me rides in a cookie; each request formats by it, else by the
    browser's Accept-Language, else in English."""
    web = server.test_client()
    response = login(web, user["email"])
    assert "HttpOnly" in cookie_header(response, LOCALE_COOKIE)
    assert web.get_cookie(LOCALE_COOKIE).value == "en"  # what the API has for a new account

    comma = fmt.Locale("xx", ",", ".", "{amount} {symbol}", "{number} %")
    monkeypatch.setitem(fmt.LOCALES, "xx", comma)

    def chosen(**headers) -> fmt.Locale:
        with server.test_request_context("/", headers=headers):
            server.preprocess_request()
            return fmt.current()

    assert chosen(Cookie=f"{LOCALE_COOKIE}=xx", **{"Accept-Language": "en"}) is comma
    assert chosen(Cookie=f"{LOCALE_COOKIE}=ru", **{"Accept-Language": "xx-YY, en"}) is comma
    assert chosen(**{"Accept-Language": "de, en;q=0.5"}).tag == "en"
    assert chosen().tag == "en"


def test_without_a_next_field_the_sign_in_pages_address_says_where_to(server, user) -> None:
    web = server.test_client()
    response = web.post(
        "/auth/login",
        data={"email": user["email"], "password": PASSWORD},
        headers={"Referer": "http://localhost/signin?message=expired&next=%2Fexports%3Forg%3D1"},
    )
    assert response.status_code == 303 and response.headers["Location"] == "/exports?org=1"
    evil = web.post(
        "/auth/login",
        data={"email": user["email"], "password": PASSWORD},
        headers={"Referer": "http://localhost/signin?next=//evil.example"},
    )
    assert evil.headers["Location"] == "/"


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [("{email}", "wrong password!", "invalid_credentials"), (NOBODY, PASSWORD,
     "invalid_credentials"), ("", "", "missing"), ("{email}", "", "missing")],
)  # fmt: skip
def test_a_failed_sign_in_sets_nothing(server, user, email, password, message) -> None:
    web = server.test_client()
    response = login(web, email.format(email=user["email"]), password, next_="/exports")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/signin?message={message}&next=/exports"
    assert not response.headers.getlist("Set-Cookie")


@pytest.mark.parametrize(
    ("target", "safe"),
    [("/events/1", "/events/1"), ("//evil.example", "/"), ("https://evil.example/", "/"),
     ("/\\evil.example", "/"), ("", "/"), (None, "/"), ("events", "/")],
)  # fmt: skip
def test_only_local_paths_are_followed_after_sign_in(target, safe) -> None:
    assert safe_next(target) == safe


def test_an_expiring_token_is_refreshed_once_for_concurrent_requests(server, user) -> None:
    web = server.test_client()
    login(web, user["email"])
    refresh = web.get_cookie(REFRESH_COOKIE).value
    web.set_cookie(ACCESS_COOKIE, expired_token())

    answers = []

    def hit() -> None:
        other = server.test_client()
        other.set_cookie(ACCESS_COOKIE, expired_token())
        other.set_cookie(REFRESH_COOKIE, refresh)
        answers.append(other.get("/health"))

    threads = [threading.Thread(target=hit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    new = {cookie_header(a, ACCESS_COOKIE) for a in answers}
    assert len(new) == 1  # one refresh; the same new pair for every request that raced
    assert all(a.status_code == 200 for a in answers)
    fresh = new.pop().split(";")[0].split("=", 1)[1]
    assert token_expiry(fresh) > time.time() + 60


def test_a_spent_refresh_token_ends_the_session(server, user, live_api) -> None:
    web = server.test_client()
    login(web, user["email"])
    refresh = web.get_cookie(REFRESH_COOKIE).value
    spent = httpx.post(f"{live_api}/api/v1/auth/refresh", json={"refresh_token": refresh})
    assert spent.status_code == 200
    web.set_cookie(ACCESS_COOKIE, expired_token())
    response = web.get("/health")
    cleared = cookie_header(response, ACCESS_COOKIE)
    assert cleared.startswith(f"{ACCESS_COOKIE}=;") and "Expires=Thu, 01 Jan 1970" in cleared


def test_sign_out_clears_the_cookies_and_revokes_the_refresh_token(server, user, live_api) -> None:
    web = server.test_client()
    login(web, user["email"])
    refresh = web.get_cookie(REFRESH_COOKIE).value
    response = web.post("/auth/logout")
    assert response.status_code == 303
    assert response.headers["Location"] == "/signin?message=signed_out"
    assert web.get_cookie(ACCESS_COOKIE) is None and web.get_cookie(REFRESH_COOKIE) is None
    again = httpx.post(f"{live_api}/api/v1/auth/refresh", json={"refresh_token": refresh})
    assert again.status_code == 401


def test_sign_out_without_a_session_still_lands_on_sign_in(server) -> None:
    response = server.test_client().post("/auth/logout")
    assert response.status_code == 303 and response.headers["Location"].startswith("/signin")


def test_the_dash_server_answers_health(server) -> None:
    assert server.test_client().get("/health").json == {"status": "ok"}
