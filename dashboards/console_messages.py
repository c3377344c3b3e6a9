"""Messages to an event's attendees (``/events/<id>/messages``): compose a subject and a text,
choose the audience (everyone, a ticket type, checked in or not), preview it as the recipients
will read it in their languages with the recipient count, send it, and follow the delivery log
(refreshed every period). Owners and moderators compose and see each delivery; analysts read the
log's counts; anyone else gets the not-found page. All through the notifications API.
"""

from __future__ import annotations

import re

import dash_bootstrap_components as dbc
from dash import ALL, Dash, Input, Output, State, ctx, dcc, html, no_update

from dashboards import format as fmt
from dashboards.client import ApiClient, ApiError, Unauthorized
from dashboards.components import api_problem, not_found

PATH = re.compile(r"^/events/([0-9a-fA-F-]{36})/messages$")
MANAGE_ROLES = {"owner", "moderator"}
NOT_YOURS = (
    "Messages",
    "There is no event at this address, or it belongs to an organization you are not in.",
)
STATES = ("queued", "deferred", "sent", "failed")
AUDIENCE_ALL, CHECKED_IN, NOT_CHECKED_IN, TICKET_TYPE = "all", "in", "out", "tt:"


def path(event_id: str) -> str:
    return f"/events/{event_id}/messages"


# --- pure pieces -----------------------------------------------------------------------------------


def audience_options(ticket_types: list[dict]) -> list[dict]:
    return [
        {"label": "All attendees", "value": AUDIENCE_ALL},
        {"label": "Checked in", "value": CHECKED_IN},
        {"label": "Not checked in", "value": NOT_CHECKED_IN},
        *({"label": f"Ticket type: {t['name']}", "value": TICKET_TYPE + t["id"]}
          for t in ticket_types),
    ]  # fmt: skip


def message_body(event_id: str, subject: str | None, text: str | None, audience: str | None):
    """The body of ``POST /notifications/send`` (and ``/preview``) for the form's values."""
    body = {"event_id": event_id, "subject": (subject or "").strip(), "text": (text or "").strip()}
    audience = audience or AUDIENCE_ALL
    if audience == CHECKED_IN:
        body["checked_in"] = True
    elif audience == NOT_CHECKED_IN:
        body["checked_in"] = False
    elif audience.startswith(TICKET_TYPE):
        body["ticket_type_id"] = audience.removeprefix(TICKET_TYPE)
    return body


def missing(body: dict) -> str | None:
    """What the form still needs before the API is asked, in words; None when complete."""
    empty = [name for name in ("subject", "text") if not body[name]]
    return f"Write the {' and the '.join(empty)}." if empty else None


def refusal_text(exc: ApiError) -> str:
    """The API's refusal in its words, with the field it names (a 422's ``loc``) when any."""
    details = exc.details
    if isinstance(details, list) and details and isinstance(details[0], dict):
        where = ".".join(str(p) for p in details[0].get("loc", [])[1:])
        return f"{where}: {details[0].get('msg', exc.message)} ({exc.code})"
    return f"{exc.message} ({exc.code})"


def recipients_text(n: int) -> str:
    return "1 recipient" if n == 1 else f"{fmt.number(n)} recipients"


def states_text(states: dict) -> str:
    return " · ".join(f"{states.get(s, 0)} {s}" for s in STATES if states.get(s))


# --- the page --------------------------------------------------------------------------------------


