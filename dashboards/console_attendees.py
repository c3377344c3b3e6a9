"""Attendees, the organizers' console (``/events/<id>/attendees``): the event's registrations with
search, filters and cursor paging, a CSV of the current view, one registration's payments and
refunds with its actions (cancel, refund in full or in part with a reason, resend the ticket,
check in by hand), and the waitlist with its offers' timers.

Everything is the REST API's, as the signed-in user: owners and moderators act; analysts read
the same page without a control and without personal data (the API hides names, e-mails and
ticket codes from them, and refuses their searches); anyone else gets "Event not found". Each
action is one API call; its refusal is shown in the API's words, and the page then reloads what
it shows from the API.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import dash_bootstrap_components as dbc
from dash import ALL, Dash, Input, Output, State, ctx, dcc, html, no_update

from dashboards import format as fmt
from dashboards.client import ApiClient, ApiError, Unauthorized
from dashboards.components import api_problem, not_found

PATH = re.compile(r"^/events/([0-9a-fA-F-]{36})/attendees$")
MANAGE_ROLES = {"owner", "moderator"}
READ_ROLES = MANAGE_ROLES | {"analyst"}
PAGE_SIZE = 10
WAITLIST_REFRESH_MS = 5000
NOT_YOURS = (
    "Event not found",
    "There is no event at this address, or your role in its organization does not show its "
    "attendees.",
)
STATUSES = (
    ("confirmed", "Confirmed"),
    ("pending_payment", "Pending payment"),
    ("cancelled", "Cancelled"),
)
PAYMENTS = (
    ("paid", "Paid in full"),
    ("deposit", "Deposit paid, rest owing"),
    ("owing", "Nothing paid yet"),
)
CHECKED = (("true", "Checked in"), ("false", "Not checked in"))
FILTERS = ("q", "status", "ticket_type_id", "payment", "checked_in")
ANY = "any"  # a select's "no filter" (dbc.Select keeps "" for its own placeholder option)


def path(event_id: str) -> str:
    return f"/events/{event_id}/attendees"


# --- pure functions: what the API is asked and how its answers read ---------------------------


def query(filters: dict | None) -> dict:
    """The list's query parameters for the filters chosen (empty ones left out)."""
    out = {}
    for name in FILTERS:
        value = (filters or {}).get(name)
        value = value.strip() if isinstance(value, str) else value
        if value not in (None, "", ANY):
            out[name] = value
    return out


def payment_state(reg: dict) -> str:
    """A registration's money in a few words (the list's ``payment`` filter's terms)."""
    total, paid = reg["amount_total"], reg["amount_paid"]
    if total == 0:
        return "Free"
    if paid >= total:
        return "Paid"
    if paid > 0:
        return "Deposit paid"
    return "Owing" if reg["status"] == "pending_payment" else "Unpaid"


def money_line(reg: dict) -> str:
    if reg["amount_total"] == 0:
        return "Free"
    paid = fmt.money(reg["amount_paid"], reg["currency"])
    return f"{payment_state(reg)} · {paid} of {fmt.money(reg['amount_total'], reg['currency'])}"


def when_or_dash(value: str | None, timezone: str) -> str:
    return fmt.when(value, timezone, with_zone=False) if value else ""


def table_rows(items: list[dict], ticket_names: dict, timezone: str, personal: bool) -> list[dict]:
    """The table's cells of each registration; names and e-mails only when ``personal``."""
    rows = []
    for reg in items:
        person = reg.get("participant") or {}
        row = {"id": reg["id"]}
        if personal:
            row["name"] = person.get("display_name") or ""
            row["email"] = person.get("email") or ""
        row |= {
            "ticket_type": ticket_names.get(reg["ticket_type_id"], ""),
            "quantity": reg["quantity"],
            "status": reg["status"],
            "payment": money_line(reg),
            "checked_in": when_or_dash(reg.get("checked_in_at"), timezone),
            "registered": when_or_dash(reg["created_at"], timezone),
        }
        rows.append(row)
    return rows


