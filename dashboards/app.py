"""The organizers' Dash app (``aqstream dashboards``): sign-in, the organization switcher, and the
pages (overview, event dashboard, exports). It reads nothing but the REST API, as the signed-in
user (dashboards/session.py), so the API's tenancy and roles are the dashboards' too."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

import dash_bootstrap_components as dbc
import httpx
from dash import Dash, Input, Output, State, dcc, html, no_update
from flask import Response, request

from core.settings import Settings
from dashboards import (
    account,
    console_attendees,
    console_events,
    console_messages,
    console_orgs,
    console_team,
    door,
    event,
    exports,
    overview,
)
from dashboards.client import ApiError, Unauthorized
from dashboards.components import api_problem, empty_state, loading_state
from dashboards.session import INFO_MESSAGES, MESSAGES, Sessions, safe_next

ASSETS = Path(__file__).with_name("assets")
EVENT_PATH = re.compile(r"^/events/([0-9a-fA-F-]{36})$")
ROLE_LABELS = {"owner": "Owner", "moderator": "Moderator", "analyst": "Analyst · read-only"}


def api_url(settings: Settings) -> str:
    if settings.dashboards_api_url:
        return settings.dashboards_api_url.rstrip("/")
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::") else settings.api_host
    return f"http://{host}:{settings.api_port}"


# --- sign-in ---------------------------------------------------------------------------------------


def signin_page(search: str | None):
    """A plain form posted to the server's /auth/login: the token never reaches the page."""
    query = parse_qs((search or "").lstrip("?"))
    message = MESSAGES.get((query.get("message") or [""])[0])
    target = safe_next((query.get("next") or ["/"])[0])
    colour = "info" if (query.get("message") or [""])[0] in INFO_MESSAGES else "danger"
    return dbc.Row(
        dbc.Col(
            dbc.Card(
                dbc.CardBody(
                    [
                        html.H1("Sign in", className="h3 mb-1"),
                        html.P(
                            "Organizer dashboards: use your AqStream account.",
                            className="text-body-secondary",
                        ),
                        dbc.Alert(message, color=colour, id="signin-message") if message else None,
                        html.Form(
                            [
                                dbc.Label("E-mail", html_for="signin-email"),
                                dbc.Input(
                                    id="signin-email",
                                    name="email",
                                    type="email",
                                    autocomplete="username",
                                    required=True,
                                    className="mb-3",
                                ),
                                dbc.Label("Password", html_for="signin-password"),
                                dbc.Input(
                                    id="signin-password",
                                    name="password",
                                    type="password",
                                    autocomplete="current-password",
                                    required=True,
                                    className="mb-3",
                                ),
                                dcc.Input(type="hidden", name="next", value=target)
                                if target != "/"
                                else None,
                                html.Button(
                                    "Sign in",
                                    id="signin-submit",
                                    type="submit",
                                    className="btn btn-primary w-100",
                                ),
                            ],
                            method="POST",
                            action="/auth/login",
                        ),
                    ]
                ),
                className="shadow-sm mt-5",
            ),
            md=6,
            lg=4,
        ),
        justify="center",
    )


# --- the shell -------------------------------------------------------------------------------------


def navbar():
    return dbc.Navbar(
        dbc.Container(
            [
                dbc.NavbarBrand("AqStream", href="/", className="fw-bold"),
                dbc.Nav(
                    [
                        dbc.NavItem(dbc.NavLink("Overview", href="/", id="nav-overview")),
                        dbc.NavItem(dbc.NavLink("Exports", href="/exports", id="nav-exports")),
                        dbc.NavItem(dbc.NavLink("Team", href=console_team.PATH, id="nav-team")),
                    ],
                    className="me-auto",
                    navbar=True,
                ),
                html.Div(
                    [
                        html.Label(
                            "Organization", htmlFor="org-switch", className="visually-hidden"
                        ),
                        dcc.Dropdown(
                            id="org-switch",
                            clearable=False,
                            searchable=False,
                            placeholder="Organization",
                            style={"minWidth": "14rem"},
                        ),
                        dbc.Badge(id="role-badge", color="light", text_color="dark"),
                        html.Span(id="user-name", className="text-white small"),
                        html.Form(
                            html.Button(
                                "Sign out",
                                id="signout",
                                type="submit",
                                className="btn btn-outline-light btn-sm",
                            ),
                            method="POST",
                            action="/auth/logout",
                            className="m-0",
                        ),
                    ],
                    className="d-flex align-items-center gap-2 flex-wrap",
                ),
            ],
            fluid=True,
        ),
        color="primary",
        dark=True,
        className="mb-4",
        id="navbar",
    )


