"""Plotly figures of the event dashboard, built from the analytics API's answer.

Figures are plain dicts in Plotly's figure schema: a refresh builds five of them for every open
dashboard every few seconds, and ``plotly.graph_objects`` validation costs ~20 ms a figure where
a dict costs nothing (dcc.Graph takes either). Every figure carries a ``uirevision``: a refresh
replaces the data and keeps what the user did (zoom, hidden series). A figure without data is not
a pair of empty axes but a short sentence.
"""

from __future__ import annotations

from collections import defaultdict

from dashboards import format as fmt

Figure = dict

# Colours with at least 4.5:1 contrast on white (WCAG AA for text, and so for thin lines).
INK = "#212529"
MUTED = "#495057"
PALETTE = ["#0b5394", "#b45309", "#047857", "#b91c1c", "#6d28d9", "#0e7490", "#7c2d12"]
STAGES = {
    "view": "Viewed",
    "ticket_selected": "Chose a ticket",
    "checkout_started": "Started checkout",
    "reservation": "Held seats",
    "registration": "Registered",
    "payment": "Paid",
    "checkin": "Checked in",
}
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
# automargin: Plotly widens the margins until every tick label fits inside the figure (fixed
# margins clipped "Chose a ticket" to "a ticket" and "telegram" to "elegram").
_AXIS = {
    "gridcolor": "#e9ecef",
    "linecolor": "#adb5bd",
    "tickfont": {"color": MUTED},
    "automargin": True,
}


def _figure(data: list[dict], revision: str, *, height: int = 300, **layout) -> Figure:
    base = {
        "uirevision": revision,
        "height": height,
        "margin": {"l": 8, "r": 24, "t": 36, "b": 8, "pad": 4},
        "font": {"family": FONT, "color": INK, "size": 13},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "colorway": PALETTE,
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "x": 0},
        "hoverlabel": {"font": {"family": FONT}},
        "separators": fmt.current().plotly_separators,  # as the cards read
        "xaxis": dict(_AXIS),
        "yaxis": dict(_AXIS),
    }
    for key, value in layout.items():
        if key in ("xaxis", "yaxis"):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return {"data": data, "layout": base}


def empty(message: str, revision: str = "empty") -> Figure:
    """No axes at all: a sentence saying why there is nothing to draw."""
    return _figure(
        [],
        revision,
        height=220,
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[
            {"text": message, "showarrow": False, "x": 0.5, "y": 0.5, "xref": "paper",
             "yref": "paper", "font": {"size": 15, "color": MUTED}}
        ],
    )  # fmt: skip


def _buckets(rows: list[dict], timezone: str) -> list[str]:
    """Bucket instants as wall-clock times of the event's zone (Plotly draws them as given)."""
    return [f"{fmt.local_time(r['bucket'], timezone):%Y-%m-%d %H:%M}" for r in rows]


def _wall(value, timezone: str) -> str:
    return f"{fmt.local_time(value, timezone):%Y-%m-%d %H:%M:%S}"


def time_axis(span: tuple | None, timezone: str) -> dict:
    """A time axis over ``span`` (two instants: the first data or the period's start, and now),
    so bars never crowd into one edge of an axis Plotly padded on its own."""
    if span is None:
        return {}
    return {"range": [_wall(span[0], timezone), _wall(span[1], timezone)], "autorange": False}


def activity(series: list[dict], timezone: str, revision: str, span: tuple | None = None) -> Figure:
    """Registrations, cancellations and check-ins per bucket, in the event's local time."""
    if not any(r.get(k) for r in series for k in ("registrations", "cancellations", "checkins")):
        return empty("No registrations yet in this period", revision)
    x = _buckets(series, timezone)
    data = [
        {"type": "bar", "x": x, "y": [r.get(key) or 0 for r in series], "name": label}
        for key, label in (
            ("registrations", "Registrations"),
            ("cancellations", "Cancellations"),
            ("checkins", "Check-ins"),
        )
    ]
    return _figure(data, revision, barmode="group", xaxis=time_axis(span, timezone))


