"""Events and tickets, the organizers' console: create and edit an event, move it through its
lifecycle, and keep its ticket types, all through the REST API as the signed-in user.

Owners and moderators act; analysts read the same page without a control; anyone else gets the
API's 404. Each save is one API call (one transaction there): a refused one changes nothing and
its reasons appear at the inputs that caused them. A successful one reloads the page from the API
(a new ``?done=`` address), so what is shown is always what was stored.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dash_bootstrap_components as dbc
from dash import ALL, Dash, Input, Output, State, ctx, dcc, html, no_update

from dashboards import format as fmt
from dashboards.client import ApiClient, ApiError, Unauthorized
from dashboards.components import api_problem, empty_state, not_found

PATH = re.compile(r"^/events/([0-9a-fA-F-]{36})/manage$")
NEW_PATH = "/events/new"
MANAGE_ROLES = {"owner", "moderator"}
TIME_FORMAT = "%Y-%m-%d %H:%M"
TIME_HINT = "YYYY-MM-DD HH:MM, in the event's time zone"

# What the API lets change once an event is published (domain/event/service.py
# SAFE_WHEN_PUBLISHED, EventUpdate's description): the other inputs are disabled then.
SAFE_WHEN_PUBLISHED = {
    "title",
    "description",
    "venue",
    "online_url",
    "capacity",
    "registration_closes_at",
    "participants_visibility",
    "hold_minutes",
    "max_holds_per_account",
    "max_held_seats_per_account",
    "remainder_due_at",
}

# The lifecycle the API's state machine allows (domain/event/service.py TRANSITIONS), as buttons.
ACTIONS = {
    "draft": [("publish", "Publish", "primary"), ("cancel", "Cancel event…", "outline-danger")],
    "published": [
        ("unpublish", "Unpublish", "outline-secondary"),
        ("complete", "Mark completed", "primary"),
        ("cancel", "Cancel event…", "outline-danger"),
    ],
}
DONE = {
    "created": "Event created as a draft: add a ticket type, then publish it.",
    "saved": "Changes saved.",
    "publish": "Published: the event is open for registration.",
    "unpublish": "Unpublished: the event is a draft again.",
    "complete": "The event is completed.",
    "cancel": "The event is cancelled; paid registrations are being refunded.",
    "ticket_created": "Ticket type added.",
    "ticket_saved": "Ticket type saved.",
    "cover": "Cover saved.",
    "cover_removed": "Cover removed.",
    "attachment_added": "Document added: readers of the event can download it.",
    "attachment_removed": "Document removed from the event.",
}
COVER_MAX_BYTES = 5 * 1024 * 1024  # the API's image limit (AQSTREAM_MEDIA_IMAGE_MAX_BYTES)
DOCUMENT_MAX_BYTES = 10 * 1024 * 1024  # the API's document limit (..._DOCUMENT_MAX_BYTES)


@dataclass(frozen=True)
class Field:
    """One input of a form: the API's field name, its label and how it is typed."""

    name: str
    label: str
    kind: str = "text"  # text | textarea | time | int | choice | bool | money | group
    help: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    required: bool = False


EVENT_FIELDS = (
    Field("title", "Title", required=True),
    Field("description", "Description", "textarea"),
    Field("timezone", "Time zone", help="An IANA zone, e.g. Europe/Berlin", required=True),
    Field("starts_at", "Starts", "time", TIME_HINT, required=True),
    Field("ends_at", "Ends", "time", TIME_HINT, required=True),
    Field("venue", "Venue"),
    Field("online_url", "Online URL", help="https://…"),
    Field("capacity", "Capacity", "int", "Seats over all ticket types; empty: no event-wide cap"),
    Field(
        "visibility",
        "Visibility",
        "choice",
        options=(("public", "Public"), ("private", "Group only")),
    ),
    Field("group_id", "Group", "group", "Who may see and register for a group-only event"),
    Field(
        "participants_visibility",
        "Participant list",
        "choice",
        options=(("closed", "Hidden from participants"), ("open", "Visible to participants")),
    ),
    Field("registration_opens_at", "Registration opens", "time", "Empty: at once"),
    Field("registration_closes_at", "Registration closes", "time", "Empty: at the start"),
    Field("hold_minutes", "Hold minutes", "int", "How long a seat is held before registering"),
    Field("max_holds_per_account", "Holds per account", "int"),
    Field("max_held_seats_per_account", "Held seats per account", "int"),
    Field("remainder_due_at", "Deposit remainder due", "time", "Empty: at the start"),
    Field("refund_deposit_on_default", "Refund the deposit when the remainder is not paid", "bool"),
    # A participant's own cancellation (docs/registration.md "Refund policy"): fixed once
    # published, as the API holds it.
    Field(
        "refund_days_before_start",
        "Refund on cancelling until (days before the start)",
        "int",
        "0: until the start; empty: cancelling refunds nothing",
    ),
    Field("refund_fee_percent", "Refund fee %", "int", "Kept of each such refund (1–99)"),
    Field(
        "refund_fee_amount",
        "Or a fixed refund fee",
        "money",
        "In the tickets' currency; not with a percent",
    ),
)
TICKET_FIELDS = (
    Field("name", "Name", required=True),
    Field("description", "Description"),
    Field("price_amount", "Price", "money", "0 or empty: free"),
    Field("currency", "Currency", help="ISO 4217, e.g. EUR"),
    Field("capacity", "Capacity", "int", required=True),
    Field("deposit_amount", "Deposit", "money", "Optional: paid first, the rest later"),
    Field("deposit_percent", "Deposit %", "int", "Or a percent of the price (1–99)"),
    Field("sales_starts_at", "Sales start", "time", "Empty: with registration"),
    Field("sales_ends_at", "Sales end", "time", "Empty: with registration"),
    Field("max_per_order", "Seats per order", "int"),
    Field("is_active", "On sale (active)", "bool"),
)
EVENT_DEFAULTS = {
    "timezone": "UTC",
    "visibility": "public",
    "participants_visibility": "closed",
    "hold_minutes": 15,
    "max_holds_per_account": 3,
    "max_held_seats_per_account": 10,
    "refund_deposit_on_default": False,
}
TICKET_DEFAULTS = {"currency": "EUR", "max_per_order": 10, "is_active": True}


def input_id(prefix: str, name: str) -> str:
    return f"{prefix}-{name}"


