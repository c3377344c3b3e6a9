"""Dashboard and report queries: rollups and the visits the sink keeps, never raw facts
(``journey_sql``, which reads the range's facts, stays as the reference the tests compare with).

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
# The funnel's stages, in order: a visit's stage is the furthest its credited actions reached
# (docs/analytics.md, "Funnel and attribution").
FUNNEL = (
    "view",
    "ticket_selected",
    "checkout_started",
    "reservation",
    "registration",
    "payment",
    "checkin",
)
ATTRIBUTION_WINDOW = timedelta(hours=24)
JOURNEY_COLUMNS = (*FUNNEL[1:], "registrations")
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
ROLLUP_REPORT_COLUMNS = ("views", "unique_views", "registrations", "cancellations", "checkins")
REPORT_COLUMNS = (
    "views",
    "unique_views",
    "registrations",
    "cancellations",
    "checkins",
    "visits",
    "converted_visits",
    "registrations_without_visit",
)


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


# --- funnel and attribution -------------------------------------------------------------------

_STAGE_OF = (
    "CASE kind WHEN 'ticket_selected' THEN 1 WHEN 'checkout_started' THEN 2"
    " WHEN 'reservation' THEN 3 ELSE 4 END"
)


def journey_sql(where: str, lo: str, hi: str, bucket: bool = False) -> str:
    """Visits of ``[lo, hi)`` with the furthest stage each reached, by first-touch source.

    One row per (``part``, event, source, bucket): ``visit`` rows count visits and, per stage,
    the visits that reached it or a later one, and the registrations credited to them;
    ``revenue`` rows the payments (gross, per currency) of those registrations; ``unattributed``
    rows the registrations credited to no visit of the range. A visit is a unique page view
    (``facts.is_unique``); its source is that view's. A tracked action, hold or registration of the
    same visitor belongs to the visitor's latest visit started at or before it, when it came
    within ``ATTRIBUTION_WINDOW`` of the visit's start; a payment or check-in belongs to its
    registration's visit. Only facts in ``[lo, hi)`` count, so a range that has ended always gives
    the same answer. ``where`` filters ``analytics.facts`` (e.g. on the event); ``lo``, ``hi`` are
    SQL expressions (bind parameters or literals); ``bucket``: the visit's UTC hour, else NULL."""
    window = f"interval '{int(ATTRIBUTION_WINDOW.total_seconds())} seconds'"
    hour = "date_bin(interval '1 hour', {}, timestamptz '2000-01-01 00:00:00+00')"
    visit_bucket = hour.format("v.occurred_at") if bucket else "NULL::timestamptz"
    reg_bucket = hour.format("f.occurred_at") if bucket else "NULL::timestamptz"
    stages = ", ".join(
        f"count(*) FILTER (WHERE stage >= {i}) AS {name}" for i, name in enumerate(FUNNEL) if i
    )
    return f"""
WITH f AS (
  SELECT event_id, fact_id, occurred_at, kind, visitor_id, coalesce(source, 'direct') AS source,
    registration_id, amount, currency, purpose
  FROM analytics.facts
  WHERE tenant_id = app_tenant_id() AND {where} AND occurred_at >= {lo} AND occurred_at < {hi}
), stream AS (
  SELECT *, max(CASE WHEN kind = 'page_view' THEN occurred_at END) OVER (
      PARTITION BY event_id, visitor_id ORDER BY occurred_at, kind = 'page_view' DESC, fact_id
      ROWS UNBOUNDED PRECEDING) AS visit_at
  FROM f
  WHERE kind = 'page_view' OR (visitor_id IS NOT NULL
    AND kind IN ('ticket_selected', 'checkout_started', 'reservation', 'registration'))
), credited AS (
  SELECT event_id, visitor_id, visit_at, fact_id, kind, registration_id, {_STAGE_OF} AS stage
  FROM stream
  WHERE kind <> 'page_view' AND visit_at IS NOT NULL AND occurred_at < visit_at + {window}
), later AS (
  SELECT c.event_id, c.visitor_id, c.visit_at, p.kind, p.amount, p.currency,
    CASE WHEN p.kind = 'checkin' THEN 6 WHEN p.purpose IN ('full', 'deposit') THEN 5 ELSE 0 END
      AS stage
  FROM credited c JOIN f p ON p.registration_id = c.registration_id AND p.event_id = c.event_id
    AND p.kind IN ('payment', 'checkin')
  WHERE c.kind = 'registration'
), reached AS (
  SELECT event_id, visitor_id, visit_at, max(stage) AS stage,
    count(*) FILTER (WHERE kind = 'registration') AS registrations
  FROM (SELECT event_id, visitor_id, visit_at, stage, kind FROM credited
        UNION ALL SELECT event_id, visitor_id, visit_at, stage, kind FROM later) s
  GROUP BY event_id, visitor_id, visit_at
), visit AS (
  SELECT v.event_id, v.source, {visit_bucket} AS bucket, v.visitor_id, v.occurred_at,
    coalesce(r.stage, 0) AS stage, coalesce(r.registrations, 0) AS registrations
  FROM stream v LEFT JOIN reached r ON r.event_id = v.event_id AND r.visitor_id = v.visitor_id
    AND r.visit_at = v.occurred_at
  WHERE v.kind = 'page_view'
)
SELECT 'visit' AS part, event_id, source, bucket, count(*) AS visits, {stages},
  sum(registrations)::bigint AS registrations, NULL::text AS currency, 0::bigint AS gross,
  0::bigint AS without_visit
FROM visit GROUP BY event_id, source, bucket
UNION ALL
SELECT 'revenue', v.event_id, v.source, v.bucket, 0, {", ".join("0" for _ in FUNNEL[1:])}, 0,
  l.currency, sum(l.amount)::bigint, 0
FROM later l JOIN visit v ON v.event_id = l.event_id AND v.visitor_id = l.visitor_id
  AND v.occurred_at = l.visit_at
WHERE l.kind = 'payment'
GROUP BY v.event_id, v.source, v.bucket, l.currency
UNION ALL
SELECT 'unattributed', f.event_id, NULL, {reg_bucket}, 0, {", ".join("0" for _ in FUNNEL[1:])},
  0, NULL, 0, count(*)
FROM f WHERE f.kind = 'registration'
  AND NOT EXISTS (SELECT FROM credited c WHERE c.fact_id = f.fact_id)
GROUP BY f.event_id, {reg_bucket}
"""


