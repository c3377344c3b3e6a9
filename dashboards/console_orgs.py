"""Founding an organization without curl: the request, its review, the founding.

The platform's way (docs/tenancy.md): a user asks for an organization (``POST
/organization-requests``), a platform administrator approves or rejects it, and the requester
founds it (``POST /organizations`` with the request), becoming its owner. ``/organizations/new``
is the requester's side: the request form (the address name suggested from the name) and the
user's requests with their answers, an approved one with a button that founds it and opens its
overview. ``/admin/organization-requests`` is the administrators' side: the pending requests,
each approved or rejected with an optional comment. Every step is one API call as the signed-in
user; a refused one changes nothing and its reason appears where it belongs.
"""

from __future__ import annotations

import uuid
from typing import Any

import dash_bootstrap_components as dbc
from dash import ALL, Dash, Input, Output, State, ctx, dcc, html, no_update
from slugify import slugify

from dashboards import format as fmt
from dashboards.client import ApiClient, ApiError, Unauthorized
from dashboards.components import api_problem, empty_state, not_found

NEW_PATH = "/organizations/new"
REVIEW_PATH = "/admin/organization-requests"
PATHS = (NEW_PATH, REVIEW_PATH)
FIELDS = ("name", "slug", "description")
SLUG_HINT = "3-64 lower-case letters, digits and inner hyphens: the organization's address name"
STATUS_COLOURS = {"pending": "warning", "approved": "success", "rejected": "danger"}
DONE = {
    "requested": "Request sent: a platform administrator reviews it; its answer appears below.",
    "reviewed": "Answer saved.",
}


def suggested_slug(name: str | None) -> str:
    """The address name a name suggests (transliterated: "Клуб «Книжный»" -> "klub-knizhnyi");
    empty when nothing usable is left."""
    slug = slugify(name or "", max_length=64, word_boundary=True)
    return slug if len(slug) >= 3 else ""


def request_body(name: str | None, slug: str | None, description: str | None) -> dict:
    """The API's ``OrganizationRequestCreate`` from the form: the slug typed, else suggested."""
    name = (name or "").strip()
    body: dict[str, Any] = {"name": name, "slug": (slug or "").strip() or suggested_slug(name)}
    if (description or "").strip():
        body["description"] = description.strip()
    return body


def request_errors(exc: ApiError) -> dict[str, str]:
    """A refusal at the inputs it concerns: a 422's ``details[].loc``; a taken address name."""
    out: dict[str, str] = {}
    if isinstance(exc.details, list):
        for item in exc.details:
            loc = [str(p) for p in (item.get("loc") or []) if p != "body"]
            if loc and loc[0] in FIELDS:
                message = (item.get("msg") or exc.message).removeprefix("Value error, ")
                out.setdefault(loc[0], SLUG_HINT if loc[0] == "slug" else message)
    elif exc.code in ("invalid_slug", "slug_taken", "organization_exists"):
        out["slug"] = exc.message
    return out


def founded_by_slug(organizations: list[dict]) -> dict[str, dict]:
    return {o["slug"]: o for o in organizations if o.get("slug")}


# --- rendering ----------------------------------------------------------------------------------


def _field(name: str, label: str, control, hint: str | None = None):
    return dbc.Col(
        [
            dbc.Label(label, html_for=f"co-{name}"),
            control,
            dbc.FormFeedback(id=f"co-err-{name}", type="invalid"),
            dbc.FormText(hint) if hint else None,
        ],
        md=12,
        className="mb-3",
    )


def request_form():
    return dbc.Card(
        dbc.CardBody(
            [
                html.H2("Request an organization", className="h5"),
                html.P(
                    "An organization holds your events, team and figures. A platform "
                    "administrator reviews each request; once approved you found it here and "
                    "become its owner.",
                    className="text-body-secondary",
                ),
                dbc.Row(
                    [
                        _field(
                            "name",
                            "Name",
                            dbc.Input(id="co-name", maxLength=200, autoComplete="organization"),
                        ),
                        _field(
                            "slug",
                            "Address name",
                            dbc.Input(id="co-slug", maxLength=64),
                            SLUG_HINT + " (suggested from the name when left empty).",
                        ),
                        _field(
                            "description",
                            "About (optional)",
                            dbc.Textarea(id="co-description", maxLength=5000, rows=3),
                        ),
                    ]
                ),
                html.Div(id="co-alert"),
                dbc.Button("Send request", id="co-submit", color="primary"),
            ]
        ),
        className="mb-4",
    )


