"""Visits kept by the sink: the funnel and first-touch attribution without reading the facts.

``warehouse.visits`` holds one row per visit (a unique page view: its visitor, start, first-touch
source and device, and the first time an action credited to it reached ticket_selected,
checkout_started and reservation); ``warehouse.visit_credits`` one row per registration (credited
to a visit or to none) and per payment and check-in of a credited registration, with the
registration's time (sql/ddl/0016_warehouse_visits.sql). Crediting is journey_sql's
(warehouse/queries.py; docs/analytics.md, "Funnel and attribution"): an action belongs to its
visitor's latest visit started at or before it, within ``ATTRIBUTION_WINDOW``; a payment or
check-in to its registration's visit.

Facts arrive late and out of order, so the rows are never patched: the sink deletes and
recomputes, from ``warehouse.facts``, every visit and credit of each (event, visitor) its batch
touches (a page view, tracked action, hold or registration of that visitor, or a payment or
check-in of that visitor's registration), in its transaction and under its event locks.
Backfill and reconcile recompute a whole event the same way (``rebuild_event_sql``). A range's
funnel is then the visits started in it, each stage counted when reached before ``to`` (credits:
in the range), which is exactly what journey_sql computes from the range's facts: a visit
started in the range is the latest visit before an action in the range in both.

The lookups by visitor and by registration read the partial indexes of migration 0016.
"""

from __future__ import annotations

from datetime import datetime

from warehouse.queries import ATTRIBUTION_WINDOW

_ACTIONS = "('ticket_selected', 'checkout_started', 'reservation', 'registration')"
_WINDOW = f"interval '{int(ATTRIBUTION_WINDOW.total_seconds())} seconds'"


def _columns(alias: str = "") -> str:
    """The columns the computation reads of a fact (the visit's source: first touch)."""
    a = f"{alias}." if alias else ""
    return (
        f"{a}tenant_id, {a}event_id, {a}fact_id, {a}occurred_at, {a}kind, {a}visitor_id,"
        f" {a}registration_id, coalesce({a}source, 'direct') AS source, {a}device"
    )


# The (event, visitor) pairs a batch touches, each with the start of the first visit it can
# change (``since``). A fact at t changes only the visit in effect at t (the visitor's latest
# visit started before t, if within ATTRIBUTION_WINDOW: an older one's credits all came before
# t) and later ones; facts at t do not change which views before t are visits (a view only takes
# the uniqueness of the views after it). A payment or check-in changes only its registration's
# visit, started after the registration's time minus the window. A registration not stored yet
# credits nothing: its own arrival recomputes its visitor, payments included.
_KEYS = (
    "SELECT event_id, visitor_id, min(since) AS since FROM ("
    " SELECT k.event_id, k.visitor_id, coalesce((SELECT max(occurred_at) FROM warehouse.facts"
    " WHERE tenant_id = app_tenant_id() AND event_id = k.event_id AND visitor_id = k.visitor_id"
    f" AND kind = 'page_view' AND is_unique AND occurred_at >= k.at - {_WINDOW}"
    f" AND occurred_at < k.at), k.at - {_WINDOW}) AS since"
    " FROM unnest(%(events)s::uuid[], %(visitors)s::text[], %(at)s::timestamptz[])"
    " AS k(event_id, visitor_id, at)"
    f" UNION ALL SELECT r.event_id, r.visitor_id, r.occurred_at - {_WINDOW}"
    " FROM unnest(%(paid_events)s::uuid[], %(paid)s::uuid[]) AS p(event_id, registration_id)"
    " CROSS JOIN LATERAL (SELECT event_id, visitor_id, occurred_at FROM warehouse.facts"
    " WHERE tenant_id = app_tenant_id() AND event_id = p.event_id"
    " AND registration_id = p.registration_id AND kind = 'registration'"
    " AND visitor_id IS NOT NULL OFFSET 0) r) s GROUP BY event_id, visitor_id"
)
# Facts without a visitor: their own visits (page views) or registrations credited to no visit.
# Never recomputed (nothing can change them), inserted once (ON CONFLICT DO NOTHING).
_ANONYMOUS = (
    f"SELECT {_columns('x')}"
    " FROM unnest(%(anonymous)s::uuid[], %(anonymous_at)s::timestamptz[]) AS a(fact_id, at)"
    " CROSS JOIN LATERAL (SELECT * FROM warehouse.facts WHERE tenant_id = app_tenant_id()"
    " AND fact_id = a.fact_id AND occurred_at = a.at AND visitor_id IS NULL"
    " AND ((kind = 'page_view' AND is_unique) OR kind = 'registration') OFFSET 0) x"
)