def listed(reg: dict) -> bool:
    """Whether the participant is shown by name on the event's participant list (their choice,
    ``PATCH /registrations/{id} {"listed"}``; the list shows confirmed registrations only, and
    only while the organizer keeps it open)."""
    return reg.get("listed", True) is not False


def listed_text(reg: dict) -> str:
    if listed(reg):
        return "shown by name (while confirmed and the list is open)"
    return "hidden: the participant left it"


def csv_columns(personal: bool) -> list[str]:
    people = ["name", "email", "ticket_code"] if personal else []
    return [
        "registration_id",
        *people,
        "ticket_type",
        "quantity",
        "status",
        "payment",
        "amount_total",
        "amount_paid",
        "currency",
        "checked_in_at",
        "listed",
        "created_at",
    ]


def csv_text(items: list[dict], ticket_names: dict, personal: bool) -> str:
    """The view as CSV: machine-readable values (ISO times in UTC, amounts in minor units);
    the personal columns only when ``personal``."""
    out = io.StringIO()
    writer = csv.DictWriter(out, csv_columns(personal), lineterminator="\n")
    writer.writeheader()
    for reg in items:
        person = reg.get("participant") or {}
        row = {
            "registration_id": reg["id"],
            "ticket_type": ticket_names.get(reg["ticket_type_id"], reg["ticket_type_id"]),
            "quantity": reg["quantity"],
            "status": reg["status"],
            "payment": payment_state(reg).lower(),
            "amount_total": reg["amount_total"],
            "amount_paid": reg["amount_paid"],
            "currency": reg["currency"],
            "checked_in_at": reg.get("checked_in_at") or "",
            "listed": str(listed(reg)).lower(),
            "created_at": reg["created_at"],
        }
        if personal:
            row |= {
                "name": _cell(person.get("display_name")),
                "email": _cell(person.get("email")),
                "ticket_code": reg.get("ticket_code") or "",
            }
        writer.writerow(row)
    return out.getvalue()


def _cell(text: str | None) -> str:
    """A participant's words as a spreadsheet cell, never as a formula (CSV injection)."""
    text = text or ""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def refund_body(amount: str | None, reason: str | None, currency: str) -> tuple[dict, str | None]:
    """The refund's body from the form (an empty amount: all that can still be refunded), or
    why the form cannot be sent."""
    note = (reason or "").strip()
    if not note:
        return {}, "Say why the money goes back (the participant and the books see it)."
    text = (amount or "").strip()
    if not text:
        return {"note": note}, None
    try:
        value = Decimal(text.replace(",", "."))
    except InvalidOperation:
        return {}, "An amount, e.g. 12.50, or empty for a full refund."
    minor = value * 10 ** fmt.exponent(currency)
    if minor != minor.to_integral_value():
        return {}, f"At most {fmt.exponent(currency)} decimals in {currency}."
    if minor <= 0:
        return {}, "More than nothing, or empty for a full refund."
    return {"amount": int(minor), "note": note}, None


def time_left(expires_at: str | None, now: datetime) -> str:
    """How long an offer's hold still runs (``4 min 05 s left``), or that it ran out."""
    if not expires_at:
        return ""
    seconds = int((fmt.parse_time(expires_at) - now).total_seconds())
    if seconds <= 0:
        return "expired, passing on"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest:02d} s left" if minutes else f"{rest} s left"


def refusal(exc: ApiError) -> str:
    """An action the API refused, in its words (and its stable code)."""
    details = exc.details if isinstance(exc.details, dict) else {}
    extra = ""
    if "refundable" in details:
        extra = f" (refundable: {details['refundable']} in minor units)"
    return f"Refused: {exc.message}{extra} [{exc.code}]"


# --- the page --------------------------------------------------------------------------------------