def requests_table(requests: list[dict], founded: dict[str, dict]):
    if not requests:
        return html.P("No requests yet.", className="text-body-secondary", id="co-none")
    rows = []
    for r in sorted(requests, key=lambda r: r["created_at"], reverse=True):
        org = founded.get(r["slug"]) if r["status"] == "approved" else None
        if org is not None:
            action = dcc.Link(
                "Open", href=f"/?org={org['id']}", id={"type": "co-open", "id": r["id"]}
            )
        elif r["status"] == "approved":
            action = dbc.Button(
                "Found it", id={"type": "co-found", "id": r["id"]}, color="success", size="sm"
            )
        else:
            action = None
        answer = r.get("review_comment") or ""
        rows.append(
            html.Tr(
                [
                    html.Td(r["name"]),
                    html.Td(html.Code(r["slug"])),
                    html.Td(
                        dbc.Badge(
                            "founded" if org else r["status"],
                            color=STATUS_COLOURS.get(r["status"], "secondary"),
                        )
                    ),
                    html.Td(fmt.when(fmt.parse_time(r["created_at"]), "UTC")),
                    html.Td(answer, className="text-body-secondary"),
                    html.Td(action),
                ],
                id={"type": "co-row", "id": r["id"]},
            )
        )
    head = ["Name", "Address name", "Status", "Requested (UTC)", "Answer", ""]
    return dbc.Table(
        [html.Thead(html.Tr([html.Th(h, scope="col") for h in head])), html.Tbody(rows)],
        responsive=True,
        size="sm",
        className="align-middle",
        id="co-requests",
    )


def flash(search: str | None):
    from urllib.parse import parse_qs

    done = (parse_qs((search or "").lstrip("?")).get("done") or [None])[0]
    return dbc.Alert(DONE[done], color="success", id="co-done") if done in DONE else None


def new_page(client: ApiClient, search: str | None):
    try:
        me = client.me()
        requests = client.every("/organization-requests")
        organizations = client.every("/organizations")
    except ApiError as exc:
        return api_problem(exc, NEW_PATH)
    admin_link = (
        dcc.Link(
            "Review organization requests",
            href=REVIEW_PATH,
            id="co-review-link",
            className="btn btn-outline-secondary btn-sm",
        )
        if me.get("is_platform_admin")
        else None
    )
    return html.Div(
        [
            html.Div(id="co-goto"),
            html.Div(
                [html.H1("Found an organization", className="h3 mb-0"), admin_link],
                className="mb-3 d-flex justify-content-between align-items-start gap-2",
            ),
            flash(search),
            request_form(),
            html.H2("Your requests", className="h5"),
            html.Div(id="co-found-alert"),
            requests_table(requests, founded_by_slug(organizations)),
        ]
    )


def review_page(client: ApiClient, search: str | None):
    try:
        me = client.me()
    except ApiError as exc:
        return api_problem(exc, REVIEW_PATH)
    if not me.get("is_platform_admin"):
        return not_found(
            "Not found", "This page is for the platform's administrators: there is nothing here."
        )
    try:
        pending = client.every("/organization-requests", status="pending")
    except ApiError as exc:
        return api_problem(exc, REVIEW_PATH)
    rows = [
        html.Tr(
            [
                html.Td([html.Div(r["name"], className="fw-semibold"), html.Code(r["slug"])]),
                html.Td(r.get("description") or "", className="small"),
                html.Td(fmt.when(fmt.parse_time(r["created_at"]), "UTC")),
                html.Td(
                    dbc.Input(
                        id={"type": "co-comment", "id": r["id"]},
                        placeholder="Comment (optional)",
                        size="sm",
                        maxLength=2000,
                    )
                ),
                html.Td(
                    html.Div(
                        [
                            dbc.Button(
                                "Approve",
                                id={"type": "co-approve", "id": r["id"]},
                                color="success",
                                size="sm",
                            ),
                            dbc.Button(
                                "Reject",
                                id={"type": "co-reject", "id": r["id"]},
                                color="outline-danger",
                                size="sm",
                            ),
                        ],
                        className="d-flex gap-2",
                    )
                ),
            ],
            id={"type": "co-pending", "id": r["id"]},
        )
        for r in pending
    ]
    table = (
        dbc.Table(
            [
                html.Thead(
                    html.Tr(
                        [
                            html.Th(h, scope="col")
                            for h in ("Organization", "About", "Requested (UTC)", "Comment", "")
                        ]
                    )
                ),
                html.Tbody(rows),
            ],
            responsive=True,
            size="sm",
            className="align-middle",
            id="co-pending-table",
        )
        if rows
        else empty_state("Nothing to review", "New requests for organizations appear here.")
    )
    return html.Div(
        [
            html.Div(id="co-goto"),
            html.H1("Organization requests", className="h3 mb-3"),
            flash(search),
            html.Div(id="co-review-alert"),
            table,
        ]
    )


