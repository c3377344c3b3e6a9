"""The event dashboard: KPI cards, activity and revenue over time, the funnel, revenue by ticket
type, traffic sources and, while the event runs, a live check-in counter.

The layout is built once per visit; the interval callback only replaces the cards' text and the
figures' data (each figure keeps its ``uirevision``), so a refresh never flickers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dash_bootstrap_components as dbc
from dash import ALL, Dash, Input, Output, State, ctx, dcc, html, no_update

from dashboards import figures
from dashboards import format as fmt
from dashboards.client import ApiClient, ApiError, Unauthorized
from dashboards.components import (
    api_problem,
    kpi_card,
    kpi_row,
    loading_state,
    not_found,
    period_select,
)

PERIODS = {
    "all": ("Whole event", None),
    "24h": ("Last 24 hours", timedelta(hours=24)),
    "7d": ("7 days", timedelta(days=7)),
    "30d": ("30 days", timedelta(days=30)),
}
MANAGE_ROLES = {"owner", "moderator"}
GRAPHS = ("ev-activity", "ev-revenue", "ev-funnel", "ev-tickets", "ev-sources")
BUCKETS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}


def window(period: str, event: dict, now: datetime) -> tuple[datetime | None, datetime, str]:
    """The ``from``, ``to`` and granularity asked of the API for a period choice.

    Every period ends now (to the next minute); "whole event" starts at the event's creation
    (nothing about it can be older)."""
    _, length = PERIODS.get(period, PERIODS["all"])
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    if length is not None:
        start = end - length
    else:
        created = fmt.parse_time(event.get("created_at") or event["starts_at"])
        start = min(created.replace(second=0, microsecond=0), end - timedelta(minutes=1))
    return start, end, granularity_for(end - start)


def granularity_for(span: timedelta) -> str:
    """Buckets a chart can show side by side: minutes up to 6 hours, hours up to 8 days."""
    if span <= timedelta(hours=6):
        return "minute"
    return "hour" if span <= timedelta(days=8) else "day"


def has_data(dashboard: dict) -> bool:
    k = dashboard.get("kpis") or {}
    return any(k.get(key) for key in ("views", "registrations", "checkins", "reservations")) or any(
        r.get("gross") for r in dashboard.get("revenue") or []
    )


def is_live(dashboard: dict, now: datetime) -> bool:
    """Doors open: from an hour before the start to the end."""
    starts, ends = fmt.parse_time(dashboard["starts_at"]), fmt.parse_time(dashboard["ends_at"])
    return starts - timedelta(hours=1) <= now <= ends and dashboard.get("status") != "cancelled"


def started(dashboard: dict, now: datetime) -> bool:
    """The doors have opened (an hour before the start), or someone has checked in already."""
    doors = fmt.parse_time(dashboard["starts_at"]) - timedelta(hours=1)
    return now >= doors or bool((dashboard.get("kpis") or {}).get("checkins"))


def time_span(dashboard: dict, now: datetime, period: str) -> tuple[datetime, datetime]:
    """The time charts' axis: the period up to now; for the whole event, from the first
    registration, cancellation, check-in or payment drawn (half a bucket before it, so its bar
    shows whole) to now, instead of an axis starting long before anything happened."""
    start = fmt.parse_time(dashboard["range"]["from"])
    end = min(fmt.parse_time(dashboard["range"]["to"]), now)
    if period != "all":
        return start, end
    half = BUCKETS.get(dashboard["range"]["granularity"], timedelta(minutes=1)) / 2
    drawn = [
        fmt.parse_time(r["bucket"])
        for r in dashboard.get("series") or []
        if any(r.get(k) for k in ("registrations", "cancellations", "checkins"))
    ] + [
        fmt.parse_time(r["bucket"])
        for r in dashboard.get("revenue_series") or []
        if r.get("gross") or r.get("refunds")
    ]
    if not drawn:
        return start, end
    # Not clamped to the range's start: the first bucket's bars sit side by side around its
    # time, and the left one (registrations) was cut off when the event was created in it.
    return min(drawn) - half, max(end, max(drawn) + half)


def conversion_note(k: dict) -> str:
    """What the conversion rate divides: visits credited with a registration (first touch) out
    of the visits, and the registrations no visit accounts for; or, from an API without the
    attribution, registrations out of unique views."""
    if "visits" not in k:
        return (
            f"{fmt.number(k.get('registrations'))} registrations from "
            f"{fmt.number(k.get('unique_views'))} unique views"
        )
    note = f"{fmt.number(k.get('converted_visits'))} of {fmt.number(k['visits'])} visits registered"
    if k.get("registrations_without_visit"):
        note += f"; {fmt.number(k['registrations_without_visit'])} registrations without a visit"
    return note


def net_revenue(dashboard: dict) -> str:
    return fmt.money_list([(r["net"], r["currency"]) for r in dashboard.get("revenue") or []])


@dataclass(frozen=True)
class View:
    """Everything one refresh puts on the page, computed from one dashboard answer."""

    sold: str
    capacity_note: str
    revenue: str
    revenue_note: str
    conversion: str
    conversion_note: str
    attendance: str
    attendance_note: str
    live: str
    live_style: dict
    empty_style: dict
    charts_style: dict
    figures: tuple
    updated: str


def view(dashboard: dict, now: datetime, period: str = "all") -> View:
    """The page's content for a dashboard answer (pure: tests call it with documented shapes)."""
    k = dashboard.get("kpis") or {}
    tz = dashboard["timezone"]
    revision = f"{dashboard['event_id']}:{dashboard['range']['granularity']}"
    capacity = dashboard.get("capacity")
    left = None if capacity is None else max(capacity - (dashboard.get("sold") or 0), 0)
    gross = fmt.money_list([(r["gross"], r["currency"]) for r in dashboard.get("revenue") or []])
    refunds = fmt.money_list(
        [(r["refunds"], r["currency"]) for r in dashboard.get("revenue") or []]
    )
    data = has_data(dashboard)
    span = time_span(dashboard, now, period)
    figs = (
        figures.activity(dashboard.get("series") or [], tz, revision, span),
        figures.revenue(
            dashboard.get("revenue_series") or [],
            tz,
            revision,
            span[0],
            min(fmt.parse_time(dashboard["range"]["to"]), now),
            span,
        ),
        figures.funnel(dashboard.get("funnel") or [], revision),
        figures.ticket_types(dashboard.get("ticket_types") or [], revision),
        figures.sources(dashboard.get("sources") or [], revision),
    )
    live = is_live(dashboard, now)
    begun = started(dashboard, now)
    doors = fmt.parse_time(dashboard["starts_at"]) - timedelta(hours=1)
    return View(
        sold=fmt.sold_of(dashboard.get("sold"), capacity),
        capacity_note="no seat limit" if left is None else f"{fmt.number(left)} seats left",
        revenue=net_revenue(dashboard),
        revenue_note=f"gross {gross}, refunds {refunds}",
        conversion=fmt.percent(k.get("conversion_rate")),
        conversion_note=conversion_note(k),
        # Before the doors open nobody could have come: "0 %" would read as a failure.
        attendance=fmt.percent(k.get("attendance_rate")) if begun else fmt.NONE,
        attendance_note=f"{fmt.number(k.get('checkins'))} checked in"
        if begun
        else f"not started: doors open {fmt.when(doors, tz, with_zone=False)}",
        live=fmt.number(k.get("checkins")),
        live_style={} if live else {"display": "none"},
        empty_style={"display": "none"} if data else {},
        charts_style={} if data else {"display": "none"},
        figures=figs,
        updated=f"Updated {fmt.when(now, tz, with_zone=False)} · times in {tz}",
    )