def page(sessions, event_id: str, orgs: list[dict]):
    """The attendees of an event the user is a member of; "Event not found" otherwise."""
    try:
        client = sessions.client()
        event = client.event(event_id)
    except ApiError as exc:
        if isinstance(exc, Unauthorized) or exc.status not in (403, 404):
            return api_problem(exc, path(event_id))
        return not_found(*NOT_YOURS)
    role = {o["id"]: o["role"] for o in orgs}.get(event["organization_id"])
    if role not in READ_ROLES:
        return not_found(*NOT_YOURS)
    try:
        ticket_types = client.ticket_types(event_id)
    except ApiError as exc:
        return api_problem(exc, path(event_id))
    return layout(event, role, ticket_types)


def _select(ident: str, label: str, options, *, disabled: bool = False):
    return dbc.Col(
        [
            dbc.Label(label, html_for=ident, className="small mb-0"),
            dbc.Select(
                id=ident,
                options=[{"label": "Any", "value": ANY}]
                + [{"label": text, "value": value} for value, text in options],
                value=ANY,
                size="sm",
                disabled=disabled,
            ),
        ],
        md=2,
    )


def layout(event: dict, role: str, ticket_types: list[dict]):
    manager = role in MANAGE_ROLES
    names = {t["id"]: t["name"] for t in ticket_types}
    tz = event["timezone"]
    search = dbc.Col(
        [
            dbc.Label("Search", html_for="att-q", className="small mb-0"),
            dbc.Input(
                id="att-q",
                type="search",
                size="sm",
                debounce=True,
                placeholder="Name, e-mail or ticket code, then Enter"
                if manager
                else "Owners and moderators search people",
                disabled=not manager,
            ),
        ],
        md=4,
    )
    return html.Div(
        [
            dcc.Store(
                id="att-event",
                data={
                    "id": event["id"],
                    "timezone": tz,
                    "role": role,
                    "names": names,
                    "manager": manager,
                    "title": event["title"],
                },
            ),
            dcc.Store(id="att-paging", data={"filters": {}, "cursors": [None]}),
            dcc.Store(id="att-next-cursor"),
            dcc.Store(id="att-selected"),
            dcc.Store(id="att-reload", data=0),
            dcc.Store(id="att-rows-data"),
            dcc.Store(id="att-current"),
            dcc.Store(id="att-wl-target"),
            dcc.Store(id="att-wl-reload", data=0),
            dcc.Download(id="att-download"),
            dcc.Interval(id="att-wl-tick", interval=WAITLIST_REFRESH_MS),
            html.Div(
                [
                    dcc.Link("‹ Event dashboard", href=f"/events/{event['id']}", className="small"),
                    dcc.Link(
                        "Edit event & tickets" if manager else "Settings & tickets",
                        href=f"/events/{event['id']}/manage",
                        className="small ms-3",
                    ),
                ]
            ),
            html.H1(event["title"], className="h4 mt-1 mb-0", id="att-title"),
            html.Div(
                f"Attendees · times in {tz}"
                + ("" if manager else " · read-only: no names, e-mails or ticket codes"),
                className="small text-body-secondary mb-3",
                id="att-subtitle",
            ),
            dbc.Row(
                [
                    search,
                    _select("att-status", "Status", STATUSES),
                    _select("att-tt", "Ticket type", [(t["id"], t["name"]) for t in ticket_types]),
                    _select("att-payment", "Payment", PAYMENTS),
                    _select("att-checked", "Check-in", CHECKED),
                ],
                className="g-2 mb-2",
            ),
            html.Div(id="att-list-alert", **{"aria-live": "polite"}),
            html.Div(id="att-table", className="table-responsive"),
            html.Div(
                [
                    dbc.Button(
                        "‹ Previous",
                        id="att-prev",
                        size="sm",
                        color="secondary",
                        outline=True,
                        disabled=True,
                    ),
                    html.Span(id="att-page-info", className="small text-body-secondary mx-2"),
                    dbc.Button(
                        "Next ›",
                        id="att-next",
                        size="sm",
                        color="secondary",
                        outline=True,
                        disabled=True,
                    ),
                    dbc.Button(
                        "Download CSV",
                        id="att-csv",
                        size="sm",
                        color="primary",
                        outline=True,
                        className="ms-auto",
                    ),
                ],
                className="d-flex align-items-center mb-4",
            ),
            detail_panel(manager),
            html.H2("Waitlist", className="h5 mt-4"),
            html.Div(id="att-wl-alert", **{"aria-live": "polite"}),
            html.Div(id="att-wl", className="table-responsive"),
            dbc.Modal(
                [
                    dbc.ModalHeader(dbc.ModalTitle("Remove from the waitlist?")),
                    dbc.ModalBody(
                        "The entry is cancelled and loses its place; the participant may join "
                        "again while the ticket type is sold out.",
                        id="att-wl-confirm-text",
                    ),
                    dbc.ModalFooter(
                        [
                            dbc.Button("Keep", id="att-wl-keep", color="secondary"),
                            dbc.Button("Remove", id="att-wl-confirm", color="danger"),
                        ]
                    ),
                ],
                id="att-wl-modal",
                is_open=False,
            )
            if manager
            else None,
        ],
        className="attendees",
    )