def visits_sql(where: str, lo: str, hi: str, bucket: bool = False) -> str:
    """``journey_sql``'s rows, from the visits the sink keeps (warehouse/visits.py) instead of
    the range's facts: one row per visit started in ``[lo, hi)``, a tracked stage counted when
    first reached before ``hi``, and the registrations, payments and check-ins credited to those
    visits that lie in the range with their registration. ``where`` filters ``analytics.visits``
    and ``analytics.visit_credits`` (e.g. on the event); same arguments as journey_sql."""
    hour = "date_bin(interval '1 hour', {}, timestamptz '2000-01-01 00:00:00+00')"
    visit_bucket = hour.format("started_at") if bucket else "NULL::timestamptz"
    reg_bucket = hour.format("occurred_at") if bucket else "NULL::timestamptz"
    stages = ", ".join(
        f"count(*) FILTER (WHERE stage >= {i}) AS {name}" for i, name in enumerate(FUNNEL) if i
    )
    zeros = ", ".join("0" for _ in FUNNEL[1:])
    return f"""
WITH v AS (
  SELECT event_id, visitor_id, started_at, source, {visit_bucket} AS bucket,
    CASE WHEN reservation_at < {hi} THEN 3 WHEN checkout_started_at < {hi} THEN 2
      WHEN ticket_selected_at < {hi} THEN 1 ELSE 0 END AS stage
  FROM analytics.visits
  WHERE tenant_id = app_tenant_id() AND {where} AND started_at >= {lo} AND started_at < {hi}
), c AS (
  SELECT event_id, visitor_id, visit_started_at, kind, stage, amount, currency
  FROM analytics.visit_credits
  WHERE tenant_id = app_tenant_id() AND {where} AND visit_started_at >= {lo}
    AND visit_started_at < {hi} AND occurred_at >= {lo} AND occurred_at < {hi}
    AND registered_at < {hi}
), reached AS (
  SELECT event_id, visitor_id, visit_started_at, max(stage) AS stage,
    count(*) FILTER (WHERE kind = 'registration') AS registrations
  FROM c GROUP BY event_id, visitor_id, visit_started_at
), visit AS (
  SELECT v.event_id, v.source, v.bucket, v.visitor_id, v.started_at,
    greatest(v.stage, coalesce(r.stage, 0)) AS stage, coalesce(r.registrations, 0) AS registrations
  FROM v LEFT JOIN reached r ON r.event_id = v.event_id AND r.visitor_id = v.visitor_id
    AND r.visit_started_at = v.started_at
)
SELECT 'visit' AS part, event_id, source, bucket, count(*) AS visits, {stages},
  sum(registrations)::bigint AS registrations, NULL::text AS currency, 0::bigint AS gross,
  0::bigint AS without_visit
FROM visit GROUP BY event_id, source, bucket
UNION ALL
SELECT 'revenue', v.event_id, v.source, v.bucket, 0, {zeros}, 0, c.currency,
  sum(c.amount)::bigint, 0
FROM c JOIN visit v ON v.event_id = c.event_id AND v.visitor_id = c.visitor_id
  AND v.started_at = c.visit_started_at
WHERE c.kind = 'payment'
GROUP BY v.event_id, v.source, v.bucket, c.currency
UNION ALL
SELECT 'unattributed', event_id, NULL, {reg_bucket}, 0, {zeros}, 0, NULL, 0, count(*)
FROM analytics.visit_credits
WHERE tenant_id = app_tenant_id() AND {where} AND kind = 'registration'
  AND occurred_at >= {lo} AND occurred_at < {hi}
  AND (visit_started_at IS NULL OR visit_started_at < {lo})
GROUP BY event_id, {reg_bucket}
"""


