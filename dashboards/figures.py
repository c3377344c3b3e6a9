"""Plotly figures of the event dashboard, built from the analytics API's answer.

Every figure carries a ``uirevision``: a refresh replaces the data and keeps what the user did
(zoom, hidden series). A figure without data is not a pair of empty axes but a short sentence.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import plotly.graph_objects as go

from dashboards import format as fmt

# Colours with at least 4.5:1 contrast on white (WCAG AA for text, and so for thin lines).
INK = "#212529"
MUTED = "#495057"
PALETTE = ["#0b5394", "#b45309", "#047857", "#b91c1c", "#6d28d9", "#0e7490", "#7c2d12"]
STAGES = {
    "view": "Viewed",
    "ticket_selected": "Chose a ticket",
    "reservation": "Held seats",
    "registration": "Registered",
    "payment": "Paid",
    "checkin": "Checked in",
}
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"


def _base(fig: go.Figure, revision: str, *, height: int = 300) -> go.Figure:
    fig.update_layout(
        uirevision=revision,
        height=height,
        margin={"l": 56, "r": 16, "t": 36, "b": 40},
        font={"family": FONT, "color": INK, "size": 13},
        paper_bgcolor="white",
        plot_bgcolor="white",
        colorway=PALETTE,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0},
        hoverlabel={"font": {"family": FONT}},
        separators=", ",  # decimal comma, thin group separator: as the cards read
    )
    fig.update_xaxes(gridcolor="#e9ecef", linecolor="#adb5bd", tickfont={"color": MUTED})
    fig.update_yaxes(gridcolor="#e9ecef", linecolor="#adb5bd", tickfont={"color": MUTED})
    return fig


def empty(message: str, revision: str = "empty") -> go.Figure:
    """No axes at all: a sentence saying why there is nothing to draw."""
    fig = go.Figure()
    _base(fig, revision, height=220)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.add_annotation(
        text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
        font={"size": 15, "color": MUTED},
    )  # fmt: skip
    return fig


def _buckets(rows: list[dict], timezone: str) -> list[Any]:
    return [fmt.local_time(r["bucket"], timezone).replace(tzinfo=None) for r in rows]


def activity(series: list[dict], timezone: str, revision: str) -> go.Figure:
    """Registrations, cancellations and check-ins per bucket, in the event's local time."""
    if not any(r.get(k) for r in series for k in ("registrations", "cancellations", "checkins")):
        return empty("No registrations yet in this period", revision)
    x = _buckets(series, timezone)
    fig = go.Figure()
    for key, label in (
        ("registrations", "Registrations"),
        ("cancellations", "Cancellations"),
        ("checkins", "Check-ins"),
    ):
        fig.add_trace(go.Bar(x=x, y=[r.get(key, 0) for r in series], name=label))
    fig.update_layout(barmode="group")
    return _base(fig, revision)


def revenue(
    rows: list[dict], timezone: str, revision: str, start: str | None = None, end: str | None = None
) -> go.Figure:
    """Net revenue accumulated over the period, one line per currency, in major units (a
    running total reads well even when only a few buckets had payments)."""
    if not any(r.get("gross") or r.get("refunds") for r in rows):
        return empty("No revenue yet in this period", revision)
    by_currency: dict[str, list[dict]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: r["bucket"]):
        by_currency[row["currency"]].append(row)
    fig = go.Figure()
    for currency, points in sorted(by_currency.items()):
        scale = 10 ** fmt.exponent(currency)
        x, totals, running = [], [], 0
        if start is not None:
            x, totals = [start], [0]
        for point in points:
            running += point["net"]
            x.append(point["bucket"])
            totals.append(running)
        if end is not None:  # the total holds until now
            x.append(end)
            totals.append(running)
        fig.add_trace(
            go.Scatter(
                x=_buckets([{"bucket": b} for b in x], timezone),
                y=[t / scale for t in totals],
                name=f"Net, {fmt.symbol(currency)}",
                mode="lines+markers",
                line={"shape": "hv", "width": 3},
                text=[fmt.money(t, currency) for t in totals],
                hovertemplate="%{x}<br>%{text}<extra></extra>",
            )
        )
    fig.update_yaxes(rangemode="tozero")
    return _base(fig, revision)


def funnel(stages: list[dict], revision: str) -> go.Figure:
    """Each stage's count, with the share kept from the previous stage and the drop-off."""
    if not stages or not stages[0].get("count"):
        return empty("No visitors yet: the funnel starts with the first page view", revision)
    labels, text = [], []
    for i, stage in enumerate(stages):
        labels.append(STAGES.get(stage["stage"], stage["stage"]))
        parts = [fmt.number(stage["count"])]
        kept = stage.get("rate_from_previous")
        # More than the stage before (free tickets skip payment) is no drop-off to show.
        if i and kept is not None and kept <= 1:
            parts.append(f"{fmt.percent(1 - kept)} drop-off")
        text.append(" · ".join(parts))
    fig = go.Figure(
        go.Funnel(
            y=labels,
            x=[s["count"] for s in stages],
            text=text,
            textinfo="text",
            textposition="auto",
            marker={"color": PALETTE[0]},
            insidetextfont={"color": "white"},
            outsidetextfont={"color": INK},
            connector={"fillcolor": "#dee2e6"},
        )
    )
    return _base(fig, revision, height=340)


def _name(ticket_type: dict) -> str:
    return ticket_type.get("name") or "Without ticket type"


def ticket_types(rows: list[dict], revision: str) -> go.Figure:
    """Net revenue per ticket type (one bar group per currency); free types show sold seats."""
    points = [
        (_name(t), r["currency"], r["net"]) for t in rows for r in t.get("revenue") or [] if r
    ]
    if not any(net for _, _, net in points):
        if any(t.get("sold") for t in rows):
            fig = go.Figure(
                go.Bar(
                    x=[_name(t) for t in rows],
                    y=[t.get("sold") or 0 for t in rows],
                    name="Seats sold",
                    marker={"color": PALETTE[0]},
                )
            )
            fig.update_layout(yaxis_title="Seats sold (no revenue yet)")
            return _base(fig, revision)
        return empty("No ticket sold yet", revision)
    fig = go.Figure()
    for currency in sorted({c for _, c, _ in points}):
        scale = 10 ** fmt.exponent(currency)
        mine = [(n, v) for n, c, v in points if c == currency]
        fig.add_trace(
            go.Bar(
                x=[n for n, _ in mine],
                y=[v / scale for _, v in mine],
                name=f"Net, {fmt.symbol(currency)}",
                text=[fmt.money(v, currency) for _, v in mine],
                textposition="auto",
            )
        )
    return _base(fig, revision)


def sources(rows: list[dict], revision: str) -> go.Figure:
    """Views and unique views by traffic source, the largest first."""
    rows = sorted((r for r in rows if r.get("views")), key=lambda r: r["views"])
    if not rows:
        return empty("No tracked visits yet", revision)
    fig = go.Figure()
    names = [r["source"] or "direct" for r in rows]
    fig.add_trace(go.Bar(y=names, x=[r["views"] for r in rows], name="Views", orientation="h"))
    fig.add_trace(
        go.Bar(y=names, x=[r.get("unique_views", 0) for r in rows], name="Unique", orientation="h")
    )
    fig.update_layout(barmode="group")
    return _base(fig, revision, height=max(220, 60 + 40 * len(rows)))
