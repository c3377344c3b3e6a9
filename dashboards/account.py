"""The pages the platform's e-mails link to, for people who need not be signed in: confirming an
e-mail address (``/verify-email?token=``, AQSTREAM_EMAIL_VERIFICATION_URL) and choosing a new
password (``/reset-password?token=``, AQSTREAM_PASSWORD_RESET_URL).

Opening a link changes nothing (mail scanners fetch links): the page shows a button or a form
that posts to this server (``/auth/verify-email``, ``/auth/reset-password``), which calls the API
and answers with a redirect, as the sign-in form does. The token goes from the form to the API
and nowhere else."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode

import dash_bootstrap_components as dbc
import flask
import httpx
from dash import dcc, html

from dashboards.client import ApiClient, ApiError

PATHS = ("/verify-email", "/reset-password")
TOKEN_MAX = 128

ERRORS = {
    "invalid_verification_token": "This link is invalid or expired, or your address has changed "
    "since it was sent. Sign in and ask for a new one.",
    "invalid_reset_token": "This link is invalid, expired or already used: ask for a new one.",
    "weak_password": "Choose a longer password (at least 8 characters).",
    "mismatch": "The two passwords differ.",
    "missing": "Fill in both fields.",
    "rate_limited": "Too many attempts: wait a few minutes and try again.",
    "api_unreachable": "The platform does not answer right now: try again shortly.",
}


def _query(search: str | None) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs((search or "").lstrip("?")).items() if v}


def _card(title: str, children: list) -> dbc.Row:
    return dbc.Row(
        dbc.Col(
            dbc.Card(
                dbc.CardBody([html.H1(title, className="h3 mb-3"), *children]),
                className="shadow-sm mt-5",
            ),
            md=6,
            lg=4,
        ),
        justify="center",
    )


def _error(query: dict[str, str], prefix: str):
    message = ERRORS.get(query.get("error", ""))
    return dbc.Alert(message, color="danger", id=f"{prefix}-error") if message else None


def page(pathname: str, search: str | None):
    """The page of ``pathname`` (one of ``PATHS``)."""
    query = _query(search)
    token = query.get("token", "")[:TOKEN_MAX]
    if pathname == "/verify-email":
        return _card(
            "Confirm your e-mail address",
            [
                _error(query, "verify"),
                html.P("Confirm the address this link was sent to: paid tickets need it."),
                html.Form(
                    [
                        dcc.Input(type="hidden", name="token", value=token),
                        html.Button(
                            "Confirm my address",
                            id="verify-submit",
                            type="submit",
                            className="btn btn-primary w-100",
                            disabled=not token,
                        ),
                    ],
                    method="POST",
                    action="/auth/verify-email",
                ),
            ],
        )
    return _card(
        "Choose a new password",
        [
            _error(query, "reset"),
            html.P("Setting it signs you out everywhere.", className="text-body-secondary"),
            html.Form(
                [
                    dcc.Input(type="hidden", name="token", value=token),
                    dbc.Label("New password", html_for="reset-password"),
                    dbc.Input(
                        id="reset-password",
                        name="password",
                        type="password",
                        autocomplete="new-password",
                        required=True,
                        minLength=8,
                        className="mb-3",
                    ),
                    dbc.Label("Once more", html_for="reset-again"),
                    dbc.Input(
                        id="reset-again",
                        name="again",
                        type="password",
                        autocomplete="new-password",
                        required=True,
                        className="mb-3",
                    ),
                    html.Button(
                        "Set the password",
                        id="reset-submit",
                        type="submit",
                        className="btn btn-primary w-100",
                        disabled=not token,
                    ),
                ],
                method="POST",
                action="/auth/reset-password",
            ),
        ],
    )


def _code(exc: ApiError) -> str:
    if exc.status == 429:
        return "rate_limited"
    if exc.status >= 500:
        return "api_unreachable"
    return exc.code


def _back(path: str, code: str, token: str | None = None) -> flask.Response:
    query = {"error": code} | ({"token": token} if token else {})
    return flask.redirect(f"{path}?{urlencode(query)}", code=303)


def _done(message: str) -> flask.Response:
    return flask.redirect(f"/signin?{urlencode({'message': message})}", code=303)


def install(server: flask.Flask, http: httpx.Client) -> None:
    """The two form targets on the dashboards' server."""

    def verify() -> flask.Response:
        token = flask.request.form.get("token", "")[:TOKEN_MAX]
        if not token:
            return _back("/verify-email", "invalid_verification_token")
        try:
            ApiClient(http, None).post("/auth/email-verification/confirm", {"token": token})
        except ApiError as exc:
            return _back("/verify-email", _code(exc), token if exc.status >= 429 else None)
        return _done("email_verified")

    def reset() -> flask.Response:
        form = flask.request.form
        token = form.get("token", "")[:TOKEN_MAX]
        password, again = form.get("password", ""), form.get("again", "")
        if not password or not again:
            return _back("/reset-password", "missing", token)
        if password != again:
            return _back("/reset-password", "mismatch", token)
        try:
            ApiClient(http, None).post(
                "/auth/password-reset/confirm", {"token": token, "new_password": password}
            )
        except ApiError as exc:
            # A refused password (too short for the schema or the rules) leaves the link usable.
            code = "weak_password" if exc.code == "validation_error" else _code(exc)
            keep = code == "weak_password" or exc.status >= 429
            return _back("/reset-password", code, token if keep else None)
        return _done("password_reset")

    server.add_url_rule("/auth/verify-email", "aq_verify_email", verify, methods=["POST"])
    server.add_url_rule("/auth/reset-password", "aq_reset_password", reset, methods=["POST"])