def journeys(
    session: Session,
    start: datetime,
    end: datetime,
    event_id: uuid.UUID | None = None,
    *,
    oracle: bool = False,
) -> dict[uuid.UUID, dict[str, Any]]:
    """Per event of the current tenant over ``[start, end)``: ``visits``, the funnel's counts
    (``visits_sql``, equal to ``journey_sql``'s), ``converted_visits``,
    ``registrations_without_visit`` and per source the same with their revenue. ``oracle``:
    compute them from the range's facts instead (``journey_sql``: the tests' reference)."""
    where = "event_id = :e" if event_id is not None else "true"
    sql = journey_sql if oracle else visits_sql
    out: dict[uuid.UUID, dict[str, Any]] = {}
    for row in session.execute(
        text(sql(where, ":lo", ":hi")), {"e": event_id, "lo": start, "hi": end}
    ).mappings():
        entry = out.setdefault(row["event_id"], _no_journeys())
        if row["part"] == "unattributed":
            entry["registrations_without_visit"] += int(row["without_visit"])
            continue
        source = entry["sources"].setdefault(row["source"], _no_journeys(sources=False))
        if row["part"] == "revenue":
            source["revenue"].append({"currency": row["currency"], "gross": int(row["gross"])})
            continue
        for into in (entry, source):
            into["visits"] += int(row["visits"])
            for column in JOURNEY_COLUMNS:
                into[column] += int(row[column])
    for entry in out.values():
        for values in (entry, *entry["sources"].values()):
            values["converted_visits"] = values["registration"]
            values["revenue"].sort(key=lambda m: m["currency"])
    return out


def _no_journeys(sources: bool = True) -> dict[str, Any]:
    values: dict[str, Any] = {"visits": 0, "converted_visits": 0, "revenue": []}
    values |= dict.fromkeys(JOURNEY_COLUMNS, 0)
    if sources:
        values |= {"registrations_without_visit": 0, "sources": {}}
    return values


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

    # visits, their stages and first-touch sources (one row per visit: distinct visits do not
    # add up from buckets)
    journey = journeys(session, start, end, event_id).get(event.id, _no_journeys())

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
    sources += [
        {"source": name, **dict.fromkeys(TRAFFIC_COLUMNS, 0)}
        for name in sorted(set(journey["sources"]) - {s["source"] for s in sources})
    ]
    for entry in sources:
        credited = journey["sources"].get(entry["source"], _no_journeys(sources=False))
        entry |= {
            "visits": credited["visits"],
            "converted_visits": credited["converted_visits"],
            "registrations": credited["registrations"],
            "conversion_rate": _rate(credited["converted_visits"], credited["visits"]),
            "revenue": credited["revenue"],
        }

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
    for stage in FUNNEL:
        count = journey["visits"] if stage == "view" else journey[stage]
        funnel.append(
            {
                "stage": stage,
                "count": count,
                "rate_from_previous": _rate(count, previous) if previous is not None else None,
                "drop_off": previous - count if previous is not None else None,
            }
        )
        previous = count
    kpis = {c: totals[c] for c in KPI_COLUMNS}
    kpis["waitlist"] = int(waitlist)
    kpis["visits"] = journey["visits"]
    kpis["converted_visits"] = journey["converted_visits"]
    kpis["registrations_without_visit"] = journey["registrations_without_visit"]
    kpis["conversion_rate"] = _rate(journey["converted_visits"], journey["visits"])
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
    sums = ", ".join(f"coalesce(sum({c}), 0) AS {c}" for c in ROLLUP_REPORT_COLUMNS)
    tile = _tile_params(start, end)
    for row in session.execute(
        text(
            f"SELECT event_id, {sums} FROM ("
            + _tiled(EVENT, start, end, "true", f"event_id, {', '.join(ROLLUP_REPORT_COLUMNS)}")
            + ") s GROUP BY event_id"
        ),
        tile,
    ).mappings():
        out[row["event_id"]] = _zero() | {c: int(row[c]) for c in ROLLUP_REPORT_COLUMNS}
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
    for event_id, journey in journeys(session, start, end).items():
        entry = out.setdefault(event_id, _zero())
        for c in ("visits", "converted_visits", "registrations_without_visit"):
            entry[c] = journey[c]
    return out


def _zero() -> dict[str, Any]:
    return dict.fromkeys(REPORT_COLUMNS, 0) | {"revenue": []}


def _with_rates(values: dict[str, Any]) -> dict[str, Any]:
    return values | {
        "conversion_rate": _rate(values["converted_visits"], values["visits"]),
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