def error_id(prefix: str, name: str) -> str:
    return f"{prefix}-err-{name}"


# --- values between the API and the inputs ---------------------------------------------------


def to_input(field: Field, value: Any, timezone: str, currency: str = "EUR") -> Any:
    """An API value as its input shows it: times in the event's zone, money in major units."""
    if value is None:
        return False if field.kind == "bool" else ""
    if field.kind == "time":
        return fmt.local_time(value, timezone).strftime(TIME_FORMAT)
    if field.kind == "money":
        digits = fmt.exponent(currency)
        return f"{Decimal(int(value)) / (10**digits):.{digits}f}"
    return value


def zone(name: str | None) -> ZoneInfo | None:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return None


def from_input(field: Field, raw: Any, tz: ZoneInfo | None, currency: str) -> Any:
    """An input's value as the API takes it; ``ValueError`` (its message for the input) when it
    cannot be read at all. What it means is the API's to judge."""
    if field.kind == "bool":
        return bool(raw)
    text = "" if raw is None else str(raw).strip()
    if field.kind in ("choice",):
        return text or None
    if not text:
        if field.kind == "money":
            return 0 if field.name == "price_amount" else None
        return "" if field.required and field.kind == "text" else None
    if field.kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError("A whole number") from None
    if field.kind == "money":
        try:
            amount = Decimal(text.replace(",", "."))
        except InvalidOperation:
            raise ValueError("An amount, e.g. 49.00") from None
        minor = amount * 10 ** fmt.exponent(currency)
        if minor != minor.to_integral_value():
            raise ValueError(f"At most {fmt.exponent(currency)} decimals in {currency}")
        return int(minor)
    if field.kind == "time":
        if tz is None:
            raise ValueError("Fix the time zone first")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"Write it as {TIME_FORMAT.replace('%', '')}") from None
        return moment.replace(tzinfo=tz).isoformat()
    return text


def read_form(
    fields: tuple[Field, ...], values: list, timezone: str | None, currency: str = "EUR"
) -> tuple[dict, dict]:
    """The body the inputs make, and the inputs that cannot be read (name -> reason)."""
    tz = zone(timezone)
    body, errors = {}, {}
    for field, raw in zip(fields, values, strict=True):
        try:
            body[field.name] = from_input(field, raw, tz, currency)
        except ValueError as exc:
            errors[field.name] = str(exc)
    if "timezone" in body and tz is None:
        errors["timezone"] = f"Unknown time zone {timezone!r}"
    return body, errors


def same(field: Field, new: Any, old: Any) -> bool:
    if field.kind == "time" and new and old:  # to the minute, as the inputs show times
        return fmt.parse_time(new).replace(second=0, microsecond=0) == fmt.parse_time(old).replace(
            second=0, microsecond=0
        )
    if field.kind == "text" or field.kind == "textarea":
        return (new or None) == (old or None)
    return new == old


def changes(fields: tuple[Field, ...], body: dict, original: dict) -> dict:
    """Only what differs from what is stored: a published event's locked fields left alone are
    not sent (the API refuses any of them, changed or not)."""
    by_name = {f.name: f for f in fields}
    return {k: v for k, v in body.items() if not same(by_name[k], v, original.get(k))}


def event_body(body: dict) -> dict:
    """The create body: empty optionals left to the API's defaults; no group unless private."""
    out = {k: v for k, v in body.items() if v is not None}
    if out.get("visibility") != "private":
        out.pop("group_id", None)
    return out


# The API's refusals without a field location, placed at the input that caused them.
CODE_FIELDS = {
    "invalid_timezone": "timezone",
    "group_required": "group_id",
    "unknown_group": "group_id",
    "capacity_below_sold": "capacity",
    "invalid_sales_window": "sales_ends_at",
    "invalid_cover": "cover_media_id",
    "invalid_refund_policy": "refund_fee_percent",
}
SCHEDULE_FIELDS = (
    ("end after it starts", "ends_at"),
    ("close after it opens", "registration_closes_at"),
    ("remainder", "remainder_due_at"),
)
FRIENDLY = {
    ("online_url", "string_pattern_mismatch"): "Not a web address: http:// or https://, no spaces",
    ("currency", "string_pattern_mismatch"): "Three capital letters (ISO 4217), e.g. EUR",
}


def field_errors(exc: ApiError, names: set[str], body: dict | None = None) -> dict[str, str]:
    """The API's refusal at the inputs it concerns (``names``): a 422's ``details[].loc``, a
    409's ``details.fields``, or a domain code; an empty answer when it names none."""
    details = exc.details
    out: dict[str, str] = {}
    if isinstance(details, list):
        for item in details:
            loc = [str(p) for p in (item.get("loc") or []) if p != "body"]
            if loc and loc[0] in names:
                text = FRIENDLY.get((loc[0], item.get("type")), item.get("msg") or exc.message)
                out.setdefault(loc[0], text.removeprefix("Value error, "))
        return out
    if isinstance(details, dict) and isinstance(details.get("fields"), list):
        return {f: exc.message for f in details["fields"] if f in names}
    if exc.code == "invalid_schedule":
        for words, name in SCHEDULE_FIELDS:
            if words in exc.message and name in names:
                return {name: exc.message}
    if exc.code == "invalid_deposit":
        percent = body is not None and body.get("deposit_percent") is not None
        name = "deposit_percent" if percent and "price" not in exc.message else "deposit_amount"
        return {name: exc.message} if name in names else {}
    name = CODE_FIELDS.get(exc.code)
    return {name: exc.message} if name in names else {}


# --- rendering ----------------------------------------------------------------------------------