def _graph(graph_id: str, title: str, width: int = 6):
    return dbc.Col(
        dbc.Card(
            [
                dbc.CardHeader(html.H2(title, className="h6 mb-0")),
                dbc.CardBody(
                    dcc.Graph(
                        id=graph_id,
                        figure=figures.empty("Loading…"),
                        config={"displayModeBar": False, "responsive": True},
                    ),
                    className="p-2",
                ),
            ],
            className="h-100 shadow-sm",
        ),
        lg=width,
        className="mb-4",
    )


def layout(event_id: str, refresh_s: float):
    return html.Div(
        [
            dcc.Store(id="ev-id", data=event_id),
            dcc.Interval(id="ev-tick", interval=int(refresh_s * 1000)),
            html.Div(id="ev-redirect"),
            html.Div(id="ev-header", children=loading_state("Loading the event…")),
            html.Div(id="ev-action-result", className="small mt-2", **{"aria-live": "polite"}),
            # Everything below the header goes when the event is not there to show.
            html.Div(
                [
                    dbc.Row(
                        [
                            dbc.Col(
                                period_select(
                                    "ev-period", {k: v[0] for k, v in PERIODS.items()}, "all"
                                ),
                                md="auto",
                            ),
                            dbc.Col(
                                html.Div(id="ev-updated", className="small text-body-secondary"),
                                className="text-md-end align-self-center",
                            ),
                        ],
                        className="my-3 g-2",
                    ),
                    kpi_row(
                        [
                            kpi_card("Sold / capacity", "ev-kpi-sold", note_id="ev-kpi-sold-note"),
                            kpi_card(
                                "Net revenue", "ev-kpi-revenue", note_id="ev-kpi-revenue-note"
                            ),
                            kpi_card(
                                "Conversion", "ev-kpi-conversion", note_id="ev-kpi-conversion-note"
                            ),
                            kpi_card(
                                "Attendance", "ev-kpi-attendance", note_id="ev-kpi-attendance-note"
                            ),
                            html.Div(
                                dbc.Card(
                                    dbc.CardBody(
                                        [
                                            html.Div(
                                                [
                                                    html.Span(className="live-dot me-2"),
                                                    "Live check-ins",
                                                ],
                                                className="small text-uppercase fw-semibold",
                                            ),
                                            html.Div(
                                                "…",
                                                id="ev-live-count",
                                                className="fs-3 fw-bold",
                                                **{"aria-live": "polite"},
                                            ),
                                        ]
                                    ),
                                    className="h-100 shadow-sm border-success live-card",
                                ),
                                id="ev-live",
                                style={"display": "none"},
                            ),
                        ],
                        row_id="ev-kpis",
                    ),
                    html.Div(
                        dbc.Alert(
                            [
                                html.H2("No data yet", className="h5"),
                                "Nobody has viewed or registered for this event in this period. Figures "
                                "appear here within seconds of the first page view or registration.",
                            ],
                            color="info",
                            id="ev-empty-alert",
                        ),
                        id="ev-empty",
                        style={"display": "none"},
                    ),
                    html.Div(
                        [
                            dbc.Row(
                                [
                                    _graph("ev-activity", "Registrations over time"),
                                    _graph("ev-revenue", "Net revenue over time"),
                                ]
                            ),
                            dbc.Row(
                                [
                                    _graph("ev-funnel", "Funnel", width=6),
                                    _graph("ev-tickets", "Revenue by ticket type", width=6),
                                ]
                            ),
                            dbc.Row([_graph("ev-sources", "Traffic sources", width=12)]),
                        ],
                        id="ev-charts",
                    ),
                ],
                id="ev-body",
            ),
        ]
    )


