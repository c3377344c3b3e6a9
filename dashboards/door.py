"""Door check-in (``/events/<id>/door``): scan a ticket's QR code with the device's camera, or
type the code, and read a large colour-coded answer; a counter of seats checked in against
confirmed ones. For the event's owners and moderators only, as the API's check-in is.

Each scan carries a nonce made in the browser (assets/door.js); a retry after a failed request
sends the same scan again, so the API answers with the first result instead of counting it
twice. The QR decoder (@zxing/browser, vendored in assets/vendor/, pinned by
dashboards/package-lock.json) is loaded only when the camera starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import dash_bootstrap_components as dbc
from dash import ClientsideFunction, Dash, Input, Output, State, dcc, html, no_update

from dashboards import format as fmt
from dashboards.client import ApiClient, ApiError, Unauthorized
from dashboards.components import api_problem, not_found

PATH = re.compile(r"^/events/([0-9a-fA-F-]{36})/door$")
MANAGE_ROLES = {"owner", "moderator"}
NOT_YOURS = (
    "Door check-in",
    "There is no event at this address, or your role in its organization (owners and "
    "moderators check tickets in) does not show its door.",
)
STATUS_WORDS = {"pending_payment": "its payment is pending", "waitlisted": "it is on the waitlist"}


def path(event_id: str) -> str:
    return f"/events/{event_id}/door"


@dataclass(frozen=True)
class Outcome:
    """What the door shows for one scan: ``kind`` picks the colour (``ok`` green, ``again``
    amber, ``stop`` red, ``retry`` grey with a retry button)."""

    kind: str
    title: str
    detail: str

    @property
    def retry(self) -> bool:
        return self.kind == "retry"


def seats(quantity: int) -> str:
    return "1 seat" if quantity == 1 else f"{fmt.number(quantity)} seats"


def hh_mm(value: str, timezone: str) -> str:
    return f"{fmt.local_time(value, timezone):%H:%M}"


def checked_in(body: dict, timezone: str) -> Outcome:
    """The API's 200: checked in now, or (a retried scan) the first answer again."""
    return Outcome(
        "ok", "Checked in", f"{seats(body['quantity'])} · {hh_mm(body['checked_in_at'], timezone)}"
    )


def refused(exc: ApiError, timezone: str) -> Outcome:
    """An error answer of the check-in, in the words the door needs."""
    details = getattr(exc, "details", None)
    details = details if isinstance(details, dict) else {}
    if exc.code == "already_checked_in":
        at = details.get("checked_in_at")
        title = f"Already checked in at {hh_mm(at, timezone)}" if at else "Already checked in"
        return Outcome("again", title, "This ticket was used before: let in only its holder.")
    if exc.code == "not_confirmed":
        why = STATUS_WORDS.get(details.get("status"), "it is not confirmed")
        return Outcome("stop", "Not confirmed", f"No entry yet: {why}.")
    if exc.code == "cancelled":
        return Outcome("stop", "Cancelled", "This registration was cancelled: no entry.")
    if exc.code == "wrong_event":
        return Outcome("stop", "Wrong event", "This ticket is for another event.")
    if exc.status == 422:  # `invalid_code`, or a code no ticket could have (too long, empty)
        return Outcome("stop", "Invalid code", "Not a ticket of ours: mistyped, damaged or forged.")
    if exc.status in (403, 404):
        return Outcome("stop", "Not allowed", "Your role does not check tickets in at this event.")
    return Outcome(
        "retry",
        "Not recorded",
        f"The platform did not answer ({exc.message}). Retry: the same scan never counts twice.",
    )


def result(outcome: Outcome):
    return html.Div(
        [
            html.Div(outcome.title, className="door-result-title", id="door-result-title"),
            html.Div(outcome.detail, className="door-result-detail"),
        ],
        className=f"door-result door-{outcome.kind}",
        **{"data-outcome": outcome.kind},
    )


def counter(stats: dict) -> str:
    return f"{fmt.number(stats['checked_in'])} / {fmt.number(stats['registered'])}"


def page(sessions, event_id: str, orgs: list[dict], refresh_s: float):
    """The door of an event the user manages; the same not-found as for no event otherwise."""
    try:
        event = sessions.client().event(event_id)
    except ApiError as exc:
        if isinstance(exc, Unauthorized) or exc.status not in (403, 404):
            return api_problem(exc, path(event_id))
        return not_found(*NOT_YOURS)
    roles = {o["id"]: o["role"] for o in orgs}
    if roles.get(event["organization_id"]) not in MANAGE_ROLES:
        return not_found(*NOT_YOURS)
    return layout(event, refresh_s)