def page(sessions, event_id: str, orgs: list[dict], refresh_s: float):
    try:
        client = sessions.client()
        event = client.event(event_id)
    except ApiError as exc:
        if isinstance(exc, Unauthorized) or exc.status not in (403, 404):
            return api_problem(exc, path(event_id))
        return not_found(*NOT_YOURS)
    role = {o["id"]: o["role"] for o in orgs}.get(event["organization_id"])
    if role is None:
        return not_found(*NOT_YOURS)
    manager = role in MANAGE_ROLES
    try:
        ticket_types = client.ticket_types(event_id) if manager else []
        log = log_table(client, event_id, manager, None)
    except ApiError as exc:
        return api_problem(exc, path(event_id))
    return html.Div(
        [
            dcc.Store(id="msg-event", data={"id": event_id, "manager": manager}),
            dcc.Store(id="msg-open"),
            dcc.Interval(id="msg-tick", interval=int(refresh_s * 1000)),
            dcc.Link("‹ Event dashboard", href=f"/events/{event_id}", className="small"),
            html.H1(event["title"], className="h4 mt-1 mb-0", id="msg-title"),
            html.Div(
                "Messages to attendees" + ("" if manager else " · read-only"),
                className="small text-body-secondary mb-3",
            ),
            compose(ticket_types) if manager else None,
            dbc.Card(
                dbc.CardBody(
                    [
                        html.H2("Delivery log", className="h5"),
                        html.Div(log, id="msg-log"),
                        html.Div(id="msg-deliveries"),
                    ]
                ),
                className="shadow-sm",
            ),
        ],
        id="msg-page",
    )


def compose(ticket_types: list[dict]):
    return dbc.Card(
        dbc.CardBody(
            [
                html.H2("New message", className="h5"),
                dbc.Label("Audience", html_for="msg-audience"),
                dbc.Select(
                    id="msg-audience",
                    options=audience_options(ticket_types),
                    value=AUDIENCE_ALL,
                    className="mb-2",
                ),
                dbc.Label("Subject", html_for="msg-subject"),
                dbc.Input(id="msg-subject", maxLength=200, className="mb-2"),
                dbc.Label("Text", html_for="msg-text"),
                dbc.Textarea(id="msg-text", maxLength=3500, rows=5, className="mb-2"),
                html.Div(
                    [
                        html.Button(
                            "Preview", id="msg-preview", className="btn btn-outline-primary"
                        ),
                        html.Button("Send", id="msg-send", className="btn btn-primary"),
                    ],
                    className="d-flex gap-2",
                ),
                html.Div(id="msg-feedback", className="mt-2", role="status"),
                html.Div(id="msg-preview-out"),
            ]
        ),
        className="mb-3 shadow-sm",
    )


def preview_view(answer: dict):
    count = answer["recipients"]
    cards = [
        dbc.Card(
            dbc.CardBody(
                [
                    html.Div(
                        f"{p['language'].upper()} · {recipients_text(p['recipients'])}",
                        className="small fw-semibold",
                    ),
                    html.Div(p["subject"], className="fw-bold"),
                    html.Pre(p["text"], className="small mb-0", style={"whiteSpace": "pre-wrap"}),
                ]
            ),
            className="mt-2",
            id={"type": "msg-preview-lang", "language": p["language"]},
        )
        for p in answer["languages"]
    ]
    deferred = f" ({answer['deferred']} in their quiet hours now)" if answer["deferred"] else ""
    return html.Div(
        [
            html.Div(
                f"Preview: {recipients_text(count)}{deferred}"
                if count
                else "Preview: nobody matches this audience (or no one there can be reached).",
                id="msg-count",
                className="fw-semibold mt-2",
            ),
            *cards,
        ]
    )


def log_table(client: ApiClient, event_id: str, manager: bool, open_id: str | None):
    messages = client.get("/notifications/messages", event_id=event_id)["items"]
    if not messages:
        return html.P("No messages yet.", className="text-body-secondary mb-0", id="msg-log-empty")
    rows = []
    for m in messages:
        states = m["states"]
        cells = [
            html.Td(m["subject"]),
            html.Td(fmt.parse_time(m["created_at"]).strftime("%Y-%m-%d %H:%M UTC")),
            html.Td(fmt.number(m["recipients"])),
            *(html.Td(fmt.number(states[s]), className=f"msg-{s}") for s in STATES),
        ]
        if manager:
            label = "Hide" if m["message_id"] == open_id else "Deliveries"
            cells.append(
                html.Td(
                    html.Button(
                        label,
                        id={"type": "msg-open", "message": m["message_id"]},
                        className="btn btn-outline-secondary btn-sm",
                    )
                )
            )
        rows.append(html.Tr(cells, id={"type": "msg-row", "message": m["message_id"]}))
    heads = ["Subject", "Sent", "Recipients", *(s.capitalize() for s in STATES)]
    return dbc.Table(
        [html.Thead(html.Tr([html.Th(h) for h in heads + ([""] if manager else [])])),
         html.Tbody(rows)],
        size="sm",
        className="align-middle mb-0",
        id="msg-log-table",
    )  # fmt: skip