def field_input(
    prefix: str,
    field: Field,
    value: Any,
    *,
    disabled: bool = False,
    groups: list[dict] | None = None,
):
    """A labelled input with its feedback line (``<prefix>-err-<name>``)."""
    ident = input_id(prefix, field.name)
    feedback = html.Div(id=error_id(prefix, field.name), className="invalid-feedback d-block")
    help_text = html.Div(field.help, className="form-text") if field.help else None
    if field.kind == "bool":
        return html.Div(
            [
                dbc.Checkbox(id=ident, label=field.label, value=bool(value), disabled=disabled),
                feedback,
            ],
            className="mb-3",
        )
    if field.kind == "choice":
        control = dbc.RadioItems(
            id=ident,
            options=[
                {"label": label, "value": v, "disabled": disabled} for v, label in field.options
            ],
            value=value or field.options[0][0],
            inline=True,
        )
    elif field.kind == "group":
        options = [{"label": "—", "value": ""}] + [
            {"label": g["name"], "value": g["id"]} for g in groups or []
        ]
        control = dbc.Select(id=ident, options=options, value=value or "", disabled=disabled)
    elif field.kind == "textarea":
        control = dbc.Textarea(id=ident, value=value, disabled=disabled, rows=3)
    else:
        control = dbc.Input(
            id=ident,
            value=value,
            type="text",
            inputMode="numeric" if field.kind == "int" else None,
            placeholder=TIME_FORMAT.replace("%", "") if field.kind == "time" else None,
            disabled=disabled,
        )
    return html.Div(
        [
            dbc.Label(field.label + (" *" if field.required else ""), html_for=ident),
            control,
            feedback,
            help_text,
        ],
        className="mb-3",
    )


