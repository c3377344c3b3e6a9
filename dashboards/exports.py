"""Exports: pick a dataset, range and format, start it, watch its progress, download the file.
The API runs the export and decides who may have which columns (personal data only for owners
and moderators); this page asks, polls and links."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, dcc, html, no_update

from dashboards import format as fmt
from dashboards.client import ApiClient, ApiError
from dashboards.components import api_problem, empty_state

DATASETS = {
    "registrations": "Registrations",
    "payments": "Payments",
    "attendance": "Attendance",
    "funnel": "Funnel",
    "traffic": "Traffic",
}
FORMATS = {"csv": "CSV", "parquet": "Parquet", "xlsx": "Excel (XLSX)"}
FINISHED = {"succeeded", "failed"}  # the API's other states: queued, running
SUCCEEDED = {"succeeded"}
POLL_MS = 1000
ALL_EVENTS = "all"


def request_body(
    organization_id: str,
    dataset: str,
    file_format: str,
    start_date: str | None,
    end_date: str | None,
    event_id: str | None,
) -> dict:
    """The export request for the form's values; dates are whole UTC days, both inclusive."""
    body: dict = {"organization_id": organization_id, "dataset": dataset, "format": file_format}
    if start_date:
        body["from"] = datetime.combine(date.fromisoformat(start_date), time(), UTC).isoformat()
    if end_date:
        last = date.fromisoformat(end_date) + timedelta(days=1)
        body["to"] = datetime.combine(last, time(), UTC).isoformat()
    if event_id and event_id != ALL_EVENTS:
        body["event_id"] = event_id
    return body


def progress_of(export: dict) -> int:
    value = export.get("progress") or 0
    return 100 if export.get("status") in SUCCEEDED else max(0, min(100, int(value)))


def status_view(export: dict | None):
    """Progress bar value and label, status line and download link of one export."""
    if export is None:
        return 0, "", "", None
    status = export.get("status", "?")
    value = progress_of(export)
    rows = export.get("rows")
    line = f"{DATASETS.get(export.get('dataset'), export.get('dataset'))}: {status}"
    if rows is not None:
        line += f", {fmt.number(rows)} rows"
    if export.get("error"):
        line += f" ({export['error']})"
    link = None
    if status in SUCCEEDED and export.get("download_url"):
        link = html.A(
            ["Download ", export.get("file_name") or "the file"],
            href=export["download_url"],
            id="exp-download-link",
            className="btn btn-success btn-sm",
            download=export.get("file_name") or True,
        )
    return value, f"{value} %", line, link


def recent_table(exports: list[dict]):
    if not exports:
        return empty_state("No exports yet", "Exports you and your colleagues start appear here.")
    head = html.Thead(
        html.Tr([html.Th(h, scope="col") for h in ("Started", "Dataset", "Format", "Status", "")])
    )
    rows = []
    for e in exports[:20]:
        status = e.get("status", "?")
        link = (
            html.A("Download", href=e["download_url"], className="link-primary")
            if status in SUCCEEDED and e.get("download_url")
            else ""
        )
        rows.append(
            html.Tr(
                [
                    html.Td(fmt.when(e["created_at"], "UTC") if e.get("created_at") else "–"),
                    html.Td(DATASETS.get(e.get("dataset"), e.get("dataset"))),
                    html.Td(FORMATS.get(e.get("format"), e.get("format"))),
                    html.Td(f"{status} ({progress_of(e)} %)" if status not in FINISHED else status),
                    html.Td(link),
                ]
            )
        )
    return dbc.Table([head, html.Tbody(rows)], hover=True, responsive=True, size="sm")