def deliveries_table(client: ApiClient, event_id: str, message_id: str):
    items = client.every(f"/notifications/messages/{message_id}/deliveries", event_id=event_id)
    rows = [
        html.Tr(
            [
                html.Td(d["display_name"]),
                html.Td(d["channel"]),
                html.Td(d["address"]),
                html.Td(d["language"]),
                html.Td(d["status"], className=f"msg-delivery-{d['status']}"),
                html.Td(
                    fmt.parse_time(d["sent_at"]).strftime("%H:%M:%S UTC") if d["sent_at"] else "–"
                ),
                html.Td(d.get("last_error") or ""),
            ],
            id={"type": "msg-delivery", "user": d["user_id"]},
        )
        for d in items
    ]
    heads = ("Recipient", "Channel", "Address", "Language", "State", "Sent", "Error")
    return html.Div(
        [
            html.H3("Deliveries", className="h6 mt-3"),
            dbc.Table(
                [html.Thead(html.Tr([html.Th(h) for h in heads])), html.Tbody(rows)],
                size="sm",
                className="mb-0",
                id="msg-deliveries-table",
            ),
        ]
    )


# --- callbacks -------------------------------------------------------------------------------------


def on_compose(sessions, trigger: str, event: dict, subject, text, audience):
    """Preview or send: ``(feedback, preview, refresh the log)``."""
    body = message_body(event["id"], subject, text, audience)
    if need := missing(body):
        return dbc.Alert(need, color="warning", className="py-2"), no_update, no_update
    try:
        client = sessions.client()
        if trigger == "msg-preview":
            answer = client.post("/notifications/preview", body)
            return None, preview_view(answer), no_update
        answer = client.post("/notifications/send", body)
    except Unauthorized as exc:
        return api_problem(exc, path(event["id"])), no_update, no_update
    except ApiError as exc:
        alert = dbc.Alert(refusal_text(exc), color="danger", className="py-2", id="msg-error")
        return alert, no_update, no_update
    queued = f"Sent to {recipients_text(answer['count'])}"
    if answer["deferred"]:
        queued += f" ({answer['deferred']} after their quiet hours)"
    return dbc.Alert(queued + ".", color="success", className="py-2", id="msg-done"), None, 1


def register(app: Dash, sessions) -> None:
    @app.callback(
        Output("msg-feedback", "children"),
        Output("msg-preview-out", "children"),
        Output("msg-tick", "n_intervals"),
        Input("msg-preview", "n_clicks"),
        Input("msg-send", "n_clicks"),
        State("msg-event", "data"),
        State("msg-subject", "value"),
        State("msg-text", "value"),
        State("msg-audience", "value"),
        prevent_initial_call=True,
    )
    def composed(_preview, _send, event, subject, text, audience):
        feedback, preview, refresh = on_compose(
            sessions, ctx.triggered_id, event, subject, text, audience
        )
        return feedback, preview, 0 if refresh == 1 else no_update

    @app.callback(
        Output("msg-open", "data"),
        Input({"type": "msg-open", "message": ALL}, "n_clicks"),
        State("msg-open", "data"),
        prevent_initial_call=True,
    )
    def opened(_clicks, current):
        trigger = ctx.triggered_id
        if not isinstance(trigger, dict) or not ctx.triggered[0]["value"]:
            return no_update
        return None if trigger["message"] == current else trigger["message"]

    @app.callback(
        Output("msg-log", "children"),
        Output("msg-deliveries", "children"),
        Input("msg-tick", "n_intervals"),
        Input("msg-open", "data"),
        State("msg-event", "data"),
    )
    def refreshed(_n, open_id, event):
        try:
            client = sessions.client()
            log = log_table(client, event["id"], event["manager"], open_id)
            shown = deliveries_table(client, event["id"], open_id) if open_id else None
        except Unauthorized as exc:
            return api_problem(exc, path(event["id"])), None
        except ApiError:
            return no_update, no_update  # the next tick tries again
        return log, shown
