"""Signing in and out: Flask routes of the Dash server, and the session cookies.

The API's access token (15 minutes) and refresh token live in HttpOnly, SameSite=Lax cookies, so
no script of the page ever sees them; callbacks read them server-side. An access token about to
expire is traded for a new pair before the request is handled; refresh tokens work once, so
requests arriving together with the same old token share one refresh (``_Refresher``).

Every API call made while serving a browser carries the browser's address, signed with the
secret the API shares with the dashboards (``AQSTREAM_DASHBOARDS_CLIENT_SECRET``), so the API's
per-address limits count each browser, not the dashboards' one address for all of them.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import flask
import httpx
import jwt

from core.logging import get_logger
from dashboards import format as fmt
from dashboards.client import NOT_SIGNED_IN, ApiClient, ApiError, Tokens, Unauthorized

log = get_logger(__name__)

ACCESS_COOKIE = "aq_access"
REFRESH_COOKIE = "aq_refresh"
LOCALE_COOKIE = "aq_locale"  # the signed-in user's locale (GET /users/me), read at sign-in
REFRESH_MARGIN_S = 30  # refresh an access token that expires sooner than this
SESSION_MAX_AGE_S = 30 * 24 * 3600  # as long as the API's refresh token lives

MESSAGES = {
    "invalid_credentials": "Wrong e-mail or password.",
    "rate_limited": "Too many attempts: wait a few minutes and try again.",
    "expired": "Your session has ended: please sign in again.",
    "signed_out": "You are signed out.",
    "missing": "Enter your e-mail and password.",
    "api_unreachable": "The platform does not answer right now: try again shortly.",
    "email_verified": "Your e-mail address is confirmed: paid tickets are open to you.",
    "password_reset": "Your new password is set: sign in with it.",
}
# Said in blue, not red.
INFO_MESSAGES = frozenset({"signed_out", "email_verified", "password_reset"})


def token_expiry(token: str | None) -> float | None:
    """The ``exp`` of a JWT, read without verifying (the API verifies; this only schedules)."""
    if not token:
        return None
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    exp = claims.get("exp")
    return float(exp) if isinstance(exp, int | float) else None


def safe_next(target: str | None) -> str:
    """Only a path of this site: never ``//host`` or an absolute URL (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _next_of(referrer: str | None) -> str | None:
    """The ``next`` of the sign-in page the form was posted from (a form rendered before its
    page knew its address carries none)."""
    if not referrer:
        return None
    return (parse_qs(urlsplit(referrer).query).get("next") or [None])[0]