def _touched_facts() -> str:
    """The touched visitors' facts from each one's ``since`` (through ix_wh_facts_visitor_views
    and ix_wh_facts_visitor_actions), and the batch's facts without a visitor. An action there
    whose visit started before ``since`` finds none: that visit, its credits and its row in
    visit_credits stay as they are."""
    return (
        f"SELECT {_columns('x')} FROM k CROSS JOIN LATERAL (SELECT * FROM warehouse.facts"
        " WHERE tenant_id = app_tenant_id() AND event_id = k.event_id"
        " AND visitor_id = k.visitor_id AND occurred_at >= k.since"
        " AND kind = 'page_view' AND is_unique OFFSET 0) x"
        f" UNION ALL SELECT {_columns('x')} FROM k CROSS JOIN LATERAL (SELECT * FROM warehouse.facts"
        " WHERE tenant_id = app_tenant_id() AND event_id = k.event_id"
        " AND visitor_id = k.visitor_id AND occurred_at >= k.since"
        f" AND visitor_id IS NOT NULL AND kind IN {_ACTIONS} OFFSET 0) x"
        f" UNION ALL {_ANONYMOUS}"
    )


def _event_facts(scope: str) -> str:
    """The facts of one event (``%(event)s``, current tenant), or (``all``) of the warehouse."""
    where = "tenant_id = app_tenant_id() AND event_id = %(event)s" if scope == "event" else "true"
    return (
        f"SELECT {_columns()} FROM warehouse.facts WHERE {where}"
        f" AND ((kind = 'page_view' AND is_unique) OR kind IN {_ACTIONS})"
    )


def _compute(facts: str, prefix: str = "") -> str:
    """INSERT the visits and credits of ``facts`` (a SELECT of _columns()): one statement."""
    return f"""WITH {prefix}f AS MATERIALIZED ({facts}
), stream AS (
  SELECT *, max(CASE WHEN kind = 'page_view' THEN occurred_at END) OVER (
      PARTITION BY tenant_id, event_id, visitor_id
      ORDER BY occurred_at, kind = 'page_view' DESC, fact_id ROWS UNBOUNDED PRECEDING) AS visit_at
  FROM f
), credited AS (
  SELECT * FROM stream
  WHERE kind <> 'page_view' AND visitor_id IS NOT NULL AND visit_at IS NOT NULL
    AND occurred_at < visit_at + {_WINDOW}
), reached AS (
  SELECT tenant_id, event_id, visitor_id, visit_at,
    min(occurred_at) FILTER (WHERE kind = 'ticket_selected') AS ticket_selected_at,
    min(occurred_at) FILTER (WHERE kind = 'checkout_started') AS checkout_started_at,
    min(occurred_at) FILTER (WHERE kind = 'reservation') AS reservation_at
  FROM credited GROUP BY tenant_id, event_id, visitor_id, visit_at
), visits AS (
  INSERT INTO warehouse.visits (tenant_id, event_id, fact_id, visitor_id, started_at, source,
    device, ticket_selected_at, checkout_started_at, reservation_at)
  SELECT v.tenant_id, v.event_id, v.fact_id, v.visitor_id, v.occurred_at, v.source, v.device,
    r.ticket_selected_at, r.checkout_started_at, r.reservation_at
  FROM stream v LEFT JOIN reached r ON r.tenant_id = v.tenant_id AND r.event_id = v.event_id
    AND r.visitor_id = v.visitor_id AND r.visit_at = v.occurred_at
  WHERE v.kind = 'page_view'
  ON CONFLICT DO NOTHING RETURNING 1
), registrations AS (
  SELECT s.tenant_id, s.event_id, s.fact_id, s.occurred_at, s.registration_id, s.visitor_id,
    c.visit_at
  FROM stream s LEFT JOIN credited c ON c.tenant_id = s.tenant_id AND c.fact_id = s.fact_id
    AND c.occurred_at = s.occurred_at
  WHERE s.kind = 'registration'
), credits AS (
  INSERT INTO warehouse.visit_credits (tenant_id, event_id, fact_id, kind, occurred_at,
    registration_id, registered_at, visitor_id, visit_started_at, stage, amount, currency)
  SELECT tenant_id, event_id, fact_id, 'registration', occurred_at, registration_id, occurred_at,
    visitor_id, visit_at, 4, 0, NULL
  FROM registrations r LEFT JOIN LATERAL (SELECT true AS kept FROM warehouse.visit_credits o
    WHERE o.tenant_id = r.tenant_id AND o.event_id = r.event_id AND o.fact_id = r.fact_id
    LIMIT 1) o ON r.visit_at IS NULL
  WHERE o.kept IS NULL
  UNION ALL
  SELECT r.tenant_id, r.event_id, p.fact_id, p.kind, p.occurred_at, r.registration_id,
    r.occurred_at, r.visitor_id, r.visit_at,
    CASE WHEN p.kind = 'checkin' THEN 6 WHEN p.purpose IN ('full', 'deposit') THEN 5 ELSE 0 END,
    p.amount, p.currency
  FROM registrations r CROSS JOIN LATERAL (SELECT * FROM warehouse.facts
    WHERE tenant_id = r.tenant_id AND event_id = r.event_id
    AND registration_id = r.registration_id AND kind IN ('payment', 'checkin') OFFSET 0) p
  WHERE r.visit_at IS NOT NULL
  ON CONFLICT DO NOTHING RETURNING 1
)
SELECT (SELECT count(*) FROM visits), (SELECT count(*) FROM credits)"""