def event_form(event: dict | None, groups: list[dict]):
    """The event's inputs, filled from ``event`` (none: a new one); a published event's inputs
    the API locks are disabled."""
    tz = (event or {}).get("timezone") or "UTC"
    locked = (event or {}).get("status") == "published"
    values = {**EVENT_DEFAULTS, **(event or {})}
    inputs = {
        f.name: field_input(
            "ce",
            f,
            to_input(f, values.get(f.name), tz),
            disabled=locked and f.name not in SAFE_WHEN_PUBLISHED,
            groups=groups,
        )
        for f in EVENT_FIELDS
    }

    def row(*names, widths=None):
        widths = widths or [12 // len(names)] * len(names)
        return dbc.Row([dbc.Col(inputs[n], md=w) for n, w in zip(names, widths, strict=True)])

    return html.Div(
        [
            html.H2("What and when", className="h6 text-uppercase text-body-secondary"),
            row("title"),
            row("description"),
            row("timezone", "starts_at", "ends_at"),
            row("venue", "online_url"),
            html.H2("Who and how many", className="h6 text-uppercase text-body-secondary mt-2"),
            row("capacity", "visibility", "group_id"),
            row("participants_visibility"),
            html.H2("Registration", className="h6 text-uppercase text-body-secondary mt-2"),
            row("registration_opens_at", "registration_closes_at", "hold_minutes"),
            row("max_holds_per_account", "max_held_seats_per_account", "remainder_due_at"),
            row("refund_deposit_on_default"),
            html.H2("Refunds", className="h6 text-uppercase text-body-secondary mt-2"),
            row("refund_days_before_start", "refund_fee_percent", "refund_fee_amount"),
            html.Div(
                "Published: only the title, description, venue, online URL, capacity, "
                "registration close, participant list, holds and the remainder's due date "
                "can change.",
                className="form-text mb-2",
            )
            if locked
            else None,
            html.Div(id="ce-form-alert", **{"aria-live": "polite"}),
            dbc.Button(
                "Create event" if event is None else "Save changes", id="ce-save", color="primary"
            ),
        ]
    )


def read_only(event: dict):
    """The event's settings as an analyst reads them: text, no inputs."""
    tz = event["timezone"]
    rows = []
    for f in EVENT_FIELDS:
        value = event.get(f.name)
        if f.kind == "time":
            shown = fmt.when(value, tz, with_zone=False) if value else fmt.NONE
        elif f.kind == "bool":
            shown = "yes" if value else "no"
        elif f.kind == "choice":
            shown = dict(f.options).get(value, value)
        else:
            shown = fmt.NONE if value in (None, "") else str(value)
        rows.append(
            html.Tr(
                [
                    html.Th(f.label, scope="row", className="fw-normal text-body-secondary"),
                    html.Td(shown),
                ]
            )
        )
    return dbc.Table(html.Tbody(rows), size="sm", id="ce-readonly", className="mb-0")


def money_or_free(amount: int, currency: str) -> str:
    return "free" if not amount else fmt.money(amount, currency)


def deposit_text(tt: dict) -> str:
    if tt.get("deposit_amount"):
        return fmt.money(tt["deposit_amount"], tt["currency"])
    if tt.get("deposit_percent"):
        return fmt.current().percent.format(number=tt["deposit_percent"])
    return fmt.NONE


def sales_window(tt: dict, tz: str) -> str:
    start, end = tt.get("sales_starts_at"), tt.get("sales_ends_at")
    if not start and not end:
        return "with registration"
    return (
        f"{fmt.when(start, tz, with_zone=False) if start else '…'} – "
        f"{fmt.when(end, tz, with_zone=False) if end else '…'}"
    )


def ticket_table(ticket_types: list[dict], tz: str, can_edit: bool):
    """One row per ticket type: price, deposit, seats registered and held (the API's ``sold``
    counts both; ``held`` is the part in holds), available, capacity, sales window, active."""
    if not ticket_types:
        return html.P(
            "No ticket types yet: publishing needs at least one active one.",
            className="text-body-secondary",
            id="ce-tt-empty",
        )
    head = [
        "Name",
        "Price",
        "Deposit",
        "Registered",
        "Held",
        "Available",
        "Capacity",
        "Sales window",
        "Active",
    ] + ([""] if can_edit else [])
    rows = []
    for tt in ticket_types:
        cells = [
            tt["name"],
            money_or_free(tt["price_amount"], tt["currency"]),
            deposit_text(tt),
            fmt.number(tt["sold"] - (tt.get("held") or 0)),
            fmt.number(tt["held"]) if tt.get("held") is not None else "–",
            fmt.number(tt["available"]),
            fmt.number(tt["capacity"]),
            sales_window(tt, tz),
            "yes" if tt["is_active"] else "no",
        ]
        tds = [html.Td(c) for c in cells]
        if can_edit:
            tds.append(
                html.Td(
                    dbc.Button(
                        "Edit", id={"type": "ce-tt-edit", "id": tt["id"]}, size="sm", color="link"
                    )
                )
            )
        rows.append(html.Tr(tds, id={"type": "ce-tt-row", "id": tt["id"]}))
    return dbc.Table(
        [html.Thead(html.Tr([html.Th(h, scope="col") for h in head])), html.Tbody(rows)],
        hover=True,
        responsive=True,
        size="sm",
        className="align-middle",
        id="ce-tt-table",
    )


def ticket_form():
    """Create or edit a ticket type (``ce-tt-editing``: the one edited, or none: a new one)."""
    inputs = {
        f.name: field_input("ce-tt", f, to_input(f, TICKET_DEFAULTS.get(f.name), "UTC"))
        for f in TICKET_FIELDS
    }
    return dbc.Collapse(
        dbc.Card(
            dbc.CardBody(
                [
                    html.H3("New ticket type", id="ce-tt-form-title", className="h6"),
                    dbc.Row([dbc.Col(inputs["name"], md=6), dbc.Col(inputs["description"], md=6)]),
                    dbc.Row(
                        [
                            dbc.Col(inputs[n], md=3)
                            for n in (
                                "price_amount",
                                "currency",
                                "deposit_amount",
                                "deposit_percent",
                            )
                        ]
                    ),
                    dbc.Row(
                        [
                            dbc.Col(inputs[n], md=3)
                            for n in (
                                "capacity",
                                "max_per_order",
                                "sales_starts_at",
                                "sales_ends_at",
                            )
                        ]
                    ),
                    inputs["is_active"],
                    html.Div(id="ce-tt-alert", **{"aria-live": "polite"}),
                    dbc.Button(
                        "Save ticket type", id="ce-tt-save", color="primary", className="me-2"
                    ),
                    dbc.Button("Close", id="ce-tt-close", color="link"),
                ]
            ),
            className="mt-3",
        ),
        id="ce-tt-collapse",
        is_open=False,
    )


def public_links(event: dict, ticket_types: list[dict], api_base: str):
    """Where participants find the event, and the call that registers them."""
    url = f"{api_base}/api/v1/events/{event['id']}"
    first = next((t for t in ticket_types if t["is_active"]), None)
    snippet = (
        f"curl -X POST {url}/registrations \\\n"
        "  -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' \\\n"
        f'  -d \'{{"ticket_type_id": "{first["id"] if first else "<ticket type id>"}", '
        '"quantity": 1}\''
    )
    public = event["status"] == "published" and event["visibility"] == "public"
    note = (
        "Anyone can read it."
        if public
        else "Participants see it once it is published"
        + ("" if event["visibility"] == "public" else ", and only members of its group")
        + "."
    )
    return dbc.Card(
        dbc.CardBody(
            [
                html.H2("Public link", className="h6"),
                html.Div(
                    [
                        html.A(url, href=url, id="ce-public-url", target="_blank", rel="noopener"),
                        " ",
                        dcc.Clipboard(
                            target_id="ce-public-url",
                            title="Copy the link",
                            className="d-inline-block ms-1",
                        ),
                    ]
                ),
                html.Div(note, className="form-text mb-2"),
                html.H2("Registration snippet", className="h6 mt-2"),
                html.Div(
                    [
                        html.Pre(
                            snippet, id="ce-snippet", className="bg-body-tertiary p-2 small mb-0"
                        ),
                        dcc.Clipboard(
                            target_id="ce-snippet",
                            title="Copy the snippet",
                            style={"position": "absolute", "top": 4, "right": 8},
                        ),
                    ],
                    style={"position": "relative"},
                ),
                html.Div(
                    "A signed-in participant's token; paid tickets then pay "
                    "(docs/registration.md).",
                    className="form-text",
                ),
            ]
        ),
        className="shadow-sm mb-4",
        id="ce-public",
    )


def lifecycle_buttons(event: dict, now: datetime):
    """The moves the state machine allows from the event's state; completing only once the event
    has ended (as on the event dashboard)."""
    buttons = []
    for action, label, colour in ACTIONS.get(event["status"], []):
        if action == "complete" and fmt.parse_time(event["ends_at"]) > now:
            continue
        buttons.append(
            dbc.Button(label, id={"type": "ce-action", "action": action}, color=colour, size="sm")
        )
    return html.Div(buttons, className="d-flex gap-2", id="ce-actions")


def cancel_modal(event: dict, ticket_types: list[dict]):
    taken = sum(t["sold"] for t in ticket_types)
    paid = any(t["price_amount"] for t in ticket_types)
    return dbc.Modal(
        [
            dbc.ModalHeader(dbc.ModalTitle(f"Cancel {event['title']}?")),
            dbc.ModalBody(
                [
                    html.P(
                        [
                            "Cancelling cannot be undone. Registration closes and the waiting "
                            "list is dropped. ",
                            html.Strong("Every paid registration is refunded automatically"),
                            " (the payment saga asks the provider for the refund of each payment "
                            "still holding money; the registration is cancelled once its money "
                            "went back).",
                        ],
                        id="ce-cancel-text",
                    ),
                    html.P(
                        f"{fmt.number(taken)} seats are taken now"
                        + (" (some of them paid tickets)." if paid else "."),
                        className="text-body-secondary",
                    ),
                    dbc.Label(
                        "Reason (optional, max. 500 characters)", html_for="ce-cancel-reason"
                    ),
                    dbc.Textarea(id="ce-cancel-reason", maxLength=500, rows=2),
                    html.Div(id="ce-cancel-alert", className="mt-2"),
                ]
            ),
            dbc.ModalFooter(
                [
                    dbc.Button("Keep the event", id="ce-cancel-keep", color="secondary"),
                    dbc.Button(
                        "Cancel the event and refund", id="ce-cancel-confirm", color="danger"
                    ),
                ]
            ),
        ],
        id="ce-cancel-modal",
        is_open=False,
    )


def cover_card(client: ApiClient, event: dict, can_edit: bool):
    """The cover as stored (read through the API's redirect), and for managers an upload with a
    preview of the chosen image before it is stored."""
    stored = client.cover_image(event["id"]) if event.get("cover_media_id") else None
    if stored is not None:
        data, kind = stored
        current = html.Img(
            src=f"data:{kind};base64,{base64.b64encode(data).decode()}",
            alt="The event's cover",
            id="ce-cover-current",
            className="img-fluid rounded mb-2",
        )
    elif event.get("cover_media_id"):
        current = html.P(
            "A cover is set; it cannot be shown right now.",
            id="ce-cover-current",
            className="text-body-secondary",
        )
    else:
        current = html.P("No cover yet.", id="ce-cover-current", className="text-body-secondary")
    body = [html.H2("Cover image", className="h6"), current]
    if can_edit:
        body += [
            dcc.Upload(
                html.Div(["Drop an image here or ", html.A("choose one", href="#")]),
                id="ce-cover-upload",
                accept="image/jpeg,image/png,image/webp,image/gif",
                max_size=COVER_MAX_BYTES,
                className="border border-2 border-dashed rounded p-3 text-center small",
            ),
            html.Div(
                "JPEG, PNG, WebP or GIF up to 5 MiB; stored as WebP variants, without metadata.",
                className="form-text",
            ),
            html.Img(
                id="ce-cover-preview",
                alt="The chosen image",
                className="img-fluid rounded mt-2",
                style={"display": "none"},
            ),
            html.Div(id="ce-cover-alert", className="mt-2", **{"aria-live": "polite"}),
            html.Div(
                [
                    dbc.Button(
                        "Use as cover",
                        id="ce-cover-save",
                        color="primary",
                        size="sm",
                        disabled=True,
                    ),
                    dbc.Button(  # always there: a callback fires only with all its inputs
                        "Remove the cover",
                        id="ce-cover-remove",
                        color="link",
                        size="sm",
                        style={} if event.get("cover_media_id") else {"display": "none"},
                    ),
                ],
                className="d-flex gap-2 mt-2",
            ),
        ]
    return dbc.Card(dbc.CardBody(body), className="shadow-sm mb-4", id="ce-cover")


def attachments_card(client: ApiClient, event: dict, can_edit: bool):
    """The documents the event lists for its readers (programme, rules): each downloadable here,
    and for managers removable; a PDF chosen with a title adds one."""
    try:
        items = client.get(f"/events/{event['id']}/attachments")["items"]
    except ApiError as exc:
        items, unreadable = [], dbc.Alert(f"{exc.message} ({exc.code})", color="warning")
    else:
        unreadable = None
    rows = []
    for a in items:
        cells = [
            html.Td(a["title"]),
            html.Td(a.get("filename") or "", className="small text-body-secondary"),
            html.Td(fmt.size(a["size_bytes"]), className="text-end"),
            html.Td(
                html.Div(
                    [
                        dbc.Button(
                            "Download",
                            id={"type": "ce-att-download", "id": a["id"]},
                            color="link",
                            size="sm",
                        ),
                        dbc.Button(
                            "Remove",
                            id={"type": "ce-att-remove", "id": a["id"]},
                            color="link",
                            size="sm",
                            className="text-danger",
                        )
                        if can_edit
                        else None,
                    ],
                    className="d-flex",
                )
            ),
        ]
        rows.append(html.Tr(cells, id={"type": "ce-att-row", "id": a["id"]}))
    listing = (
        dbc.Table(html.Tbody(rows), size="sm", className="align-middle mb-2", id="ce-att-list")
        if rows
        else html.P("No documents yet.", className="text-body-secondary", id="ce-att-list")
    )
    body = [
        html.H2("Documents", className="h6"),
        unreadable,
        listing,
        dcc.Download(id="ce-att-file"),
    ]
    if can_edit:
        body += [
            dbc.Input(
                id="ce-att-title", placeholder="Title, e.g. Programme", maxLength=200, size="sm"
            ),
            dcc.Upload(
                html.Div(["Drop a PDF here or ", html.A("choose one", href="#")]),
                id="ce-att-upload",
                accept="application/pdf",
                max_size=DOCUMENT_MAX_BYTES,
                className="border border-2 border-dashed rounded p-2 text-center small mt-2",
            ),
            html.Div(id="ce-att-chosen", className="form-text"),
            dbc.Button(
                "Add the document", id="ce-att-add", color="primary", size="sm", className="mt-2"
            ),
        ]
    body.append(html.Div(id="ce-att-alert", className="mt-2", **{"aria-live": "polite"}))
    return dbc.Card(dbc.CardBody(body), className="shadow-sm mb-4", id="ce-attachments")


def save_attachment(
    client: ApiClient, contents: str | None, filename: str | None, title: str | None,
    event_id: str, org_id: str,
):  # fmt: skip
    """Upload the chosen PDF (purpose ``attachment``) and list it on the event: two calls, so a
    document the event then refuses stays an unused upload for the media cleanup."""
    if not (title or "").strip():
        return None, dbc.Alert("Give the document a title.", color="warning")
    if not contents:
        return None, dbc.Alert("Choose a PDF first.", color="warning")
    try:
        data = base64.b64decode(contents.split(",", 1)[1], validate=True)
    except (IndexError, binascii.Error):
        return None, dbc.Alert("The file could not be read.", color="danger")
    try:
        media = client.upload_media(org_id, "attachment", filename or "document.pdf", data)
        client.post(
            f"/events/{event_id}/attachments", {"media_id": media["id"], "title": title.strip()}
        )
    except ApiError as exc:
        return None, problem(exc, f"/events/{event_id}/manage")
    return goto(event_id, "attachment_added"), None


def flash(search: str | None):
    done = (parse_qs((search or "").lstrip("?")).get("done") or [""])[0]
    text = DONE.get(done)
    return dbc.Alert(text, color="success", id="ce-flash", dismissable=True) if text else None


def stores(event_id: str | None, org_id: str | None, event: dict | None, ticket_types: list[dict]):
    return [
        dcc.Store(id="ce-event-id", data=event_id),
        dcc.Store(id="ce-org", data=org_id),
        dcc.Store(id="ce-original", data=event),
        dcc.Store(id="ce-tickets", data=ticket_types),
        dcc.Store(id="ce-tt-editing", data=None),
        html.Div(id="ce-goto"),
    ]


def new_page(client: ApiClient, org: dict, search: str | None):
    """``/events/new``: the create form, for owners and moderators of the chosen organization."""
    if org["role"] not in MANAGE_ROLES:
        return empty_state(
            "Owners and moderators create events",
            "Your role in this organization reads its events; ask an owner to create one.",
        )
    try:
        groups = client.groups(org["id"])
    except ApiError as exc:
        return api_problem(exc, NEW_PATH)
    return html.Div(
        [
            *stores(None, org["id"], None, []),
            html.H1("New event", className="h3"),
            html.Div(
                f"A draft in {org['name']}: nobody sees it until it is published.",
                className="text-body-secondary mb-3",
            ),
            dbc.Card(dbc.CardBody(event_form(None, groups)), className="shadow-sm"),
        ]
    )


def manage_page(
    client: ApiClient,
    event_id: str,
    orgs: list[dict],
    search: str | None,
    api_base: str,
    now: datetime,
):
    """``/events/<id>/manage``: the event's settings, lifecycle and ticket types; controls for
    owners and moderators, the same read-only for analysts."""
    here = f"/events/{event_id}/manage"
    try:
        event = client.event(event_id)
        ticket_types = client.ticket_types(event_id)
    except ApiError as exc:
        if not isinstance(exc, Unauthorized) and exc.status in (403, 404):
            return not_found(
                "Event not found",
                "There is no event at this address, or your "
                "role in its organization does not show it.",
            )
        return api_problem(exc, here)
    role = {o["id"]: o["role"] for o in orgs}.get(event["organization_id"])
    if role is None:  # a public event of an organization the user is not in: not theirs to manage
        return not_found(
            "Event not found", "This event belongs to an organization you are not a member of."
        )
    can_edit = role in MANAGE_ROLES
    closed = event["status"] in ("cancelled", "completed")
    groups: list[dict] = []
    if can_edit and not closed:
        try:
            groups = client.groups(event["organization_id"])
        except ApiError as exc:
            return api_problem(exc, here)
    tz = event["timezone"]
    colours = {"published": "success", "draft": "secondary", "cancelled": "danger"}
    header = html.Div(
        [
            html.Div(
                [
                    html.H1(event["title"], className="h3 mb-1", id="ce-heading"),
                    html.Div(
                        [
                            dbc.Badge(
                                event["status"],
                                color=colours.get(event["status"], "dark"),
                                className="me-2",
                                id="ce-status",
                            ),
                            f"{fmt.when(event['starts_at'], tz, with_zone=False)} – "
                            f"{fmt.when(event['ends_at'], tz)}",
                            dcc.Link("Analytics", href=f"/events/{event_id}", className="ms-3"),
                            dcc.Link(
                                "Attendees",
                                href=f"/events/{event_id}/attendees",
                                className="ms-3",
                                id="ce-attendees-link",
                            ),
                            dcc.Link(
                                "Message attendees" if can_edit else "Messages",
                                href=f"/events/{event_id}/messages",
                                className="ms-3",
                                id="ce-messages-link",
                            ),
                        ],
                        className="text-body-secondary",
                    ),
                ]
            ),
            lifecycle_buttons(event, now) if can_edit else None,
        ],
        className="d-flex justify-content-between flex-wrap gap-2 mb-3",
    )
    settings = (
        event_form(event, groups)
        if can_edit and not closed
        else html.Div(
            [
                html.P(
                    f"A {event['status']} event cannot be edited.", className="text-body-secondary"
                )
                if can_edit
                else None,
                read_only(event),
            ]
        )
    )
    tickets = [
        html.Div(ticket_table(ticket_types, tz, can_edit and not closed), id="ce-tt-list"),
    ]
    if can_edit and not closed:
        tickets += [
            dbc.Button("Add a ticket type", id="ce-tt-new", color="outline-primary", size="sm"),
            ticket_form(),
        ]
    return html.Div(
        [
            *stores(event_id, event["organization_id"], event, ticket_types),
            flash(search),
            header,
            html.Div(id="ce-action-alert", **{"aria-live": "polite"}),
            cancel_modal(event, ticket_types) if can_edit else None,
            dbc.Row(
                [
                    dbc.Col(
                        dbc.Card(
                            [
                                dbc.CardHeader(html.H2("Settings", className="h6 mb-0")),
                                dbc.CardBody(settings),
                            ],
                            className="shadow-sm mb-4",
                        ),
                        lg=7,
                    ),
                    dbc.Col(
                        [
                            public_links(event, ticket_types, api_base),
                            cover_card(client, event, can_edit and not closed),
                            attachments_card(client, event, can_edit and not closed),
                            dbc.Card(
                                [
                                    dbc.CardHeader(html.H2("Ticket types", className="h6 mb-0")),
                                    dbc.CardBody(tickets),
                                ],
                                className="shadow-sm",
                            ),
                        ],
                        lg=5,
                    ),
                ]
            ),
        ]
    )


def goto(event_id: str, done: str):
    """Load the page afresh from the API, saying what was done (a new address each time). A full
    load: a Location mounted by a callback navigates only with ``refresh=True``."""
    href = f"/events/{event_id}/manage?done={done}&n={uuid.uuid4().hex[:8]}"
    return dcc.Location(id="ce-to", href=href, refresh=True)


def problem(exc: ApiError, path: str):
    """An API refusal no input caused, in the API's words."""
    if isinstance(exc, Unauthorized) or exc.status in (403, 404):
        return api_problem(exc, path)
    return dbc.Alert(f"{exc.message} ({exc.code})", color="danger", className="mt-2 mb-2")


# --- callbacks ------------------------------------------------------------------------------------


EVENT_NAMES = {f.name for f in EVENT_FIELDS}
TICKET_NAMES = {f.name for f in TICKET_FIELDS}
_INVALID = ("text", "textarea", "time", "int", "money")  # the inputs with an ``invalid`` prop


def _error_outputs(prefix: str, fields: tuple[Field, ...], duplicate: bool = False) -> list:
    outputs = []
    for f in fields:
        if f.kind in _INVALID:
            outputs.append(Output(input_id(prefix, f.name), "invalid", allow_duplicate=duplicate))
        outputs.append(Output(error_id(prefix, f.name), "children", allow_duplicate=duplicate))
    return outputs


def _error_values(fields: tuple[Field, ...], errors: dict[str, str]) -> list:
    values = []
    for f in fields:
        if f.kind in _INVALID:
            values.append(f.name in errors)
        values.append(errors.get(f.name))
    return values


def save_event(
    client: ApiClient, values: list, event_id: str | None, org_id: str | None, original: dict | None
):
    """Create (``event_id`` none) or update the event: the page to go to, or the errors (input ->
    reason) and an alert for what no input explains."""
    by_name = dict(zip((f.name for f in EVENT_FIELDS), values, strict=True))
    body, errors = read_form(EVENT_FIELDS, values, by_name.get("timezone") or "UTC")
    if errors:
        return None, errors, dbc.Alert("Check the marked fields.", color="danger")
    try:
        if event_id is None:
            created = client.create_event({"organization_id": org_id, **event_body(body)})
            return goto(created["id"], "created"), {}, None
        if body.get("visibility") != "private":
            body["group_id"] = None  # the API keeps a group only for a private event
        diff = changes(EVENT_FIELDS, body, original or {})
        if not diff:
            return None, {}, dbc.Alert("Nothing changed.", color="info")
        client.update_event(event_id, diff)
        return goto(event_id, "saved"), {}, None
    except ApiError as exc:
        errors = field_errors(exc, EVENT_NAMES, body)
        path = NEW_PATH if event_id is None else f"/events/{event_id}/manage"
        if errors:
            return (
                None,
                errors,
                dbc.Alert(
                    "The platform refused: see the marked fields. Nothing was saved.",
                    color="danger",
                ),
            )
        return None, {}, problem(exc, path)


def save_ticket(
    client: ApiClient,
    values: list,
    event_id: str,
    editing: str | None,
    tickets: list[dict],
    timezone: str,
):
    """Create or update a ticket type (only what changed): where to go, or errors and alert."""
    by_name = dict(zip((f.name for f in TICKET_FIELDS), values, strict=True))
    currency = (by_name.get("currency") or "EUR").strip().upper() or "EUR"
    body, errors = read_form(TICKET_FIELDS, values, timezone, currency)
    if errors:
        return None, errors, dbc.Alert("Check the marked fields.", color="danger")
    body["currency"] = currency
    try:
        if editing is None:
            client.create_ticket_type(event_id, {k: v for k, v in body.items() if v is not None})
            return goto(event_id, "ticket_created"), {}, None
        original = next((t for t in tickets or [] if t["id"] == editing), {})
        diff = changes(TICKET_FIELDS, body, original)
        if not diff:
            return None, {}, dbc.Alert("Nothing changed.", color="info")
        client.update_ticket_type(event_id, editing, diff)
        return goto(event_id, "ticket_saved"), {}, None
    except ApiError as exc:
        errors = field_errors(exc, TICKET_NAMES, body)
        if errors:
            return None, errors, dbc.Alert(f"Not saved: {exc.message}", color="danger")
        return None, {}, problem(exc, f"/events/{event_id}/manage")


def ticket_values(tt: dict | None, timezone: str) -> list:
    """The ticket form's values for ``tt`` (none: a new one's defaults)."""
    source = tt or TICKET_DEFAULTS
    currency = source.get("currency") or "EUR"
    return [to_input(f, source.get(f.name), timezone, currency) for f in TICKET_FIELDS]


def save_cover(
    client: ApiClient, contents: str | None, filename: str | None, event_id: str, org_id: str
):
    """Upload the chosen image and make it the cover: where to go, or the API's refusal. Two
    calls: an upload the event then refuses stays unused (docs/media.md cleans those up)."""
    if not contents or "," not in contents:
        return None, dbc.Alert("Choose an image first.", color="warning")
    try:
        data = base64.b64decode(contents.split(",", 1)[1], validate=True)
    except (binascii.Error, ValueError):
        return None, dbc.Alert("That file could not be read.", color="danger")
    try:
        media = client.upload_media(org_id, "event_cover", filename or "cover", data)
        client.update_event(event_id, {"cover_media_id": media["id"]})
    except ApiError as exc:
        return None, problem(exc, f"/events/{event_id}/manage")
    return goto(event_id, "cover"), None


def register(app: Dash, sessions) -> None:
    event_states = [State(input_id("ce", f.name), "value") for f in EVENT_FIELDS]
    ticket_states = [State(input_id("ce-tt", f.name), "value") for f in TICKET_FIELDS]

    @app.callback(
        Output("ce-goto", "children"),
        Output("ce-form-alert", "children"),
        *_error_outputs("ce", EVENT_FIELDS),
        Input("ce-save", "n_clicks"),
        *event_states,
        State("ce-event-id", "data"),
        State("ce-org", "data"),
        State("ce-original", "data"),
        prevent_initial_call=True,
    )
    def on_save(_clicks, *args):
        values, (event_id, org_id, original) = list(args[:-3]), args[-3:]
        try:
            client = sessions.client()
        except ApiError as exc:
            return (api_problem(exc, NEW_PATH), None, *_error_values(EVENT_FIELDS, {}))
        target, errors, alert = save_event(client, values, event_id, org_id, original)
        return (
            no_update if target is None else target,
            alert,
            *_error_values(EVENT_FIELDS, errors),
        )

    @app.callback(
        Output("ce-goto", "children", allow_duplicate=True),
        Output("ce-action-alert", "children"),
        Output("ce-cancel-modal", "is_open"),
        Input({"type": "ce-action", "action": ALL}, "n_clicks"),
        State("ce-event-id", "data"),
        prevent_initial_call=True,
    )
    def on_action(clicks, event_id):
        if not any(clicks or []) or not isinstance(ctx.triggered_id, dict):
            return no_update, no_update, no_update
        action = ctx.triggered_id["action"]
        if action == "cancel":
            return no_update, None, True
        try:
            sessions.client().event_action(event_id, action)
        except ApiError as exc:
            return no_update, problem(exc, f"/events/{event_id}/manage"), no_update
        return goto(event_id, action), None, no_update

    @app.callback(
        Output("ce-goto", "children", allow_duplicate=True),
        Output("ce-cancel-alert", "children"),
        Output("ce-cancel-modal", "is_open", allow_duplicate=True),
        Input("ce-cancel-confirm", "n_clicks"),
        Input("ce-cancel-keep", "n_clicks"),
        State("ce-cancel-reason", "value"),
        State("ce-event-id", "data"),
        prevent_initial_call=True,
    )
    def on_cancel(_confirm, _keep, reason, event_id):
        if ctx.triggered_id == "ce-cancel-keep":
            return no_update, None, False
        body = {"reason": reason.strip()} if reason and reason.strip() else None
        try:
            sessions.client().event_action(event_id, "cancel", body)
        except ApiError as exc:
            return no_update, problem(exc, f"/events/{event_id}/manage"), no_update
        return goto(event_id, "cancel"), None, False

    @app.callback(
        Output("ce-tt-collapse", "is_open"),
        Output("ce-tt-editing", "data"),
        Output("ce-tt-form-title", "children"),
        *[Output(input_id("ce-tt", f.name), "value") for f in TICKET_FIELDS],
        *_error_outputs("ce-tt", TICKET_FIELDS, duplicate=True),
        Output("ce-tt-alert", "children", allow_duplicate=True),
        Input({"type": "ce-tt-edit", "id": ALL}, "n_clicks"),
        Input("ce-tt-new", "n_clicks"),
        Input("ce-tt-close", "n_clicks"),
        State("ce-tickets", "data"),
        State("ce-original", "data"),
        prevent_initial_call=True,
    )
    def on_ticket_open(edit_clicks, new_clicks, _close, tickets, event):
        trigger = ctx.triggered_id
        cleared = _error_values(TICKET_FIELDS, {})
        keep = [no_update] * len(TICKET_FIELDS)
        if trigger == "ce-tt-close":
            return (False, None, no_update, *keep, *cleared, None)
        if isinstance(trigger, dict):
            if not any(edit_clicks or []):
                return (no_update,) * (4 + len(TICKET_FIELDS) + len(cleared))
            tt = next((t for t in tickets or [] if t["id"] == trigger["id"]), None)
            title = f"Edit {tt['name']}" if tt else "New ticket type"
            return (
                True,
                tt and tt["id"],
                title,
                *ticket_values(tt, event["timezone"]),
                *cleared,
                None,
            )
        if not new_clicks:
            return (no_update,) * (4 + len(TICKET_FIELDS) + len(cleared))
        return (
            True,
            None,
            "New ticket type",
            *ticket_values(None, event["timezone"]),
            *cleared,
            None,
        )

    @app.callback(
        Output("ce-goto", "children", allow_duplicate=True),
        Output("ce-tt-alert", "children", allow_duplicate=True),
        *_error_outputs("ce-tt", TICKET_FIELDS, duplicate=True),
        Input("ce-tt-save", "n_clicks"),
        *ticket_states,
        State("ce-event-id", "data"),
        State("ce-tt-editing", "data"),
        State("ce-tickets", "data"),
        State("ce-original", "data"),
        prevent_initial_call=True,
    )
    def on_ticket_save(_clicks, *args):
        values, (event_id, editing, tickets, event) = list(args[:-4]), args[-4:]
        try:
            client = sessions.client()
        except ApiError as exc:
            return (api_problem(exc, "/"), None, *_error_values(TICKET_FIELDS, {}))
        target, errors, alert = save_ticket(
            client, values, event_id, editing, tickets, event["timezone"]
        )
        return (
            no_update if target is None else target,
            alert,
            *_error_values(TICKET_FIELDS, errors),
        )

    @app.callback(
        Output("ce-cover-preview", "src"),
        Output("ce-cover-preview", "style"),
        Output("ce-cover-save", "disabled"),
        Output("ce-cover-alert", "children"),
        Input("ce-cover-upload", "contents"),
        prevent_initial_call=True,
    )
    def on_cover_chosen(contents):
        if not contents or not contents.startswith("data:image/"):
            return None, {"display": "none"}, True, dbc.Alert("Not an image.", color="warning")
        return contents, {}, False, None

    @app.callback(
        Output("ce-att-chosen", "children"),
        Input("ce-att-upload", "filename"),
        prevent_initial_call=True,
    )
    def on_attachment_chosen(filename):
        return f"Chosen: {filename}" if filename else None

    @app.callback(
        Output("ce-goto", "children", allow_duplicate=True),
        Output("ce-att-alert", "children"),
        Input("ce-att-add", "n_clicks"),
        State("ce-att-upload", "contents"),
        State("ce-att-upload", "filename"),
        State("ce-att-title", "value"),
        State("ce-event-id", "data"),
        State("ce-org", "data"),
        prevent_initial_call=True,
    )
    def on_attachment_add(clicks, contents, filename, title, event_id, org_id):
        if not clicks:
            return no_update, no_update
        try:
            client = sessions.client()
        except ApiError as exc:
            return no_update, api_problem(exc, f"/events/{event_id}/manage")
        target, alert = save_attachment(client, contents, filename, title, event_id, org_id)
        return no_update if target is None else target, alert

    @app.callback(
        Output("ce-goto", "children", allow_duplicate=True),
        Output("ce-att-alert", "children", allow_duplicate=True),
        Input({"type": "ce-att-remove", "id": ALL}, "n_clicks"),
        State("ce-event-id", "data"),
        prevent_initial_call=True,
    )
    def on_attachment_remove(clicks, event_id):
        if not any(clicks or []) or not isinstance(ctx.triggered_id, dict):
            return no_update, no_update
        try:
            sessions.client().delete(f"/events/{event_id}/attachments/{ctx.triggered_id['id']}")
        except ApiError as exc:
            return no_update, problem(exc, f"/events/{event_id}/manage")
        return goto(event_id, "attachment_removed"), None

    @app.callback(
        Output("ce-att-file", "data"),
        Output("ce-att-alert", "children", allow_duplicate=True),
        Input({"type": "ce-att-download", "id": ALL}, "n_clicks"),
        State("ce-event-id", "data"),
        prevent_initial_call=True,
    )
    def on_attachment_download(clicks, event_id):
        if not any(clicks or []) or not isinstance(ctx.triggered_id, dict):
            return no_update, no_update
        try:
            client = sessions.client()
            items = client.get(f"/events/{event_id}/attachments")["items"]
        except ApiError as exc:
            return no_update, problem(exc, f"/events/{event_id}/manage")
        chosen = next((a for a in items if a["id"] == ctx.triggered_id["id"]), None)
        got = client.attachment_file(event_id, ctx.triggered_id["id"]) if chosen else None
        if got is None:
            return no_update, dbc.Alert("The document cannot be read right now.", color="warning")
        name = chosen.get("filename") or f"{chosen['title']}.pdf"
        return dcc.send_bytes(got[0], name), None

    @app.callback(
        Output("ce-goto", "children", allow_duplicate=True),
        Output("ce-cover-alert", "children", allow_duplicate=True),
        Input("ce-cover-save", "n_clicks"),
        Input("ce-cover-remove", "n_clicks"),
        State("ce-cover-upload", "contents"),
        State("ce-cover-upload", "filename"),
        State("ce-event-id", "data"),
        State("ce-org", "data"),
        prevent_initial_call=True,
    )
    def on_cover_save(save, remove, contents, filename, event_id, org_id):
        try:
            client = sessions.client()
        except ApiError as exc:
            return no_update, api_problem(exc, f"/events/{event_id}/manage")
        if ctx.triggered_id == "ce-cover-remove":
            if not remove:
                return no_update, no_update
            try:
                client.update_event(event_id, {"cover_media_id": None})
            except ApiError as exc:
                return no_update, problem(exc, f"/events/{event_id}/manage")
            return goto(event_id, "cover_removed"), None
        if not save:
            return no_update, no_update
        target, alert = save_cover(client, contents, filename, event_id, org_id)
        return no_update if target is None else target, alert