def shell():
    return html.Div(
        [
            dcc.Location(id="url"),
            dcc.Store(id="orgs"),
            dcc.Store(id="org-memory", storage_type="local"),
            html.Div(id="shell-redirect"),
            html.Div(navbar(), id="navbar-wrap", style={"display": "none"}),
            dbc.Container(loading_state(), id="page", fluid="xl", className="pb-5"),
        ]
    )


def choose_org(orgs: list[dict], search: str | None, remembered: str | None) -> str | None:
    """The organization to show: ``?org=`` of the address, else the last one chosen here,
    else the first; never one the user is not a member of."""
    ids = [o["id"] for o in orgs]
    asked = (parse_qs((search or "").lstrip("?")).get("org") or [None])[0]
    for candidate in (asked, remembered):
        if candidate in ids:
            return candidate
    return ids[0] if ids else None


def page_for(pathname: str, search: str | None, org_id: str | None, orgs: list[dict], sessions,
             refresh_s: float):  # fmt: skip
    """The page of an address, for the chosen organization."""
    if pathname == "/signin":
        return signin_page(search)
    if pathname in account.PATHS:  # an e-mail's link: no session needed
        return account.page(pathname, search)
    if orgs is None:
        return loading_state()
    if pathname in console_orgs.PATHS:  # no organization needed: this is how one is founded
        return console_orgs.page(sessions, pathname, search)
    if not orgs:
        return html.Div(
            [
                empty_state(
                    "No organization yet",
                    "Dashboards show the events of organizations you belong to. Ask an owner "
                    "for an invitation, or found your own.",
                ),
                html.Div(
                    dcc.Link(
                        "Found an organization",
                        href=console_orgs.NEW_PATH,
                        id="found-org",
                        className="btn btn-primary",
                    ),
                    className="text-center",
                ),
            ]
        )
    org = next((o for o in orgs if o["id"] == org_id), None)
    if org is None:
        return loading_state()
    if match := EVENT_PATH.match(pathname):
        return event.layout(match.group(1), refresh_s)
    if match := door.PATH.match(pathname):
        return door.page(sessions, match.group(1), orgs, refresh_s)
    if match := console_attendees.PATH.match(pathname):
        return console_attendees.page(sessions, match.group(1), orgs)
    if match := console_messages.PATH.match(pathname):
        return console_messages.page(sessions, match.group(1), orgs, refresh_s)
    if pathname == console_team.PATH:
        try:
            return console_team.page(sessions.client(), org)
        except ApiError as exc:
            return api_problem(exc, pathname)
    if pathname == console_events.NEW_PATH or console_events.PATH.match(pathname):
        return console_page(pathname, org, orgs, search, sessions)
    if pathname == "/exports":
        try:
            events = sessions.client().organization_events(org["id"])
        except ApiError as exc:
            return api_problem(exc, pathname)
        return exports.layout(org, events, org["role"], datetime.now(UTC).date())
    if pathname in ("/", ""):
        return overview.layout(org)
    return empty_state("Not found", "There is no page at this address.", icon="?")


def console_page(pathname: str, org: dict, orgs: list[dict], search: str | None, sessions):
    """Events and tickets: a new event of the chosen organization, or one event's settings."""
    try:
        client = sessions.client()
    except ApiError as exc:
        return api_problem(exc, pathname)
    if pathname == console_events.NEW_PATH:
        return console_events.new_page(client, org, search)
    event_id = console_events.PATH.match(pathname).group(1)
    api_base = str(sessions.http.base_url).rstrip("/")
    return console_events.manage_page(client, event_id, orgs, search, api_base, datetime.now(UTC))


def load_shell(sessions, pathname: str | None, search: str | None, remembered: str | None,
               current: str | None):  # fmt: skip
    """The user's organizations (with roles), the switcher's options and choice, the user's name
    and the navbar; without a session, the way to sign in."""
    if pathname is None:  # the address is not known yet: nothing to decide (not even sign-in)
        return (no_update,) * 6
    if pathname == "/signin" or pathname in account.PATHS:
        return None, [], None, "", {"display": "none"}, None
    try:
        client = sessions.client()
        me = client.me()
        orgs = client.organizations()
    except Unauthorized as exc:
        return (no_update,) * 5 + (api_problem(exc, pathname or "/"),)
    except ApiError as exc:
        return [], [], None, "", {}, api_problem(exc, pathname or "/")
    orgs = [{"id": o["id"], "name": o["name"], "role": o["role"]} for o in orgs]
    options = [{"label": o["name"], "value": o["id"]} for o in orgs]
    # The address's ?org= first, then the one shown (navigating keeps it), the remembered one,
    # the first.
    shown = current if current in {o["id"] for o in orgs} else remembered
    chosen = choose_org(orgs, search, shown)
    value = no_update if chosen == current else chosen
    return orgs, options, value, me.get("display_name") or me.get("email"), {}, None


