"""Dashboard and report queries: rollups only, never raw facts.

A range ``[from, to)`` counts the minute buckets whose start lies in it. Totals over a range are
read from the coarsest rollups that tile it exactly (minutes up to the first whole hour, hours
up to the first whole day, days, then hours and minutes again at the end), so a year costs about
as much as an hour. Series read the rollup of their granularity: buckets of that size whose
start lies in ``[floor(from), to)``. Both flavours expose the same relations (tables on plain
PostgreSQL, tenant-filtered views over continuous aggregates on Timescale), so one set of
queries serves both. Every query runs in the caller's tenant (row level security) and filters
by it too, so the indexes lead with tenant_id.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from domain.errors import NotFound, ValidationFailed
from domain.event.models import Event, TicketType
from warehouse.rollups import EVENT, REVENUE, STEP, TRAFFIC, Rollup, floor

GRANULARITIES = ("minute", "hour", "day")
FUNNEL = (
    ("view", "unique_views"),
    ("ticket_selected", "ticket_selected"),
    ("reservation", "reservations"),
    ("registration", "registrations"),
    ("payment", "paid_registrations"),
    ("checkin", "checkins"),
)
KPI_COLUMNS = (
    "views",
    "unique_views",
    "ticket_selected",
    "checkout_started",
    "reservations",
    "registrations",
    "confirmations",
    "cancellations",
    "checkins",
    "paid_registrations",
)
SERIES_COLUMNS = ("views", "unique_views", "registrations", "cancellations", "checkins")
MONEY = ("gross", "refunds", "net", "full_amount", "deposit_amount", "remainder_amount")
TRAFFIC_COLUMNS = ("views", "unique_views", "ticket_selected", "checkout_started")
REPORT_COLUMNS = ("views", "unique_views", "registrations", "cancellations", "checkins")


# --- ranges -----------------------------------------------------------------------------------


def _ceil(moment: datetime, grain: str) -> datetime:
    floored = floor(moment, grain)
    return floored if floored == moment else floored + STEP[grain]


def tiles(start: datetime, end: datetime) -> list[tuple[str, datetime, datetime]]:
    """``[start, end)`` (minute-aligned) as the fewest (grain, from, to) pieces of rollups."""
    if start >= end:
        return []
    h1, h2 = _ceil(start, "hour"), floor(end, "hour")
    if h1 >= h2:
        return [("minute", start, end)]
    d1, d2 = _ceil(h1, "day"), floor(h2, "day")
    middle = (
        [("hour", h1, h2)] if d1 >= d2 else [("hour", h1, d1), ("day", d1, d2), ("hour", d2, h2)]
    )
    pieces = [("minute", start, h1), *middle, ("minute", h2, end)]
    return [(g, a, b) for g, a, b in pieces if a < b]


def _tiled(rollup: Rollup, start: datetime, end: datetime, where: str, columns: str) -> str:
    """A UNION ALL over the tiles of ``[start, end)``; parameters t<i>a/t<i>b are bound by
    ``_tile_params``. ``where`` filters further (e.g. on the event)."""
    parts = [
        f"SELECT {columns} FROM {rollup.view(g)} WHERE tenant_id = app_tenant_id() AND {where}"
        f" AND bucket >= :t{i}a AND bucket < :t{i}b"
        for i, (g, _, _) in enumerate(tiles(start, end))
    ]
    if not parts:  # an empty range: no rows, same columns
        return f"SELECT {columns} FROM {rollup.view('minute')} WHERE false"
    return " UNION ALL ".join(parts)


def _tile_params(start: datetime, end: datetime) -> dict[str, datetime]:
    params: dict[str, datetime] = {}
    for i, (_, a, b) in enumerate(tiles(start, end)):
        params[f"t{i}a"], params[f"t{i}b"] = a, b
    return params


def points(start: datetime, end: datetime, granularity: str) -> int:
    span = end - floor(start, granularity)
    return max(0, -(-span // STEP[granularity]))


def resolve_range(
    start: datetime | None,
    end: datetime | None,
    granularity: str | None,
    *,
    first: datetime | None,
    last: datetime | None,
    default_span: timedelta | None,
    max_points: int,
) -> tuple[datetime, datetime, str]:
    """The range and granularity a request asks for, defaults filled in, or a 422.

    Default range: ``default_span`` back from now, or (None) the whole history ``first``..
    ``last`` (minute buckets). Default granularity: hour, or day when hours would exceed
    ``max_points``; an explicit granularity over too many points is ``range_too_large``."""
    now = floor(datetime.now(UTC), "minute") + STEP["minute"]
    if default_span is not None:
        end = end or now
        start = start or end - default_span
    else:
        start = start or first or (end if end is not None else now)
        end = end or (last + STEP["minute"] if last else max(now, start))
    start, end = floor(start, "minute"), _ceil(end.astimezone(UTC), "minute")
    if start > end:
        raise ValidationFailed(
            "`from` is after `to`",
            code="invalid_range",
            details={"from": start.isoformat(), "to": end.isoformat()},
        )
    if granularity is None:
        granularity = next(
            (g for g in ("hour", "day") if points(start, end, g) <= max_points), "day"
        )
    if points(start, end, granularity) > max_points:
        raise ValidationFailed(
            f"{points(start, end, granularity)} {granularity} buckets; at most {max_points}: "
            "narrow the range or choose a coarser granularity",
            code="range_too_large",
            details={"points": points(start, end, granularity), "max_points": max_points},
        )
    return start, end, granularity


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 6) if denominator > 0 else None


# --- the event dashboard ----------------------------------------------------------------------


def event_bounds(session: Session, event_id: uuid.UUID) -> tuple[datetime | None, datetime | None]:
    """First and last minute bucket with anything of the event (index lookups)."""
    row = session.execute(
        text(
            "SELECT least(e.lo, r.lo), greatest(e.hi, r.hi) FROM"
            " (SELECT min(bucket) lo, max(bucket) hi FROM analytics.event_minute"
            "  WHERE tenant_id = app_tenant_id() AND event_id = :e) e,"
            " (SELECT min(bucket) lo, max(bucket) hi FROM analytics.revenue_minute"
            "  WHERE tenant_id = app_tenant_id() AND event_id = :e) r"
        ),
        {"e": event_id},
    ).one()
    return row[0], row[1]


def _event(session: Session, event_id: uuid.UUID) -> Event:
    event = session.scalar(select(Event).where(Event.id == event_id, Event.deleted_at.is_(None)))
    if event is None:
        raise NotFound("Event not found")
    return event


def dashboard(
    session: Session,
    event_id: uuid.UUID,
    start: datetime | None = None,
    end: datetime | None = None,
    granularity: str | None = None,
    *,
    max_points: int = 2000,
) -> dict[str, Any]:
    """KPIs, funnel, revenue, series, ticket types, sources and devices of one event."""
    event = _event(session, event_id)
    first, last = event_bounds(session, event_id)
    start, end, granularity = resolve_range(
        start, end, granularity, first=first, last=last, default_span=None, max_points=max_points
    )
    tile = _tile_params(start, end)
    where = "event_id = :e"

    # totals and per ticket type, one statement
    sums = ", ".join(f"coalesce(sum({c}), 0) AS {c}" for c in KPI_COLUMNS)
    rows = session.execute(
        text(
            f"SELECT ticket_type_id, grouping(ticket_type_id) AS total, {sums} FROM ("
            + _tiled(EVENT, start, end, where, f"ticket_type_id, {', '.join(KPI_COLUMNS)}")
            + ") s GROUP BY GROUPING SETS ((), (ticket_type_id))"
        ),
        {"e": event_id, **tile},
    ).mappings()
    totals = dict.fromkeys(KPI_COLUMNS, 0)
    per_type: dict[uuid.UUID | None, dict[str, int]] = {}
    for row in rows:
        values = {c: int(row[c]) for c in KPI_COLUMNS}
        if row["total"]:
            totals = values
        else:
            per_type[row["ticket_type_id"]] = values

    # the waitlist from the beginning up to `to`
    history_start = min(first, end) if first else end
    waitlist = session.execute(
        text(
            "SELECT coalesce(sum(waitlist_joined - waitlist_left), 0) FROM ("
            + _tiled(EVENT, history_start, end, where, "waitlist_joined, waitlist_left")
            + ") s"
        ),
        {"e": event_id, **_tile_params(history_start, end)},
    ).scalar_one()

    # money per currency, in total and per ticket type
    money = ", ".join(f"coalesce(sum({c}), 0) AS {c}" for c in MONEY)
    revenue_rows = session.execute(
        text(
            f"SELECT ticket_type_id, currency, grouping(ticket_type_id) AS total, {money} FROM ("
            + _tiled(REVENUE, start, end, where, f"ticket_type_id, currency, {', '.join(MONEY)}")
            + ") s GROUP BY GROUPING SETS ((currency), (ticket_type_id, currency))"
            " ORDER BY currency"
        ),
        {"e": event_id, **tile},
    ).mappings()
    revenue: list[dict[str, Any]] = []
    type_revenue: dict[uuid.UUID | None, list[dict[str, Any]]] = {}
    for row in revenue_rows:
        if row["total"]:
            revenue.append(_money(row, detailed=True))
        else:
            type_revenue.setdefault(row["ticket_type_id"], []).append(_money(row))

    # series at the requested granularity, every bucket present
    series_start = floor(start, granularity)
    series_sums = ", ".join(f"coalesce(sum(r.{c}), 0) AS {c}" for c in SERIES_COLUMNS)
    step = f"interval '1 {granularity}'"
    series = [
        {"bucket": row["bucket"], **{c: int(row[c]) for c in SERIES_COLUMNS}}
        for row in session.execute(
            text(
                f"SELECT g.bucket, {series_sums}"
                f" FROM generate_series(CAST(:lo AS timestamptz), CAST(:hi AS timestamptz)"
                f" - interval '1 microsecond', {step}) AS g(bucket)"
                f" LEFT JOIN {EVENT.view(granularity)} r ON r.tenant_id = app_tenant_id()"
                " AND r.event_id = :e AND r.bucket = g.bucket"
                " GROUP BY g.bucket ORDER BY g.bucket"
            ),
            {"e": event_id, "lo": series_start, "hi": end},
        ).mappings()
    ]
    revenue_series = [
        {
            "bucket": row["bucket"],
            "currency": row["currency"],
            "gross": int(row["gross"]),
            "refunds": int(row["refunds"]),
            "net": int(row["net"]),
        }
        for row in session.execute(
            text(
                "SELECT bucket, currency, sum(gross) AS gross, sum(refunds) AS refunds,"
                f" sum(net) AS net FROM {REVENUE.view(granularity)}"
                " WHERE tenant_id = app_tenant_id() AND event_id = :e"
                " AND bucket >= :lo AND bucket < :hi"
                " GROUP BY bucket, currency ORDER BY bucket, currency"
            ),
            {"e": event_id, "lo": series_start, "hi": end},
        ).mappings()
    ]

    # traffic by source and by device
    traffic_sums = ", ".join(f"coalesce(sum({c}), 0) AS {c}" for c in TRAFFIC_COLUMNS)
    sources: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    for row in session.execute(
        text(
            f"SELECT source, device, grouping(source) AS by_device, {traffic_sums} FROM ("
            + _tiled(TRAFFIC, start, end, where, f"source, device, {', '.join(TRAFFIC_COLUMNS)}")
            + ") s GROUP BY GROUPING SETS ((source), (device)) ORDER BY views DESC, 1, 2"
        ),
        {"e": event_id, **tile},
    ).mappings():
        if row["by_device"]:
            devices.append(
                {
                    "device": row["device"],
                    "views": row["views"],
                    "unique_views": row["unique_views"],
                }
            )
        else:
            sources.append({"source": row["source"], **{c: row[c] for c in TRAFFIC_COLUMNS}})

    # ticket types: names, capacity and seats sold from the transactional tables
    ticket_types = []
    known = session.scalars(
        select(TicketType)
        .where(TicketType.event_id == event_id, TicketType.deleted_at.is_(None))
        .order_by(TicketType.created_at)
    ).all()
    empty = dict.fromkeys(KPI_COLUMNS, 0)
    for tt in known:
        ticket_types.append(
            _ticket_type(tt.id, tt.name, tt.capacity, tt.sold, per_type.get(tt.id, empty),
                         type_revenue.get(tt.id, []))
        )  # fmt: skip
    for tt_id in sorted(
        (k for k in {*per_type, *type_revenue} if k not in {t.id for t in known}),
        key=lambda k: (k is not None, str(k)),
    ):
        ticket_types.append(
            _ticket_type(tt_id, None, None, None, per_type.get(tt_id, empty),
                         type_revenue.get(tt_id, []))
        )  # fmt: skip

    capacity = event.capacity
    if capacity is None and known:
        capacity = sum(t.capacity for t in known)
    sold = event.sold if event.capacity is not None else sum(t.sold for t in known)
    funnel = []
    previous: int | None = None
    for stage, column in FUNNEL:
        count = totals[column]
        funnel.append(
            {
                "stage": stage,
                "count": count,
                "rate_from_previous": _rate(count, previous) if previous is not None else None,
                "drop_off": previous - count if previous is not None else None,
            }
        )
        previous = count
    kpis = {c: totals[c] for c in KPI_COLUMNS if c != "paid_registrations"}
    kpis["waitlist"] = int(waitlist)
    kpis["conversion_rate"] = _rate(totals["registrations"], totals["unique_views"])
    kpis["attendance_rate"] = _rate(
        totals["checkins"], totals["registrations"] - totals["cancellations"]
    )
    return {
        "event_id": event.id,
        "organization_id": event.tenant_id,
        "title": event.title,
        "timezone": event.timezone,
        "starts_at": event.starts_at,
        "ends_at": event.ends_at,
        "status": str(event.status),
        "capacity": capacity,
        "sold": sold,
        "range": {"from": start, "to": end, "granularity": granularity},
        "kpis": kpis,
        "revenue": revenue,
        "funnel": funnel,
        "series": series,
        "revenue_series": revenue_series,
        "ticket_types": ticket_types,
        "sources": sources,
        "devices": devices,
    }


def _money(row: Any, *, detailed: bool = False) -> dict[str, Any]:
    out = {
        "currency": row["currency"],
        "gross": int(row["gross"]),
        "refunds": int(row["refunds"]),
        "net": int(row["net"]),
    }
    if detailed:
        out |= {
            "full": int(row["full_amount"]),
            "deposits": int(row["deposit_amount"]),
            "remainders": int(row["remainder_amount"]),
        }
    return out


def _ticket_type(
    tt_id: uuid.UUID | None,
    name: str | None,
    capacity: int | None,
    sold: int | None,
    values: dict[str, int],
    revenue: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "ticket_type_id": tt_id,
        "name": name,
        "capacity": capacity,
        "sold": sold,
        "registrations": values["registrations"],
        "cancellations": values["cancellations"],
        "checkins": values["checkins"],
        "revenue": revenue,
    }


# --- the organization report ------------------------------------------------------------------


def _period(session: Session, start: datetime, end: datetime) -> dict[uuid.UUID, dict[str, Any]]:
    """Per event of the current tenant: the report's counts and money over ``[start, end)``."""
    out: dict[uuid.UUID, dict[str, Any]] = {}
    sums = ", ".join(f"coalesce(sum({c}), 0) AS {c}" for c in REPORT_COLUMNS)
    tile = _tile_params(start, end)
    for row in session.execute(
        text(
            f"SELECT event_id, {sums} FROM ("
            + _tiled(EVENT, start, end, "true", f"event_id, {', '.join(REPORT_COLUMNS)}")
            + ") s GROUP BY event_id"
        ),
        tile,
    ).mappings():
        out[row["event_id"]] = {c: int(row[c]) for c in REPORT_COLUMNS} | {"revenue": []}
    for row in session.execute(
        text(
            "SELECT event_id, currency, coalesce(sum(gross), 0) AS gross,"
            " coalesce(sum(refunds), 0) AS refunds, coalesce(sum(net), 0) AS net FROM ("
            + _tiled(REVENUE, start, end, "true", "event_id, currency, gross, refunds, net")
            + ") s GROUP BY event_id, currency ORDER BY currency"
        ),
        tile,
    ).mappings():
        entry = out.setdefault(row["event_id"], _zero())
        entry["revenue"].append(_money(row))
    return out