def detail_panel(manager: bool):
    """One registration's card; its actions are always in the layout (for owners and moderators)
    so their callbacks are wired once, and shown when a registration is open."""
    actions = None
    if manager:
        actions = html.Div(
            [
                html.Div(
                    [
                        dbc.Button("Check in", id="att-checkin", size="sm", color="success"),
                        dbc.Button(
                            "Resend ticket",
                            id="att-resend",
                            size="sm",
                            color="primary",
                            outline=True,
                        ),
                        dbc.Button(
                            "Cancel registration…",
                            id="att-cancel-open",
                            size="sm",
                            color="danger",
                            outline=True,
                        ),
                    ],
                    className="d-flex gap-2 flex-wrap mb-3",
                ),
                html.H3("Refund", className="h6"),
                dbc.Row(
                    [
                        dbc.Col(dbc.Select(id="att-refund-payment", size="sm"), md=4),
                        dbc.Col(
                            dbc.Input(
                                id="att-refund-amount",
                                size="sm",
                                inputMode="decimal",
                                placeholder="Amount (empty: all that is left)",
                            ),
                            md=3,
                        ),
                        dbc.Col(
                            dbc.Input(
                                id="att-refund-reason", size="sm", placeholder="Reason (required)"
                            ),
                            md=3,
                        ),
                        dbc.Col(
                            dbc.Button("Refund", id="att-refund-go", size="sm", color="warning"),
                            md=2,
                        ),
                    ],
                    className="g-2",
                ),
                dbc.Modal(
                    [
                        dbc.ModalHeader(dbc.ModalTitle("Cancel this registration?")),
                        dbc.ModalBody(
                            [
                                html.P(
                                    "Its seats are freed at once. Money already paid is not "
                                    "refunded by cancelling: refund it here first or after.",
                                    id="att-cancel-text",
                                ),
                                dbc.Input(id="att-cancel-reason", placeholder="Reason (optional)"),
                            ]
                        ),
                        dbc.ModalFooter(
                            [
                                dbc.Button("Keep it", id="att-cancel-keep", color="secondary"),
                                dbc.Button(
                                    "Cancel registration", id="att-cancel-confirm", color="danger"
                                ),
                            ]
                        ),
                    ],
                    id="att-cancel-modal",
                    is_open=False,
                ),
            ],
            id="att-actions",
            className="mt-3",
        )
    return html.Div(
        dbc.Card(
            dbc.CardBody(
                [
                    html.Div(id="att-detail"),
                    html.Div(id="att-action-result", role="status", **{"aria-live": "polite"}),
                    actions,
                ]
            ),
            className="shadow-sm",
        ),
        id="att-detail-card",
        style={"display": "none"},
    )