def create_app(settings: Settings | None = None) -> Dash:
    settings = settings or Settings()
    http = httpx.Client(base_url=api_url(settings), timeout=15)
    secret = settings.dashboards_client_secret
    sessions = Sessions(
        http,
        secure=settings.dashboards_cookie_secure,
        client_secret=secret.get_secret_value() if secret else None,
    )
    app = Dash(
        __name__,
        title="AqStream dashboards",
        assets_folder=str(ASSETS),
        # assets/vendor/ (the door's QR decoder) is loaded when needed, not on every page.
        assets_path_ignore=["vendor"],
        suppress_callback_exceptions=True,
        update_title=None,  # no "Updating..." tab title at every refresh
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    app.layout = shell
    sessions.install(app.server)
    account.install(app.server, sessions.http)
    app.server.config["aq_sessions"] = sessions

    @app.callback(
        Output("orgs", "data"),
        Output("org-switch", "options"),
        Output("org-switch", "value"),
        Output("user-name", "children"),
        Output("navbar-wrap", "style"),
        Output("shell-redirect", "children"),
        Input("url", "pathname"),
        Input("url", "search"),  # an Input: it may arrive after the pathname
        State("org-memory", "data"),
        State("org-switch", "value"),
    )
    def shell_callback(pathname, search, remembered, current):
        return load_shell(sessions, pathname, search, remembered, current)

    @app.callback(
        Output("org-memory", "data"),
        Output("role-badge", "children"),
        Input("org-switch", "value"),
        State("orgs", "data"),
    )
    def remember_org(org_id, orgs):
        role = next((o["role"] for o in orgs or [] if o["id"] == org_id), None)
        return org_id, ROLE_LABELS.get(role, "")

    @app.callback(
        Output("page", "children"),
        Input("url", "pathname"),
        Input("org-switch", "value"),
        Input("url", "search"),
        State("orgs", "data"),
    )
    def render_page(pathname, org_id, search, orgs):
        from dash import ctx

        on_event = EVENT_PATH.match(pathname or "") or door.PATH.match(pathname or "")
        on_event = on_event or console_events.PATH.match(pathname or "")
        on_event = on_event or console_attendees.PATH.match(pathname or "")
        on_event = on_event or console_messages.PATH.match(pathname or "")
        if ctx.triggered_id == "org-switch" and on_event:
            # Another organization: its overview (this event belongs to the previous one).
            return dcc.Location(id="to-overview", href="/", refresh=False)
        if pathname is None:  # the address is not known yet
            return loading_state()
        return page_for(pathname, search, org_id, orgs, sessions, settings.dashboards_refresh_s)

    overview.register(app, sessions)
    event.register(app, sessions)
    exports.register(app, sessions)
    door.register(app, sessions)
    console_events.register(app, sessions)
    console_attendees.register(app, sessions)
    console_team.register(app, sessions)
    console_messages.register(app, sessions)
    console_orgs.register(app, sessions)
    install_security_headers(app, settings)
    return app


def content_security_policy(app: Dash) -> str:
    """Everything from this server; Dash's inline renderer script allowed by its hash, not by
    'unsafe-inline'; styles inline too (React and Plotly set them); never framed."""
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self' " + " ".join(app.csp_hashes()),
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def install_security_headers(app: Dash, settings: Settings) -> None:
    """On every response: no MIME sniffing, no framing (clickjacking), the CSP above, and HSTS
    behind TLS (the ``behind_tls`` setting, or a request that came over https)."""
    csp = content_security_policy(app)
    hsts = f"max-age={settings.hsts_max_age_s}; includeSubDomains"

    @app.server.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Content-Security-Policy", csp)
        if settings.behind_tls or request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", hsts)
        return response


def serve(settings: Settings) -> None:
    """Serve the app on ``dashboards_host:dashboards_port`` with waitress, a production WSGI
    server (a pool of threads: callbacks mostly wait on the API)."""
    from waitress import serve as waitress_serve

    app = create_app(settings)
    waitress_serve(
        app.server,
        host=settings.dashboards_host,
        port=settings.dashboards_port,
        threads=8,
        ident="aqstream-dashboards",
    )