# The sink: forget, then recompute, the touched visitors' visits and credits (two statements:
# a row deleted and inserted again with the same key in one statement would conflict).
# Rows are found per key (LATERAL ... OFFSET 0: never flattened into a join, so a cached
# generic plan cannot hash the tenant's whole table against the keys) and deleted by ctid.
FORGET_VISITORS = (
    f"WITH k AS MATERIALIZED ({_KEYS}),"
    " v AS (DELETE FROM warehouse.visits WHERE ctid = ANY(ARRAY("
    " SELECT d.ctid FROM k CROSS JOIN LATERAL (SELECT ctid FROM warehouse.visits"
    " WHERE tenant_id = app_tenant_id() AND event_id = k.event_id"
    " AND visitor_id = k.visitor_id AND started_at >= k.since OFFSET 0) d)) RETURNING 1)"
    " DELETE FROM warehouse.visit_credits WHERE ctid = ANY(ARRAY("
    " SELECT d.ctid FROM k CROSS JOIN LATERAL (SELECT ctid FROM warehouse.visit_credits"
    " WHERE tenant_id = app_tenant_id() AND event_id = k.event_id"
    " AND visitor_id = k.visitor_id"
    " AND coalesce(visit_started_at, registered_at) >= k.since OFFSET 0) d))"
)
RECOMPUTE_VISITORS = _compute(_touched_facts(), prefix=f"k AS MATERIALIZED ({_KEYS}), ")
# Backfill and reconcile: one event (``%(event)s``) of the current tenant, whole.
FORGET_EVENT = (
    "WITH v AS (DELETE FROM warehouse.visits WHERE tenant_id = app_tenant_id()"
    " AND event_id = %(event)s RETURNING 1)"
    " DELETE FROM warehouse.visit_credits WHERE tenant_id = app_tenant_id()"
    " AND event_id = %(event)s"
)
RECOMPUTE_EVENT = _compute(_event_facts("event"))
# Migration 0016 fills the tables from the facts of every tenant with this statement.
RECOMPUTE_ALL = _compute(_event_facts("all"))
VISITOR_KINDS = frozenset(
    {"page_view", "ticket_selected", "checkout_started", "reservation", "registration"}
)
PAID_KINDS = frozenset({"payment", "checkin"})


def touched(facts: list) -> dict[str, list]:
    """The parameters of FORGET_VISITORS and RECOMPUTE_VISITORS for one tenant's facts."""
    first: dict[tuple, datetime] = {}
    for f in facts:
        if f.visitor_id and f.kind in VISITOR_KINDS:
            key = (f.event_id, f.visitor_id)
            first[key] = min(first.get(key, f.occurred_at), f.occurred_at)
    visitors = sorted(first)
    paid = sorted(
        {
            (f.event_id, f.registration_id)
            for f in facts
            if f.registration_id and f.kind in PAID_KINDS
        }
    )
    anonymous = [
        (f.fact_id, f.occurred_at)
        for f in facts
        if not f.visitor_id and f.kind in ("page_view", "registration")
    ]
    return {
        "events": [e for e, _ in visitors],
        "visitors": [v for _, v in visitors],
        "at": [first[k] for k in visitors],
        "paid_events": [e for e, _ in paid],
        "paid": [r for _, r in paid],
        "anonymous": [i for i, _ in anonymous],
        "anonymous_at": [t for _, t in anonymous],
    }