def registrations_table(rows: list[dict], personal: bool):
    heads = (["Name", "E-mail"] if personal else []) + [
        "Ticket type",
        "Seats",
        "Status",
        "Payment",
        "Checked in",
        "Registered",
        "",
    ]
    body = []
    for row in rows:
        cells = [row["name"], row["email"]] if personal else []
        cells += [
            row["ticket_type"],
            row["quantity"],
            row["status"],
            row["payment"],
            row["checked_in"],
            row["registered"],
        ]
        button = dbc.Button(
            "Details",
            id={"type": "att-open", "id": row["id"]},
            size="sm",
            color="link",
            className="p-0",
        )
        body.append(
            html.Tr(
                [html.Td(c) for c in cells] + [html.Td(button)], **{"data-registration": row["id"]}
            )
        )
    if not body:
        return html.Div(
            "No registration matches.", className="text-body-secondary py-3", id="att-empty"
        )
    return dbc.Table(
        [html.Thead(html.Tr([html.Th(h) for h in heads])), html.Tbody(body)],
        size="sm",
        hover=True,
        id="att-rows",
    )


def payments_block(payments: list[dict], timezone: str):
    if not payments:
        return html.P("No payment.", className="text-body-secondary small", id="att-payments")
    items = []
    for p in payments:
        refunds = [
            html.Li(
                f"Refund {fmt.money(r['amount'], r['currency'])} · {r['status']}"
                + (f" · {r['note']}" if r.get("note") else "")
                + f" · {r['reason']}",
                className="small",
            )
            for r in p.get("refunds") or []
        ]
        items.append(
            html.Li(
                [
                    f"{p['purpose']} {fmt.money(p['amount'], p['currency'])} · {p['status']}"
                    f" · {when_or_dash(p.get('completed_at') or p['created_at'], timezone)}"
                    f" · refundable {fmt.money(p['refundable'], p['currency'])}",
                    html.Ul(refunds) if refunds else None,
                ]
            )
        )
    return html.Ul(items, id="att-payments", className="mb-2")


def detail_body(reg: dict, person: dict | None, payments: list[dict], event: dict):
    tz = event["timezone"]
    lines = [
        (
            "Participant",
            f"{person.get('display_name') or ''} <{person.get('email') or ''}>"
            if person and person.get("email")
            else None,
        ),
        ("Ticket", f"{event['names'].get(reg['ticket_type_id'], '')} × {reg['quantity']}"),
        (
            "Status",
            reg["status"] + (f" ({reg['cancel_reason']})" if reg.get("cancel_reason") else ""),
        ),
        ("Money", money_line(reg)),
        ("Checked in", when_or_dash(reg.get("checked_in_at"), tz) or "not yet"),
        ("Participant list", listed_text(reg)),
        ("Ticket code", reg.get("ticket_code")),
    ]
    return html.Div(
        [
            html.H2("Registration", className="h6 text-uppercase text-body-secondary"),
            html.Dl(
                [
                    part
                    for label, value in lines
                    if value
                    for part in (
                        html.Dt(label, className="col-sm-3"),
                        html.Dd(value, className="col-sm-9 text-break"),
                    )
                ],
                className="row mb-2",
                id="att-detail-facts",
            ),
            html.H3("Payments and refunds", className="h6"),
            payments_block(payments, tz),
        ],
        **{"data-registration": reg["id"]},
    )


def waitlist_table(entries: list[dict], event: dict, now: datetime):
    live = [e for e in entries if e["status"] in ("waiting", "offered")]
    if not live:
        return html.Div(
            "Nobody is waiting.", className="text-body-secondary small", id="att-wl-empty"
        )
    rows = []
    for e in live:
        place = str(e["position"]) if e.get("position") else ""
        offer = time_left(e.get("offer_expires_at"), now) if e["status"] == "offered" else ""
        remove = (
            dbc.Button(
                "Remove…",
                id={"type": "att-wl-remove", "id": e["id"]},
                size="sm",
                color="link",
                className="p-0 text-danger",
            )
            if event["manager"] and e["status"] == "waiting"
            else None
        )
        rows.append(
            html.Tr(
                [
                    html.Td(event["names"].get(e["ticket_type_id"], "")),
                    html.Td(place),
                    html.Td(e["status"]),
                    html.Td(offer, className="att-wl-timer"),
                    html.Td(when_or_dash(e["created_at"], event["timezone"])),
                    html.Td(remove),
                ],
                **{"data-entry": e["id"]},
            )
        )
    heads = ["Ticket type", "Place", "Status", "Offer", "Joined", ""]
    return dbc.Table(
        [html.Thead(html.Tr([html.Th(h) for h in heads])), html.Tbody(rows)],
        size="sm",
        id="att-wl-rows",
    )


