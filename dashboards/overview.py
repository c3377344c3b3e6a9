"""Organization overview: every event of the organization with views, conversion,
registrations, revenue and attendance for a period, each against the period before it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, dcc, html

from dashboards import format as fmt
from dashboards.client import ApiClient, ApiError
from dashboards.components import (
    api_problem,
    change,
    empty_state,
    kpi_row,
    loading_state,
    period_select,
)

PERIODS = {"7": "7 days", "30": "30 days", "90": "90 days", "custom": "Custom"}


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime

    def label(self) -> str:
        last = self.end - timedelta(microseconds=1)
        return f"{self.start.day} {self.start:%b %Y} – {last.day} {last:%b %Y}"


def period(choice: str, start_date: str | None, end_date: str | None, now: datetime) -> Period:
    """The chosen period: the last N days up to now, or whole custom days (UTC), both inclusive."""
    if choice == "custom" and start_date and end_date:
        first, last = sorted((date.fromisoformat(start_date), date.fromisoformat(end_date)))
        start = datetime.combine(first, time(), UTC)
        return Period(start, datetime.combine(last + timedelta(days=1), time(), UTC))
    days = int(choice) if choice.isdigit() else 30
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return Period(end - timedelta(days=days), end)


def _net(row: dict) -> dict[str, int]:
    return {r["currency"]: r.get("net", 0) for r in row.get("revenue") or []}


def rows_of(report: dict) -> tuple[dict[str, dict], dict[str, dict]]:
    """Each event's figures for the period and for the previous one, by event id."""
    events = report.get("events") or []
    return (
        {r["event_id"]: r for r in events},
        {r["event_id"]: r.get("previous") or {} for r in events},
    )


def _money_cell(current: dict[str, int]):
    return fmt.money_list(list((v, c) for c, v in current.items()))


def _revenue_change(current: dict[str, int], previous: dict[str, int]):
    """One change per currency (amounts in different currencies do not add up)."""
    currencies = sorted(set(current) | set(previous))
    if not currencies:
        return change(0, 0)
    return html.Span(
        [
            html.Span([f"{fmt.symbol(c)} ", change(current.get(c, 0), previous.get(c, 0))])
            for c in currencies
        ],
        className="d-inline-flex gap-2",
    )


def summary_cards(t: dict, p: dict):
    """The organization's totals, each with its change against the previous period."""

    def card(label, value, delta, card_id):
        return dbc.Card(
            dbc.CardBody(
                [
                    html.Div(label, className="small text-uppercase fw-semibold "
                             "text-body-secondary"),
                    html.Div(value, id=card_id, className="fs-3 fw-bold"),
                    html.Div(delta),
                ]
            ),
            className="h-100 shadow-sm",
        )  # fmt: skip

    return kpi_row(
        [
            card(
                "Views",
                fmt.number(t.get("views")),
                change(t.get("views"), p.get("views")),
                "ov-views",
            ),
            card(
                "Registrations",
                fmt.number(t.get("registrations")),
                change(t.get("registrations"), p.get("registrations")),
                "ov-registrations",
            ),
            card(
                "Conversion",
                fmt.percent(t.get("conversion_rate")),
                change(t.get("conversion_rate"), p.get("conversion_rate")),
                "ov-conversion",
            ),
            card(
                "Net revenue",
                _money_cell(_net(t)),
                _revenue_change(_net(t), _net(p)),
                "ov-revenue",
            ),
            card(
                "Attendance",
                fmt.percent(t.get("attendance_rate")),
                change(t.get("attendance_rate"), p.get("attendance_rate")),
                "ov-attendance",
            ),
        ],
        row_id="ov-kpis",
    )


def _ahead(event: dict, row: dict, now: datetime) -> bool:
    """Before the doors open (an hour before the start) and nobody checked in yet."""
    doors = fmt.parse_time(event["starts_at"]) - timedelta(hours=1)
    return now < doors and not row.get("checkins")


