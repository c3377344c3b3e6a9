"""Pieces every page uses: KPI cards, change badges, empty and error states."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboards import format as fmt
from dashboards.client import NOT_SIGNED_IN, ApiError, Unauthorized

# Text colours with at least 4.5:1 contrast on white (WCAG AA).
UP, DOWN, FLAT = "#146c43", "#b02a37", "#495057"


def period_select(select_id: str, options: dict[str, str], value: str):
    """The period buttons above a page's figures (``options``: value -> label)."""
    return dbc.RadioItems(
        id=select_id,
        options=[{"label": label, "value": key} for key, label in options.items()],
        value=value,
        inline=True,
        className="btn-group period-select",
        inputClassName="btn-check",
        labelClassName="btn btn-outline-primary btn-sm",
        labelCheckedClassName="active",
    )


def kpi_card(label: str, value_id: str, *, value: str = "…", note_id: str | None = None):
    """A labelled figure; ``value_id`` is what callbacks (and tests) address."""
    body = [
        html.Div(label, className="text-body-secondary small text-uppercase fw-semibold"),
        html.Div(value, id=value_id, className="fs-3 fw-bold kpi-value", **{"aria-live": "polite"}),
    ]
    if note_id:
        body.append(html.Div(id=note_id, className="small text-body-secondary"))
    return dbc.Card(dbc.CardBody(body), className="h-100 shadow-sm")


def kpi_row(cards: list, *, row_id: str | None = None):
    """Cards side by side that fill each line they wrap onto: as many columns as cards are
    shown (a hidden one takes none), never an empty column, at any width (assets' .kpi-row)."""
    return html.Div(cards, className="kpi-row mb-4", **({"id": row_id} if row_id else {}))


def change(current: float | None, previous: float | None, *, better: str = "up"):
    """▲ 12,5 % in green when it is an improvement, ▼ in red when not (arrow and words too, so
    colour is never the only signal)."""
    d = fmt.delta(current, previous)
    good = d.direction in (better, "new")
    colour = FLAT if d.direction == "flat" else (UP if good else DOWN)
    title = {"up": "up", "down": "down", "flat": "no change", "new": "new"}[d.direction]
    return html.Span(
        f"{d.arrow} {d.text}",
        className="delta small fw-semibold",
        style={"color": colour},
        title=f"{title} against the previous period",
    )


def empty_state(title: str, text: str, icon: str = "◌"):
    return html.Div(
        [
            html.Div(icon, className="display-6 text-body-secondary", **{"aria-hidden": "true"}),
            html.H2(title, className="h5 mt-2"),
            html.P(text, className="text-body-secondary mb-0"),
        ],
        className="text-center py-5 empty-state",
    )


def loading_state(text: str = "Loading…"):
    return html.Div(
        [dbc.Spinner(size="sm", spinner_class_name="me-2"), html.Span(text)],
        className="text-body-secondary py-4 loading-state",
    )


def not_found(title: str, text: str):
    """A page's answer to an address with nothing (of the user's) behind it: no spinner."""
    return dbc.Alert(
        [
            html.H1(title, className="h4"),
            html.P(text, className="mb-2"),
            dcc.Link("Back to the overview", href="/", className="alert-link"),
        ],
        color="warning",
        id="not-found",
    )


def redirect_to_signin(path: str = "/", *, expired: bool = True):
    """Back to the sign-in page (a full load: the cookies are then read afresh); it says the
    session ended only when there was one."""
    from urllib.parse import quote

    message = "message=expired&" if expired else ""
    return dcc.Location(id="to-signin", href=f"/signin?{message}next={quote(path)}", refresh=True)


def api_problem(exc: ApiError, path: str = "/"):
    """What a page shows when the API refused or failed: sign in again, or the API's words."""
    if isinstance(exc, Unauthorized):
        return redirect_to_signin(path, expired=exc.code != NOT_SIGNED_IN)
    if exc.status in (403, 404):
        return not_found(
            "Not found", "This is not there, or your role in the organization does not show it."
        )
    return dbc.Alert(f"The platform answered: {exc.message} ({exc.code}).", color="danger")