def layout(organization: dict, events: list[dict], role: str | None, today: date):
    analyst_note = (
        dbc.Alert(
            "As an analyst you get every dataset without personal data columns (names, e-mail "
            "addresses): those are for owners and moderators.",
            color="secondary",
            className="small",
        )
        if role == "analyst"
        else None
    )
    form = dbc.Card(
        dbc.CardBody(
            [
                html.H2("New export", className="h5"),
                analyst_note,
                dbc.Label("Dataset", html_for="exp-dataset"),
                dbc.Select(
                    id="exp-dataset",
                    options=[{"label": v, "value": k} for k, v in DATASETS.items()],
                    value="registrations",
                    className="mb-3",
                ),
                dbc.Label("Event", html_for="exp-event"),
                dbc.Select(
                    id="exp-event",
                    options=[{"label": "All events", "value": ALL_EVENTS}]
                    + [{"label": e["title"], "value": e["id"]} for e in events],
                    value=ALL_EVENTS,
                    className="mb-3",
                ),
                dbc.Label("Range (UTC days)", html_for="exp-range"),
                html.Div(
                    dcc.DatePickerRange(
                        id="exp-range",
                        start_date=(today - timedelta(days=29)).isoformat(),
                        end_date=today.isoformat(),
                        display_format="D MMM YYYY",
                        first_day_of_week=1,
                    ),
                    className="mb-3",
                ),
                dbc.Label("Format"),
                dbc.RadioItems(
                    id="exp-format",
                    options=[{"label": v, "value": k} for k, v in FORMATS.items()],
                    value="csv",
                    inline=True,
                    className="mb-3",
                ),
                dbc.Button("Start export", id="exp-start", color="primary"),
                html.Div(id="exp-error", className="mt-3"),
            ]
        ),
        className="shadow-sm h-100",
    )
    watch = dbc.Card(
        dbc.CardBody(
            [
                html.H2("Progress", className="h5"),
                dbc.Progress(id="exp-progress", value=0, label="", className="mb-2"),
                html.Div(id="exp-status", className="mb-2", **{"aria-live": "polite"}),
                html.Div(id="exp-download"),
                html.Hr(),
                html.H2("Recent exports", className="h5"),
                html.Div(id="exp-list"),
            ]
        ),
        className="shadow-sm h-100",
    )
    return html.Div(
        [
            dcc.Store(id="exp-org", data=organization["id"]),
            dcc.Store(id="exp-current"),
            dcc.Interval(id="exp-poll", interval=POLL_MS, disabled=False),
            html.H1(f"Exports · {organization['name']}", className="h3 mb-3"),
            dbc.Row([dbc.Col(form, lg=5, className="mb-4"), dbc.Col(watch, lg=7)]),
        ]
    )


def poll(client: ApiClient, organization_id: str, export_id: str | None):
    """The current export (if one was started here) and the organization's recent exports."""
    current = client.export(export_id) if export_id else None
    return current, list(client.exports(organization_id))  # newest first


def on_start(sessions, organization_id, dataset, file_format, start_date, end_date, event_id,
             idempotency_key: str):  # fmt: skip
    """Ask for the export; answers the export id to watch, or the API's refusal to show."""
    body = request_body(organization_id, dataset, file_format, start_date, end_date, event_id)
    try:
        export = sessions.client().start_export(body, idempotency_key)
    except ApiError as exc:
        return no_update, api_problem(exc, "/exports"), no_update
    return export["id"], None, False


def on_poll(sessions, export_id: str | None, organization_id: str):
    """Progress, status, download link, the recent list, and whether polling may stop."""
    try:
        current, recent = poll(sessions.client(), organization_id, export_id)
    except ApiError as exc:
        return 0, "", api_problem(exc, "/exports"), None, no_update, True
    value, label, line, link = status_view(current)
    running = any(e.get("status") not in FINISHED for e in recent) or (
        current is not None and current.get("status") not in FINISHED
    )
    return value, label, line, link, recent_table(recent), not running


def register(app: Dash, sessions) -> None:
    @app.callback(
        Output("exp-current", "data"),
        Output("exp-error", "children"),
        Output("exp-poll", "disabled", allow_duplicate=True),
        Input("exp-start", "n_clicks"),
        State("exp-org", "data"),
        State("exp-dataset", "value"),
        State("exp-format", "value"),
        State("exp-range", "start_date"),
        State("exp-range", "end_date"),
        State("exp-event", "value"),
        prevent_initial_call=True,
    )
    def start(clicks, organization_id, dataset, file_format, start_date, end_date, event_id):
        if not clicks:
            return no_update, no_update, no_update
        return on_start(
            sessions, organization_id, dataset, file_format, start_date, end_date, event_id,
            str(uuid.uuid4()),
        )  # fmt: skip

    @app.callback(
        Output("exp-progress", "value"),
        Output("exp-progress", "label"),
        Output("exp-status", "children"),
        Output("exp-download", "children"),
        Output("exp-list", "children"),
        Output("exp-poll", "disabled"),
        Input("exp-poll", "n_intervals"),
        Input("exp-current", "data"),
        State("exp-org", "data"),
    )
    def watch(_n, export_id, organization_id):
        return on_poll(sessions, export_id, organization_id)