# --- callbacks' work -------------------------------------------------------------------------------


def load_list(client: ApiClient, event: dict, paging: dict):
    params = query(paging.get("filters"))
    cursors = paging.get("cursors") or [None]
    answer = client.get(
        f"/events/{event['id']}/registrations", **params, limit=PAGE_SIZE, cursor=cursors[-1]
    )
    rows = table_rows(answer["items"], event["names"], event["timezone"], event["manager"])
    info = f"Page {len(cursors)}" + ("" if answer["items"] else " · empty")
    listed = {r["id"]: r for r in answer["items"]}
    return registrations_table(rows, event["manager"]), answer["next_cursor"], info, listed


def download(client: ApiClient, event: dict, paging: dict) -> dict:
    items = client.every(f"/events/{event['id']}/registrations", **query(paging.get("filters")))
    return {
        "content": csv_text(items, event["names"], event["manager"]),
        "filename": f"attendees-{event['id'][:8]}.csv",
        "type": "text/csv",
    }


def load_detail(client: ApiClient, event: dict, listed: dict):
    """The open registration afresh from the API (``listed``: its row of the list, which carries
    the participant and the ticket code for managers), its payments, and the refund choices."""
    reg = client.get(f"/registrations/{listed['id']}")
    payments = client.get(f"/registrations/{listed['id']}/payments")["items"]
    merged = {**listed, **reg}
    if reg["status"] == "cancelled":
        merged["ticket_code"] = None
    options = [
        {
            "label": f"{p['purpose']} {fmt.money(p['amount'], p['currency'])} "
            f"(refundable {fmt.money(p['refundable'], p['currency'])})",
            "value": p["id"],
        }
        for p in payments
        if p.get("refundable")
    ]
    body = detail_body(merged, listed.get("participant"), payments, event)
    return body, options, {"id": reg["id"], "currency": reg["currency"]}


def refund_key(nonce: str, payment_id: str, body: dict) -> str:
    """The refund's ``X-Idempotency-Key``: the same for the same refund asked again from the same
    card (a double click refunds once), another for other values or once the card reloaded."""
    what = f"{nonce}|{payment_id}|{body.get('amount')}|{body.get('note')}"
    return uuid.uuid5(uuid.NAMESPACE_URL, what).hex


def act(client: ApiClient, which: str, registration_id: str, values: dict) -> tuple[bool, str]:
    """One action on a registration: whether the API did it, and the words to show. ``values``
    carry the card's ``nonce`` (made when it was loaded): a repeated click of the same action is
    the same request, answered as the first."""
    base = f"/registrations/{registration_id}"
    nonce = values.get("nonce") or uuid.uuid4().hex
    if which == "att-checkin":
        answer = client.post(f"{base}/check-in", {"nonce": nonce})
        return True, f"Checked in ({answer['quantity']} seat(s))."
    if which == "att-resend":
        client.post(f"{base}/resend-ticket")
        return True, "The ticket is on its way to the participant again."
    if which == "att-cancel-confirm":
        reason = (values.get("cancel_reason") or "").strip()
        client.post(f"{base}/cancel", {"reason": reason} if reason else None)
        return True, "Registration cancelled; its seats are free again."
    if which == "att-refund-go":
        payment_id = values.get("payment_id")
        if not payment_id:
            return False, "Nothing of this registration can be refunded."
        body, problem = refund_body(
            values.get("amount"), values.get("reason"), values.get("currency") or "EUR"
        )
        if problem:
            return False, problem
        answer = client.post(
            f"/payments/{payment_id}/refund",
            body,
            headers={"X-Idempotency-Key": refund_key(nonce, payment_id, body)},
        )
        return (
            True,
            f"Refund of {fmt.money(answer['amount'], answer['currency'])} {answer['status']}.",
        )
    raise ValueError(which)