def _zero() -> dict[str, Any]:
    return dict.fromkeys(REPORT_COLUMNS, 0) | {"revenue": []}


def _with_rates(values: dict[str, Any]) -> dict[str, Any]:
    return values | {
        "conversion_rate": _rate(values["registrations"], values["unique_views"]),
        "attendance_rate": _rate(values["checkins"], values["registrations"] - values["cancellations"]),
    }  # fmt: skip


def _change(current: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    change: dict[str, Any] = {c: current[c] - previous[c] for c in REPORT_COLUMNS}
    for rate in ("conversion_rate", "attendance_rate"):
        a, b = current[rate], previous[rate]
        change[rate] = round(a - b, 6) if a is not None and b is not None else None
    before = {m["currency"]: m for m in previous["revenue"]}
    after = {m["currency"]: m for m in current["revenue"]}
    change["revenue"] = [
        {
            "currency": cur,
            **{
                k: after.get(cur, {}).get(k, 0) - before.get(cur, {}).get(k, 0)
                for k in ("gross", "refunds", "net")
            },
        }
        for cur in sorted({*before, *after})
    ]
    return change


def _add(total: dict[str, Any], values: dict[str, Any]) -> None:
    for c in REPORT_COLUMNS:
        total[c] += values[c]
    money = {m["currency"]: m for m in total["revenue"]}
    for m in values["revenue"]:
        into = money.setdefault(
            m["currency"], {"currency": m["currency"], "gross": 0, "refunds": 0, "net": 0}
        )
        for k in ("gross", "refunds", "net"):
            into[k] += m[k]
    total["revenue"] = sorted(money.values(), key=lambda m: m["currency"])


def report(
    session: Session,
    organization_id: uuid.UUID,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    default_days: int = 30,
) -> dict[str, Any]:
    """Per event of the organization: the range, the previous period of equal length, the change."""
    start, end, _ = resolve_range(
        start, end, "day", first=None, last=None,
        default_span=timedelta(days=default_days), max_points=10**9,
    )  # fmt: skip
    previous_start = start - (end - start)
    current = _period(session, start, end)
    before = _period(session, previous_start, start)
    events = session.execute(
        select(Event.id, Event.title, Event.starts_at, Event.status)
        .where(Event.tenant_id == organization_id, Event.deleted_at.is_(None))
        .order_by(Event.starts_at.desc(), Event.id)
    ).all()
    rows = []
    totals, totals_before = _zero(), _zero()
    for event_id, title, starts_at, status in events:
        now_values = current.get(event_id, _zero())
        then_values = before.get(event_id, _zero())
        _add(totals, now_values)
        _add(totals_before, then_values)
        now_rated, then_rated = _with_rates(now_values), _with_rates(then_values)
        rows.append(
            {
                "event_id": event_id,
                "title": title,
                "starts_at": starts_at,
                "status": str(status),
                **now_rated,
                "previous": then_rated,
                "change": _change(now_rated, then_rated),
            }
        )
    totals_rated, before_rated = _with_rates(totals), _with_rates(totals_before)
    return {
        "organization_id": organization_id,
        "range": {"from": start, "to": end},
        "previous_range": {"from": previous_start, "to": start},
        "events": rows,
        "totals": {
            **totals_rated,
            "previous": before_rated,
            "change": _change(totals_rated, before_rated),
        },
    }