class _Refresher:
    """One refresh per refresh token in this process: concurrent callers get the same pair."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done: dict[str, tuple[float, Tokens]] = {}

    def refresh(self, client: ApiClient, refresh_token: str) -> Tokens:
        with self._lock:
            now = time.monotonic()
            self._done = {k: v for k, v in self._done.items() if now - v[0] < 60}
            if refresh_token in self._done:
                return self._done[refresh_token][1]
            tokens = client.refresh(refresh_token)
            self._done[refresh_token] = (now, tokens)
            return tokens


def client_signature(secret: bytes, address: str, stamp: int) -> str:
    """What the API checks (api/middleware/ratelimit.py): ``<unix time>:<hex HMAC-SHA256(secret,
    "<unix time>:<address>")>``."""
    mac = hmac.new(secret, f"{stamp}:{address}".encode(), hashlib.sha256).hexdigest()
    return f"{stamp}:{mac}"


class Sessions:
    """Installs the sign-in, sign-out and refresh handling on the Dash server (Flask)."""

    def __init__(
        self, http: httpx.Client, *, secure: bool, client_secret: str | None = None
    ) -> None:
        self.http = http
        self.secure = secure
        self.refresher = _Refresher()
        self.client_secret = client_secret.encode() if client_secret else None
        if self.client_secret is not None:
            hooks = http.event_hooks
            hooks["request"] = [*hooks.get("request", []), self._forward_browser]
            http.event_hooks = hooks

    def _forward_browser(self, request: httpx.Request) -> None:
        """Sign the address of the browser being served into an API call made for it."""
        if self.client_secret is None or not flask.has_request_context():
            return
        address = flask.request.remote_addr
        if not address:
            return
        signature = client_signature(self.client_secret, address, int(time.time()))
        request.headers["X-AqStream-Client-IP"] = address
        request.headers["X-AqStream-Client-Signature"] = signature

    # --- per request ------------------------------------------------------------------------

    def client(self) -> ApiClient:
        """The API as the user of the current request (``Unauthorized`` if nobody signed in)."""
        token = flask.g.get("aq_access") or flask.request.cookies.get(ACCESS_COOKIE)
        if not token:
            raise Unauthorized(401, NOT_SIGNED_IN, "Sign in first")
        return ApiClient(self.http, token)

    def _locale(self) -> None:
        """The locale of this request's rendering: the user's, else the browser's, else
        English (dashboards/format.py ``choose``)."""
        fmt.activate(
            fmt.choose(
                flask.request.cookies.get(LOCALE_COOKIE),
                flask.request.headers.get("Accept-Language"),
            )
        )

    def _before(self) -> None:
        self._locale()
        access = flask.request.cookies.get(ACCESS_COOKIE)
        refresh = flask.request.cookies.get(REFRESH_COOKIE)
        expiry = token_expiry(access)
        if not refresh or (expiry is not None and expiry - time.time() > REFRESH_MARGIN_S):
            return
        try:
            tokens = self.refresher.refresh(ApiClient(self.http, None), refresh)
        except Unauthorized:
            flask.g.aq_clear = True  # refresh token spent or revoked: the session is over
            return
        except ApiError as exc:  # API down: keep the cookies, callbacks will say so
            log.warning("dashboards_refresh_failed", code=exc.code)
            return
        flask.g.aq_access, flask.g.aq_new = tokens.access_token, tokens

    def _after(self, response: flask.Response) -> flask.Response:
        tokens = flask.g.get("aq_new")
        if tokens is not None:
            self.set_cookies(response, tokens)
        elif flask.g.get("aq_clear"):
            self.clear_cookies(response)
        return response

    def _cookie_options(self) -> dict:
        return {
            "httponly": True,
            "samesite": "Lax",
            "secure": self.secure,
            "path": "/",
            "max_age": SESSION_MAX_AGE_S,
        }

    def set_cookies(self, response: flask.Response, tokens: Tokens) -> None:
        options = self._cookie_options()
        response.set_cookie(ACCESS_COOKIE, tokens.access_token, **options)
        if tokens.refresh_token:
            response.set_cookie(REFRESH_COOKIE, tokens.refresh_token, **options)

    def clear_cookies(self, response: flask.Response) -> None:
        for name in (ACCESS_COOKIE, REFRESH_COOKIE, LOCALE_COOKIE):
            response.delete_cookie(name, path="/", httponly=True, samesite="Lax")

    # --- routes -----------------------------------------------------------------------------

    def login(self) -> flask.Response:
        form = flask.request.form
        email, password = form.get("email", "").strip(), form.get("password", "")
        target = safe_next(form.get("next") or _next_of(flask.request.referrer))
        if not email or not password:
            return self._back_to_signin("missing", target)
        try:
            tokens = ApiClient(self.http, None).login(email, password)
        except ApiError as exc:
            code = exc.code if exc.code in MESSAGES else "invalid_credentials"
            if exc.status == 429:
                code = "rate_limited"
            elif exc.status >= 500:
                code = "api_unreachable"
            return self._back_to_signin(code, target)
        response = flask.redirect(target, code=303)
        self.set_cookies(response, tokens)
        try:
            locale = ApiClient(self.http, tokens.access_token).me().get("locale")
        except ApiError as exc:  # the browser's language serves until the next sign-in
            log.info("dashboards_locale_unknown", code=exc.code)
        else:
            if locale:
                response.set_cookie(LOCALE_COOKIE, locale, **self._cookie_options())
        return response

    def logout(self) -> flask.Response:
        access = flask.request.cookies.get(ACCESS_COOKIE)
        refresh = flask.request.cookies.get(REFRESH_COOKIE)
        if access and refresh:
            try:  # the cookies go whatever the API says: signing out must always work here
                ApiClient(self.http, access).logout(refresh)
            except ApiError as exc:
                log.info("dashboards_logout_not_revoked", code=exc.code)
        response = flask.redirect("/signin?" + urlencode({"message": "signed_out"}), code=303)
        self.clear_cookies(response)
        return response

    def _back_to_signin(self, code: str, target: str) -> flask.Response:
        query = f"message={code}" + (f"&next={quote(target)}" if target != "/" else "")
        return flask.redirect(f"/signin?{query}", code=303)

    def install(self, server: flask.Flask) -> None:
        server.before_request(self._before)
        server.after_request(self._after)
        server.add_url_rule("/auth/login", "aq_login", self.login, methods=["POST"])
        server.add_url_rule("/auth/logout", "aq_logout", self.logout, methods=["POST"])

        @server.get("/health")
        def health() -> flask.Response:
            return flask.jsonify({"status": "ok"})