def register(app: Dash, sessions) -> None:
    @app.callback(
        Output("att-paging", "data"),
        Input("att-q", "value"),
        Input("att-status", "value"),
        Input("att-tt", "value"),
        Input("att-payment", "value"),
        Input("att-checked", "value"),
        Input("att-next", "n_clicks"),
        Input("att-prev", "n_clicks"),
        State("att-paging", "data"),
        State("att-next-cursor", "data"),
        prevent_initial_call=True,
    )
    def paging(q, status, tt, payment, checked, _next, _prev, current, next_cursor):
        cursors = list((current or {}).get("cursors") or [None])
        if ctx.triggered_id == "att-next":
            if not next_cursor:
                return no_update
            return {**current, "cursors": [*cursors, next_cursor]}
        if ctx.triggered_id == "att-prev":
            return {**current, "cursors": cursors[:-1] or [None]}
        filters = {
            "q": q,
            "status": status,
            "ticket_type_id": tt,
            "payment": payment,
            "checked_in": checked,
        }
        return {"filters": filters, "cursors": [None]}

    @app.callback(
        Output("att-table", "children"),
        Output("att-next-cursor", "data"),
        Output("att-page-info", "children"),
        Output("att-next", "disabled"),
        Output("att-prev", "disabled"),
        Output("att-list-alert", "children"),
        Output("att-rows-data", "data"),
        Input("att-paging", "data"),
        Input("att-reload", "data"),
        State("att-event", "data"),
    )
    def table(paging_data, _reload, event):
        paging_data = paging_data or {"filters": {}, "cursors": [None]}
        try:
            content, next_cursor, info, rows = load_list(sessions.client(), event, paging_data)
        except ApiError as exc:
            if isinstance(exc, Unauthorized):
                return (api_problem(exc, path(event["id"])),) + (no_update,) * 6
            alert = dbc.Alert(refusal(exc), color="warning", id="att-list-refused")
            return None, None, "", True, True, alert, {}
        first = len(paging_data.get("cursors") or [None]) <= 1
        return content, next_cursor, info, next_cursor is None, first, None, rows

    @app.callback(
        Output("att-download", "data"),
        Output("att-list-alert", "children", allow_duplicate=True),
        Input("att-csv", "n_clicks"),
        State("att-paging", "data"),
        State("att-event", "data"),
        prevent_initial_call=True,
    )
    def csv_download(_clicks, paging_data, event):
        try:
            return download(sessions.client(), event, paging_data or {}), None
        except ApiError as exc:
            return no_update, dbc.Alert(refusal(exc), color="warning")

    @app.callback(
        Output("att-selected", "data"),
        Input({"type": "att-open", "id": ALL}, "n_clicks"),
        prevent_initial_call=True,
    )
    def open_one(clicks):
        if not ctx.triggered_id or not any(clicks or []):
            return no_update  # the table re-rendered its buttons: nothing was clicked
        if not ctx.triggered[0].get("value"):
            return no_update
        return ctx.triggered_id["id"]

    @app.callback(
        Output("att-detail", "children"),
        Output("att-detail-card", "style"),
        Output("att-current", "data"),
        Input("att-selected", "data"),
        Input("att-rows-data", "data"),
        State("att-event", "data"),
    )
    def detail(selected, rows, event):
        if not selected:
            return None, {"display": "none"}, None
        listed = (rows or {}).get(selected) or {"id": selected}
        try:
            body, options, current = load_detail(sessions.client(), event, listed)
        except ApiError as exc:
            if isinstance(exc, Unauthorized):
                return api_problem(exc, path(event["id"])), {}, None
            return dbc.Alert(refusal(exc), color="warning"), {}, None
        return body, {}, {**current, "refund_options": options, "nonce": uuid.uuid4().hex}

    @app.callback(
        Output("att-refund-payment", "options"),
        Output("att-refund-payment", "value"),
        Input("att-current", "data"),
    )
    def refund_choices(current):
        options = (current or {}).get("refund_options") or []
        if not options:
            return [{"label": "No payment to refund", "value": ""}], ""
        return options, options[0]["value"]

    @app.callback(
        Output("att-cancel-modal", "is_open"),
        Input("att-cancel-open", "n_clicks"),
        Input("att-cancel-keep", "n_clicks"),
        Input("att-cancel-confirm", "n_clicks"),
        prevent_initial_call=True,
    )
    def cancel_modal(*_clicks):
        return ctx.triggered_id == "att-cancel-open"

    @app.callback(
        Output("att-action-result", "children"),
        Output("att-reload", "data"),
        Input("att-checkin", "n_clicks"),
        Input("att-resend", "n_clicks"),
        Input("att-refund-go", "n_clicks"),
        Input("att-cancel-confirm", "n_clicks"),
        State("att-current", "data"),
        State("att-refund-payment", "value"),
        State("att-refund-amount", "value"),
        State("att-refund-reason", "value"),
        State("att-cancel-reason", "value"),
        State("att-reload", "data"),
        State("att-event", "data"),
        prevent_initial_call=True,
    )
    def action(_a, _b, _c, _d, current, payment_id, amount, reason, cancel_reason, reload, event):
        if not current or not ctx.triggered_id or not ctx.triggered[0].get("value"):
            return no_update, no_update
        values = {
            "payment_id": payment_id,
            "amount": amount,
            "reason": reason,
            "cancel_reason": cancel_reason,
            "currency": current.get("currency"),
            "nonce": current.get("nonce"),
        }
        try:
            ok, words = act(sessions.client(), ctx.triggered_id, current["id"], values)
        except Unauthorized as exc:
            return api_problem(exc, path(event["id"])), no_update
        except ApiError as exc:
            # Refused: what the API now says of the registration is shown again too.
            return dbc.Alert(refusal(exc), color="danger", id="att-refused"), (reload or 0) + 1
        if not ok:  # the form cannot be sent: nothing changed
            return dbc.Alert(words, color="warning", id="att-refused"), no_update
        return dbc.Alert(words, color="success", id="att-done"), (reload or 0) + 1

    @app.callback(
        Output("att-wl", "children"),
        Input("att-wl-tick", "n_intervals"),
        Input("att-wl-reload", "data"),
        State("att-event", "data"),
    )
    def waitlist(_n, _reload, event):
        try:
            entries = sessions.client().every(f"/events/{event['id']}/waitlist")
        except Unauthorized:
            return no_update
        except ApiError as exc:
            return dbc.Alert(refusal(exc), color="warning")
        return waitlist_table(entries, event, datetime.now(UTC))

    @app.callback(
        Output("att-wl-target", "data"),
        Output("att-wl-modal", "is_open"),
        Input({"type": "att-wl-remove", "id": ALL}, "n_clicks"),
        Input("att-wl-keep", "n_clicks"),
        prevent_initial_call=True,
    )
    def ask_remove(clicks, _keep):
        if ctx.triggered_id == "att-wl-keep":
            return None, False
        if not ctx.triggered_id or not ctx.triggered[0].get("value"):
            return no_update, no_update
        return ctx.triggered_id["id"], True

    @app.callback(
        Output("att-wl-alert", "children"),
        Output("att-wl-reload", "data"),
        Output("att-wl-modal", "is_open", allow_duplicate=True),
        Input("att-wl-confirm", "n_clicks"),
        State("att-wl-target", "data"),
        State("att-wl-reload", "data"),
        prevent_initial_call=True,
    )
    def remove(_clicks, entry_id, reload):
        if not entry_id:
            return no_update, no_update, False
        try:
            sessions.client().delete(f"/waitlist/{entry_id}")
        except ApiError as exc:
            return (
                dbc.Alert(refusal(exc), color="danger", id="att-wl-refused"),
                (reload or 0) + 1,
                False,
            )
        return (
            dbc.Alert("Removed from the waitlist.", color="success", id="att-wl-done"),
            (reload or 0) + 1,
            False,
        )