def page(sessions, pathname: str, search: str | None):
    try:
        client = sessions.client()
    except ApiError as exc:
        return api_problem(exc, pathname)
    return new_page(client, search) if pathname == NEW_PATH else review_page(client, search)


def reload(path: str, done: str, refresh: bool = True):
    return dcc.Location(
        id="co-to", href=f"{path}?done={done}&n={uuid.uuid4().hex[:8]}", refresh=refresh
    )


def problem(exc: ApiError, path: str):
    if isinstance(exc, Unauthorized):
        return api_problem(exc, path)
    return dbc.Alert(f"{exc.message} ({exc.code})", color="danger", className="mb-3")


# --- callbacks ------------------------------------------------------------------------------------


def send_request(client: ApiClient, name, slug, description):
    """POST the request: where to go, the errors at the inputs, an alert."""
    body = request_body(name, slug, description)
    try:
        client.post("/organization-requests", body)
    except ApiError as exc:
        errors = request_errors(exc)
        if errors:
            alert = dbc.Alert("The platform refused: see the marked fields.", color="danger")
            return None, errors, alert
        return None, {}, problem(exc, NEW_PATH)
    return reload(NEW_PATH, "requested"), {}, None


def found(client: ApiClient, request_id: str):
    """Found the approved request's organization and open its overview (a full load: the
    navbar's organizations come from the API again)."""
    try:
        org = client.post("/organizations", {"request_id": request_id})
    except ApiError as exc:
        return None, problem(exc, NEW_PATH)
    return dcc.Location(id="co-to", href=f"/?org={org['id']}", refresh=True), None


def review(client: ApiClient, request_id: str, approve: bool, comment: str | None):
    action = "approve" if approve else "reject"
    body = {"comment": comment.strip()} if (comment or "").strip() else None
    try:
        client.post(f"/organization-requests/{request_id}/{action}", body)
    except ApiError as exc:
        return None, problem(exc, REVIEW_PATH)
    return reload(REVIEW_PATH, "reviewed"), None


def _clicked(values) -> bool:
    return any(v for v in values or [])


def register(app: Dash, sessions) -> None:
    @app.callback(Output("co-slug", "placeholder"), Input("co-name", "value"))
    def on_name(name):
        return suggested_slug(name) or "my-organization"

    @app.callback(
        Output("co-goto", "children"),
        Output("co-alert", "children"),
        *[Output(f"co-{f}", "invalid") for f in FIELDS],
        *[Output(f"co-err-{f}", "children") for f in FIELDS],
        Input("co-submit", "n_clicks"),
        State("co-name", "value"),
        State("co-slug", "value"),
        State("co-description", "value"),
        prevent_initial_call=True,
    )
    def on_submit(_clicks, name, slug, description):
        try:
            target, errors, alert = send_request(sessions.client(), name, slug, description)
        except ApiError as exc:
            target, errors, alert = None, {}, api_problem(exc, NEW_PATH)
        return (
            no_update if target is None else target,
            alert,
            *[f in errors for f in FIELDS],
            *[errors.get(f) for f in FIELDS],
        )

    @app.callback(
        Output("co-goto", "children", allow_duplicate=True),
        Output("co-found-alert", "children"),
        Input({"type": "co-found", "id": ALL}, "n_clicks"),
        prevent_initial_call=True,
    )
    def on_found(clicks):
        if not _clicked(clicks) or not isinstance(ctx.triggered_id, dict):
            return no_update, no_update
        try:
            target, alert = found(sessions.client(), ctx.triggered_id["id"])
        except ApiError as exc:
            target, alert = None, api_problem(exc, NEW_PATH)
        return no_update if target is None else target, alert

    @app.callback(
        Output("co-goto", "children", allow_duplicate=True),
        Output("co-review-alert", "children"),
        Input({"type": "co-approve", "id": ALL}, "n_clicks"),
        Input({"type": "co-reject", "id": ALL}, "n_clicks"),
        State({"type": "co-comment", "id": ALL}, "value"),
        State({"type": "co-comment", "id": ALL}, "id"),
        prevent_initial_call=True,
    )
    def on_review(approvals, rejections, comments, comment_ids):
        trigger = ctx.triggered_id
        if not isinstance(trigger, dict) or not (_clicked(approvals) or _clicked(rejections)):
            return no_update, no_update
        comment = dict(zip((c["id"] for c in comment_ids), comments, strict=True))
        try:
            target, alert = review(
                sessions.client(),
                trigger["id"],
                trigger["type"] == "co-approve",
                comment.get(trigger["id"]),
            )
        except ApiError as exc:
            target, alert = None, api_problem(exc, REVIEW_PATH)
        return no_update if target is None else target, alert