def header(event: dict, role: str | None, now: datetime):
    """Title, status, dates in the event's zone; the management actions for managers only."""
    tz = event["timezone"]
    status = event["status"]
    colours = {"published": "success", "draft": "secondary", "cancelled": "danger"}
    actions = []
    if role in MANAGE_ROLES:
        if status == "draft":
            actions.append(("publish", "Publish"))
        if status == "published" and fmt.parse_time(event["ends_at"]) <= now:
            actions.append(("complete", "Mark completed"))
    buttons = [
        dbc.Button(label, id={"type": "ev-action", "action": a}, color="primary", size="sm")
        for a, label in actions
    ]
    if role is not None:  # members: the settings and ticket types (read-only for analysts)
        label = "Edit event & tickets" if role in MANAGE_ROLES else "Settings & tickets"
        buttons.append(
            dcc.Link(
                label,
                href=f"/events/{event['id']}/manage",
                id="ev-manage",
                className="btn btn-outline-primary btn-sm",
            )
        )
    if role is not None:  # members: the registrations and waitlist (read-only for analysts)
        buttons.append(
            dcc.Link(
                "Attendees",
                href=f"/events/{event['id']}/attendees",
                id="ev-attendees-link",
                className="btn btn-outline-primary btn-sm",
            )
        )
    if role in MANAGE_ROLES:  # the API checks tickets in for managers only
        buttons.append(
            dcc.Link(
                "Door check-in",
                href=f"/events/{event['id']}/door",
                id="ev-door-link",
                className="btn btn-outline-primary btn-sm",
            )
        )
    if role is not None:  # members: the messages' log (managers also write and send them)
        buttons.append(
            dcc.Link(
                "Message attendees" if role in MANAGE_ROLES else "Messages",
                href=f"/events/{event['id']}/messages",
                id="ev-messages-link",
                className="btn btn-outline-primary btn-sm",
            )
        )
    return html.Div(
        [
            html.Div(
                [
                    html.H1(event["title"], className="h3 mb-1", id="ev-title"),
                    html.Div(
                        [
                            dbc.Badge(status, color=colours.get(status, "dark"), className="me-2"),
                            f"{fmt.when(event['starts_at'], tz, with_zone=False)} – "
                            f"{fmt.when(event['ends_at'], tz)}",
                        ],
                        className="text-body-secondary",
                    ),
                ]
            ),
            html.Div(buttons, className="d-flex gap-2 align-items-center"),
        ],
        className="d-flex justify-content-between flex-wrap gap-2",
    )