def layout(event: dict, refresh_s: float):
    tz = event["timezone"]
    return html.Div(
        [
            dcc.Store(id="door-event", data={"id": event["id"], "timezone": tz}),
            dcc.Store(id="door-scan"),
            dcc.Interval(id="door-tick", interval=int(refresh_s * 1000)),
            dcc.Link(
                "‹ Event dashboard",
                href=f"/events/{event['id']}",
                className="small",
                id="door-back",
            ),
            html.H1(event["title"], className="h4 mt-1 mb-0", id="door-title"),
            html.Div(f"Door check-in · times in {tz}", className="small text-body-secondary"),
            html.Div(
                [
                    html.Div(
                        "Checked in / confirmed", className="small text-uppercase fw-semibold"
                    ),
                    html.Div(
                        "…", id="door-count", className="door-count", **{"aria-live": "polite"}
                    ),
                ],
                className="door-counter",
            ),
            html.Div(
                html.Div(
                    [
                        html.Div("Ready", className="door-result-title"),
                        html.Div("Scan a ticket or type its code.", className="door-result-detail"),
                    ],
                    className="door-result door-idle",
                    **{"data-outcome": "idle"},
                ),
                id="door-result",
                role="status",
                **{"aria-live": "assertive"},
            ),
            html.Button(
                "Retry",
                id="door-retry",
                className="btn btn-secondary btn-lg w-100 door-touch",
                style={"display": "none"},
            ),
            html.Div(
                [
                    html.Button(
                        "Scan with the camera",
                        id="door-camera-start",
                        className="btn btn-primary btn-lg w-100 door-touch",
                    ),
                    html.Button(
                        "Stop the camera",
                        id="door-camera-stop",
                        className="btn btn-outline-secondary btn-lg w-100 door-touch",
                        style={"display": "none"},
                    ),
                    html.Video(
                        id="door-video",
                        className="door-video",
                        muted=True,
                        style={"display": "none"},
                    ),
                    html.Div(id="door-camera-status", className="small text-body-secondary"),
                ],
                className="door-camera",
            ),
            html.Div(
                [
                    dbc.Label("Ticket code", html_for="door-code", className="fw-semibold"),
                    dbc.Input(
                        id="door-code",
                        type="text",
                        placeholder="Type or paste the code, then Enter",
                        autocomplete="off",
                        size="lg",
                        className="door-touch",
                        n_submit=0,
                    ),
                    html.Button(
                        "Check in",
                        id="door-submit",
                        type="button",
                        className="btn btn-success btn-lg w-100 door-touch",
                    ),
                ],
                # Not a form: Enter is the input's n_submit, and the page stays.
                className="door-manual",
            ),
        ],
        className="door",
    )


def on_scan(sessions, scan: dict | None, event: dict):
    """A scan (``{"code", "nonce"}``) sent to the API: the answer, whether to offer a retry, and
    the counter afterwards."""
    if not scan or not scan.get("code"):
        return no_update, no_update, no_update
    body = {"ticket_code": scan["code"], "nonce": scan["nonce"]}
    try:
        client = sessions.client()
        answer = client.post(f"/events/{event['id']}/check-in", body)
    except Unauthorized as exc:
        return api_problem(exc, path(event["id"])), {"display": "none"}, no_update
    except ApiError as exc:
        outcome = refused(exc, event["timezone"])
    else:
        outcome = checked_in(answer, event["timezone"])
    return result(outcome), {} if outcome.retry else {"display": "none"}, count(client, event)


def count(client: ApiClient, event: dict):
    """The counter's text; unchanged when the API does not answer (the next tick tries again)."""
    try:
        return counter(client.get(f"/events/{event['id']}/check-ins/stats"))
    except ApiError:
        return no_update


def register(app: Dash, sessions) -> None:
    app.clientside_callback(
        ClientsideFunction("door", "typed"),
        Output("door-scan", "data"),
        Output("door-code", "value"),
        Input("door-code", "n_submit"),
        Input("door-submit", "n_clicks"),
        State("door-code", "value"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        ClientsideFunction("door", "camera"),
        Output("door-camera-status", "children"),
        Input("door-camera-start", "n_clicks"),
        Input("door-camera-stop", "n_clicks"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output("door-result", "children"),
        Output("door-retry", "style"),
        Output("door-count", "children", allow_duplicate=True),
        Input("door-scan", "data"),
        Input("door-retry", "n_clicks"),  # the same scan again, with its nonce
        State("door-event", "data"),
        prevent_initial_call=True,
    )
    def scanned(scan, _retry, event):
        return on_scan(sessions, scan, event)

    @app.callback(
        Output("door-count", "children"),
        Input("door-tick", "n_intervals"),
        State("door-event", "data"),
    )
    def tick(_n, event):
        try:
            client = sessions.client()
        except Unauthorized:
            return no_update  # the next scan says so, and sends to sign-in
        return count(client, event)