def revenue(rows: list[dict], timezone: str, revision: str, start=None, end=None,
            span: tuple | None = None) -> Figure:  # fmt: skip
    """Net revenue accumulated over the period, one line per currency, in major units (a
    running total reads well even when only a few buckets had payments); from ``start`` (at 0)
    to ``end`` (the total so far), instants or ISO strings; the axis over ``span`` (else from
    ``start`` to ``end``)."""
    if not any(r.get("gross") or r.get("refunds") for r in rows):
        return empty("No revenue yet in this period", revision)
    by_currency: dict[str, list[dict]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: fmt.parse_time(r["bucket"])):
        by_currency[row["currency"]].append(row)
    data = []
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
        data.append(
            {
                "type": "scatter",
                "x": _buckets([{"bucket": b} for b in x], timezone),
                "y": [t / scale for t in totals],
                "name": f"Net, {fmt.symbol(currency)}",
                "mode": "lines+markers",
                "line": {"shape": "hv", "width": 3},
                "text": [fmt.money(t, currency) for t in totals],
                "hovertemplate": "%{x}<br>%{text}<extra></extra>",
            }
        )
    if span is None and start is not None and end is not None:
        span = (start, end)
    return _figure(data, revision, yaxis={"rangemode": "tozero"}, xaxis=time_axis(span, timezone))


def funnel(stages: list[dict], revision: str) -> Figure:
    """Each stage's count and its drop-off from the stage before, as a share."""
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
    trace = {
        "type": "funnel",
        "y": labels,
        "x": [s["count"] for s in stages],
        "text": text,
        "textinfo": "text",
        "textposition": "auto",
        "marker": {"color": PALETTE[0]},
        "insidetextfont": {"color": "white"},
        "outsidetextfont": {"color": INK},
        "connector": {"fillcolor": "#dee2e6"},
    }
    return _figure([trace], revision, height=340)


def _name(ticket_type: dict) -> str:
    return ticket_type.get("name") or "Without ticket type"


def ticket_types(rows: list[dict], revision: str) -> Figure:
    """Net revenue per ticket type (one bar group per currency); free types show sold seats."""
    points = [
        (_name(t), r["currency"], r["net"]) for t in rows for r in t.get("revenue") or [] if r
    ]
    if not any(net for _, _, net in points):
        if any(t.get("sold") for t in rows):
            bar = {
                "type": "bar",
                "x": [_name(t) for t in rows],
                "y": [t.get("sold") or 0 for t in rows],
                "name": "Seats sold",
                "marker": {"color": PALETTE[0]},
            }
            return _figure(
                [bar], revision, yaxis={"title": {"text": "Seats sold (no revenue yet)"}}
            )
        return empty("No ticket sold yet", revision)
    data = []
    for currency in sorted({c for _, c, _ in points}):
        scale = 10 ** fmt.exponent(currency)
        mine = [(n, v) for n, c, v in points if c == currency]
        data.append(
            {
                "type": "bar",
                "x": [n for n, _ in mine],
                "y": [v / scale for _, v in mine],
                "name": f"Net, {fmt.symbol(currency)}",
                "text": [fmt.money(v, currency) for _, v in mine],
                "textposition": "auto",
            }
        )
    return _figure(data, revision)


def _source_conversion(row: dict) -> float | None:
    """The source's conversion, if the API gives one (its rate, or its registrations over its
    unique views: the visits it was the first touch of)."""
    if row.get("conversion_rate") is not None:
        return row["conversion_rate"]
    if row.get("registrations") is not None and row.get("unique_views"):
        return row["registrations"] / row["unique_views"]
    return None


def sources(rows: list[dict], revision: str) -> Figure:
    """Views and unique views by traffic source, the largest at the top; with each source's
    conversion when the API attributes registrations to sources."""
    rows = sorted((r for r in rows if r.get("views")), key=lambda r: r["views"])
    if not rows:
        return empty("No tracked visits yet", revision)
    names = [r["source"] or "direct" for r in rows]
    rates = [_source_conversion(r) for r in rows]
    if any(rate is not None for rate in rates):  # on the label: automargin keeps it in view
        names = [
            f"{name} · {fmt.percent(rate)} converted" if rate is not None else name
            for name, rate in zip(names, rates, strict=True)
        ]
    data = [
        {"type": "bar", "orientation": "h", "y": names, "x": [r["views"] for r in rows],
         "name": "Views"},
        {"type": "bar", "orientation": "h", "y": names,
         "x": [r.get("unique_views") or 0 for r in rows], "name": "Unique"},
    ]  # fmt: skip
    return _figure(data, revision, height=max(220, 60 + 40 * len(rows)), barmode="group")