def refresh(client: ApiClient, event_id: str, period: str, now: datetime) -> tuple[dict, dict]:
    """The event and its dashboard for the chosen period, from the API."""
    event = client.event(event_id)
    start, end, granularity = window(period, event, now)
    return event, client.dashboard(event_id, start, end, granularity)


OUTPUTS = 13 + len(GRAPHS) + 4  # what a tick updates (see ``register``)


def on_tick(sessions, period: str, event_id: str, orgs: list[dict] | None, now: datetime):
    """A refresh: the header, the cards, the live counter, the empty state and the figures; or,
    when the API refuses, only the explanation (or the way back to sign-in). An event that is
    not there (or not the user's to see) replaces the whole page with a not-found message and
    stops the refresh: nothing is left saying "Loading…" under it."""
    here = f"/events/{event_id}"
    try:
        event, dashboard = refresh(sessions.client(), event_id, period, now)
    except ApiError as exc:
        keep = (no_update,) * (OUTPUTS - 3)  # all but the redirect, the body and the timer
        if not isinstance(exc, Unauthorized) and exc.status in (403, 404):
            gone = not_found(
                "Event not found",
                "There is no event at this address, or your role in its organization does not "
                "show it.",
            )
            return (gone, *keep[1:], None, {"display": "none"}, True)
        return (*keep, api_problem(exc, here), no_update, no_update)
    roles = {o["id"]: o["role"] for o in orgs or []}
    v = view(dashboard, now, period)
    # React reconciles the same structure in place: re-sending the header does not flicker.
    return (
        header(event, roles.get(event["organization_id"]), now),
        v.sold, v.capacity_note, v.revenue, v.revenue_note, v.conversion,
        v.conversion_note, v.attendance, v.attendance_note, v.live, v.live_style,
        v.empty_style, v.charts_style, *v.figures, v.updated, None, {}, False,
    )  # fmt: skip


def on_action(sessions, action: str, event_id: str):
    """A manager's action on the event (the API checks the role and the state)."""
    try:
        event = sessions.client().event_action(event_id, action)
    except ApiError as exc:
        return api_problem(exc, f"/events/{event_id}")
    return f"Done: the event is now {event['status']}."


def register(app: Dash, sessions) -> None:
    @app.callback(
        Output("ev-header", "children"),
        Output("ev-kpi-sold", "children"),
        Output("ev-kpi-sold-note", "children"),
        Output("ev-kpi-revenue", "children"),
        Output("ev-kpi-revenue-note", "children"),
        Output("ev-kpi-conversion", "children"),
        Output("ev-kpi-conversion-note", "children"),
        Output("ev-kpi-attendance", "children"),
        Output("ev-kpi-attendance-note", "children"),
        Output("ev-live-count", "children"),
        Output("ev-live", "style"),
        Output("ev-empty", "style"),
        Output("ev-charts", "style"),
        *[Output(g, "figure") for g in GRAPHS],
        Output("ev-updated", "children"),
        Output("ev-redirect", "children"),
        Output("ev-body", "style"),
        Output("ev-tick", "disabled"),
        Input("ev-tick", "n_intervals"),
        Input("ev-period", "value"),
        State("ev-id", "data"),
        State("orgs", "data"),
    )
    def update(_tick, period, event_id, orgs):
        return on_tick(sessions, period, event_id, orgs, datetime.now(UTC))

    @app.callback(
        Output("ev-action-result", "children"),
        Input({"type": "ev-action", "action": ALL}, "n_clicks"),
        State("ev-id", "data"),
        prevent_initial_call=True,
    )
    def act(clicks, event_id):
        if not any(clicks) or not isinstance(ctx.triggered_id, dict):
            return no_update
        return on_action(sessions, ctx.triggered_id["action"], event_id)