def events_table(events: list[dict], current: dict[str, dict], previous: dict[str, dict],
                 now: datetime | None = None):  # fmt: skip
    """One row per event of the organization, whether or not it had activity in the period;
    an event whose doors have not opened yet shows no attendance (not "0 %")."""
    if not events:
        return empty_state(
            "No events yet",
            "Events created in this organization appear here with their figures.",
        )
    head = html.Thead(
        html.Tr(
            [
                html.Th("Event", scope="col"),
                html.Th("Starts", scope="col"),
                html.Th("Views", scope="col", className="text-end"),
                html.Th("Conversion", scope="col", className="text-end"),
                html.Th("Registrations", scope="col", className="text-end"),
                html.Th("Net revenue", scope="col", className="text-end"),
                html.Th("Attendance", scope="col", className="text-end"),
            ]
        )
    )
    body = []
    for event in sorted(events, key=lambda e: e["starts_at"], reverse=True):
        now_row, before = current.get(event["id"], {}), previous.get(event["id"], {})

        def cell(key, render, better="up", row=now_row, prior=before):
            return html.Td(
                [render(row.get(key)), html.Br(), change(row.get(key), prior.get(key), better=better)],
                className="text-end",
            )  # fmt: skip

        body.append(
            html.Tr(
                [
                    html.Td(
                        [
                            dcc.Link(event["title"], href=f"/events/{event['id']}"),
                            html.Div(event["status"], className="small text-body-secondary"),
                        ]
                    ),
                    html.Td(fmt.when(event["starts_at"], event["timezone"], with_zone=False)),
                    cell("views", fmt.number),
                    cell("conversion_rate", fmt.percent),
                    cell("registrations", fmt.number),
                    html.Td(
                        [
                            _money_cell(_net(now_row)),
                            html.Br(),
                            _revenue_change(_net(now_row), _net(before)),
                        ],
                        className="text-end",
                    ),
                    cell("attendance_rate", fmt.percent)
                    if now is None or not _ahead(event, now_row, now)
                    else html.Td(
                        [fmt.NONE, html.Br(), html.Span("not started", className="small")],
                        className="text-end text-body-secondary",
                    ),
                ],
                id={"type": "ov-row", "event": event["id"]},
            )
        )
    return dbc.Table(
        [head, html.Tbody(body)], hover=True, responsive=True, className="align-middle"
    )


def layout(organization: dict):
    return html.Div(
        [
            dcc.Store(id="ov-org", data=organization["id"]),
            html.Div(
                [
                    html.Div(
                        [
                            html.H1(organization["name"], className="h3 mb-0"),
                            html.Div("Organization overview", className="text-body-secondary"),
                        ]
                    ),
                    dcc.Link(
                        "New event",
                        href="/events/new",
                        id="ov-new-event",
                        className="btn btn-primary btn-sm",
                    )
                    if organization.get("role") in ("owner", "moderator")
                    else None,
                ],
                className="mb-3 d-flex justify-content-between align-items-start gap-2",
            ),
            dbc.Row(
                [
                    dbc.Col(
                        period_select("ov-period", PERIODS, "30"),
                        md="auto",
                    ),
                    dbc.Col(
                        dcc.DatePickerRange(
                            id="ov-custom",
                            display_format="D MMM YYYY",
                            first_day_of_week=1,
                            disabled=True,
                        ),
                        md="auto",
                    ),
                    dbc.Col(
                        html.Div(id="ov-caption", className="small text-body-secondary"),
                        className="align-self-center text-md-end",
                    ),
                ],
                className="g-2 mb-3",
            ),
            html.Div(id="ov-content", children=loading_state()),
        ]
    )


def load(client: ApiClient, organization_id: str, chosen: Period) -> tuple[list, dict]:
    """The organization's events and the report (with the previous period) for ``chosen``."""
    events = client.organization_events(organization_id)
    return events, client.report(organization_id, chosen.start, chosen.end)


def caption(report: dict) -> str:
    now, before = report["range"], report["previous_range"]

    def span(r: dict) -> str:
        return Period(fmt.parse_time(r["from"]), fmt.parse_time(r["to"])).label()

    return f"{span(now)} compared with {span(before)}"


def content(events: list[dict], report: dict, now: datetime | None = None):
    current, previous = rows_of(report)
    totals = report.get("totals") or {}
    return html.Div(
        [
            summary_cards(totals, totals.get("previous") or {}),
            dbc.Card(
                dbc.CardBody(events_table(events, current, previous, now)), className="shadow-sm"
            ),
        ]
    )


def on_period(sessions, choice, start_date, end_date, organization_id: str, now: datetime):
    """The overview's content and caption for the chosen period."""
    chosen = period(choice, start_date, end_date, now)
    try:
        events, report = load(sessions.client(), organization_id, chosen)
    except ApiError as exc:
        return api_problem(exc, "/"), ""
    return content(events, report, now), caption(report)


def register(app: Dash, sessions) -> None:
    @app.callback(Output("ov-custom", "disabled"), Input("ov-period", "value"))
    def custom_dates(choice):
        return choice != "custom"

    @app.callback(
        Output("ov-content", "children"),
        Output("ov-caption", "children"),
        Input("ov-period", "value"),
        Input("ov-custom", "start_date"),
        Input("ov-custom", "end_date"),
        State("ov-org", "data"),
    )
    def update(choice, start_date, end_date, organization_id):
        return on_period(sessions, choice, start_date, end_date, organization_id, datetime.now(UTC))
