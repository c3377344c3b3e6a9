"""The warehouse's one write path: store facts, recompute the buckets they touch.

``ingest(session, facts)`` runs inside the caller's transaction (the stream worker's unit of work,
one transaction per batch) and never commits. It

1. inserts the raw facts (``ON CONFLICT DO NOTHING``: a fact delivered again is no new row),
2. sets the uniqueness of the batch's page views and of the views in the 30 minutes after each
   (``rollups.SET_UNIQUE``, which answers the views whose flag changed), then recomputes from the
   raw facts every minute bucket a new fact falls in and the minutes of the views whose flag
   changed, and upserts them absolutely (live traffic, in order, changes no older flag: only the
   new facts' own minutes are recomputed),
3. on plain PostgreSQL, recomputes the hour and day buckets above those minutes from the minute
   rollups (with Timescale, continuous aggregates do this).

So replaying a topic, redelivering a batch or receiving a fact late all converge on the rollups
the raw facts imply. Concurrent sinks (several workers: an event's facts come from several
topics and partitions) take a transaction-scoped advisory lock per event first, in key order:
otherwise two transactions would each recompute a minute without the other's uncommitted facts,
and the later upsert would drop the earlier one's. Tenancy: the sink runs as the application role, under row level security;
a batch may span tenants, so it switches ``app.tenant_id`` (``set_config(..., true)``, as the unit
of work does) for each tenant's statements and restores the caller's value at the end. No role
that bypasses RLS is involved: a bug here can at worst mix up one tenant's own numbers.

Speed: every statement covers a whole tenant's share of the batch (arrays unnested server-side),
and all statements go through psycopg's pipeline: two round trips per batch in all, not per fact.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy.orm import Session

from warehouse.facts import TRACKED_KINDS, Fact, FactKind
from warehouse.rollups import (
    EVENT,
    LATER_UNIQUE_VIEWS,
    NEW_VIEW_UNIQUE,
    NOT_UNIQUE,
    REVENUE,
    ROLLUPS,
    TRAFFIC,
    UNIQUE_WINDOW,
    Rollup,
    floor,
)

_CONTEXT = "SELECT current_setting('app.tenant_id', true), warehouse.flavor()"
# One transaction-scoped advisory lock per event, taken in key order (no deadlocks between sinks).
LOCK_EVENTS = (
    "SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT DISTINCT k FROM unnest(%s::bigint[]) k"
    " ORDER BY k) s"
)
_SET_TENANT = "SELECT set_config('app.tenant_id', %s, true)"
_INSERT = (
    "INSERT INTO warehouse.facts (tenant_id, fact_id, occurred_at, kind, event_id, ticket_type_id,"
    " registration_id, quantity, amount, currency, purpose, visitor_id, session_id, source, device,"
    f" is_unique) SELECT %s::uuid, u.fact_id, u.occurred_at, u.kind, u.event_id, u.ticket_type_id,"
    " u.registration_id, u.quantity, u.amount, u.currency, u.purpose, u.visitor_id, u.session_id,"
    f" u.source, u.device, {NEW_VIEW_UNIQUE}"
    " FROM unnest(%s::uuid[], %s::timestamptz[], %s::text[], %s::uuid[],"
    " %s::uuid[], %s::uuid[], %s::int[], %s::bigint[], %s::text[], %s::text[], %s::text[],"
    " %s::text[], %s::text[], %s::text[], %s::bool[]) AS u(fact_id, occurred_at, kind, event_id,"
    " ticket_type_id, registration_id, quantity, amount, currency, purpose, visitor_id,"
    " session_id, source, device, first)"
    " ON CONFLICT DO NOTHING RETURNING kind, event_id, occurred_at, visitor_id"
)
# Plans are cached for the transaction's statements: with dozens of partitions, planning each
# statement again costs more than running it (partitions are pruned at run time instead).
_GENERIC_PLANS = "SET LOCAL plan_cache_mode = force_generic_plan"
KEYS = "unnest(%s::uuid[], %s::timestamptz[]) AS k(event_id, bucket)"
_MINUTE_SQL = {r.name: r.minute_from_facts(KEYS) for r in ROLLUPS}
_COARSER_SQL = {
    (r.name, g): r.coarser_from_finer(g, KEYS) for r in ROLLUPS for g in ("hour", "day")
}
_PAGE_VIEW = FactKind.PAGE_VIEW.value
_TRACKED = frozenset(k.value for k in TRACKED_KINDS)
_MONEY = frozenset({FactKind.PAYMENT.value, FactKind.REFUND.value})
_PURPOSES = frozenset({"full", "deposit", "remainder"})


@dataclass(frozen=True)
class IngestResult:
    received: int  # facts handed in
    stored: int  # of which new (the rest were stored before: redelivery, replay)
    minutes: int  # minute buckets recomputed (over the three rollups)


Key = tuple[uuid.UUID, datetime]


def ingest(session: Session, facts: Sequence[Fact]) -> IngestResult:
    """Store ``facts`` and bring the rollups they touch up to date, in the caller's transaction."""
    by_tenant: dict[uuid.UUID, dict[uuid.UUID, Fact]] = defaultdict(dict)
    for fact in facts:
        _check(fact)
        by_tenant[fact.tenant_id][fact.fact_id] = fact
    if not by_tenant:
        return IngestResult(0, 0, 0)
    pg: psycopg.Connection = session.connection().connection.driver_connection
    inserted: dict[uuid.UUID, psycopg.Cursor] = {}
    later: dict[uuid.UUID, psycopg.Cursor] = {}
    events = {f.event_id for group in by_tenant.values() for f in group.values()}
    with pg.pipeline():
        context = pg.execute(_CONTEXT)
        pg.execute(_GENERIC_PLANS)
        pg.execute(LOCK_EVENTS, ([event_lock(e) for e in events],), prepare=True)
        for tenant, group in by_tenant.items():
            pg.execute(_SET_TENANT, (str(tenant),), prepare=True)
            views = sorted(
                (f for f in group.values() if f.kind == FactKind.PAGE_VIEW and f.visitor_id),
                key=lambda f: (f.event_id, f.visitor_id, f.occurred_at, f.fact_id),
            )
            if views:  # the stored unique views a view of this batch comes before
                later[tenant] = pg.cursor()
                later[tenant].execute(LATER_UNIQUE_VIEWS, _view_arrays(views), prepare=True)
            inserted[tenant] = pg.cursor()
            inserted[tenant].execute(
                _INSERT, _columns(tenant, group.values(), _firsts(views)), prepare=True
            )
    previous, flavor = context.fetchone()
    stored = minutes = 0
    with pg.pipeline():
        for tenant, cursor in inserted.items():
            rows = cursor.fetchall()
            flips = later[tenant].fetchall() if tenant in later else []
            if not rows and not flips:
                continue
            stored += len(rows)
            pg.execute(_SET_TENANT, (str(tenant),), prepare=True)
            if flips:
                ids = ([fact_id for fact_id, _, _ in flips], [at for _, at, _ in flips])
                pg.execute(NOT_UNIQUE, ids, prepare=True)
            changed = [(event_id, at) for _, at, event_id in flips]
            for rollup, keys in affected_minutes(rows, changed).items():
                if keys:
                    minutes += len(keys)
                    recompute(pg, rollup, keys, coarser=flavor == "postgres")
        pg.execute(_SET_TENANT, (previous or "",), prepare=True)
    return IngestResult(received=len(facts), stored=stored, minutes=minutes)


def event_lock(event_id: uuid.UUID) -> int:
    """The advisory lock key of an event's rollups (64 bits of its id)."""
    return int.from_bytes(event_id.bytes[8:], "big", signed=True)


def affected_minutes(
    rows: Iterable[tuple[Any, ...]], flipped: Iterable[tuple[Any, ...]] = ()
) -> dict[Rollup, set[Key]]:
    """The minute buckets of each rollup that new facts ``(kind, event_id, occurred_at, ...)``
    change, and those of the page views whose uniqueness changed ``(event_id, occurred_at)``."""
    keys: dict[Rollup, set[Key]] = {EVENT: set(), REVENUE: set(), TRAFFIC: set()}
    for kind, event_id, occurred_at, *_ in rows:
        own = (event_id, floor(occurred_at, "minute"))
        if kind in EVENT.kinds:
            keys[EVENT].add(own)
        if kind in _TRACKED:
            keys[TRAFFIC].add(own)
        if kind in _MONEY:
            keys[REVENUE].add(own)
    for event_id, occurred_at in flipped:
        keys[EVENT].add((event_id, floor(occurred_at, "minute")))
        keys[TRAFFIC].add((event_id, floor(occurred_at, "minute")))
    return keys


def recompute(pg: psycopg.Connection, rollup: Rollup, minutes: set[Key], *, coarser: bool) -> None:
    """Upsert ``minutes`` of ``rollup`` from the facts, then (``coarser``) their hours and days."""
    pg.execute(_MINUTE_SQL[rollup.name], _key_arrays(minutes), prepare=True)
    if coarser:
        for grain in ("hour", "day"):
            buckets = {(event_id, floor(b, grain)) for event_id, b in minutes}
            pg.execute(_COARSER_SQL[(rollup.name, grain)], _key_arrays(buckets), prepare=True)


def _view_arrays(views: Sequence[Fact]) -> tuple[list[object], ...]:
    return (
        [f.event_id for f in views],
        [f.visitor_id for f in views],
        [f.occurred_at for f in views],
        [f.fact_id for f in views],
    )


def _firsts(views: Sequence[Fact]) -> set[uuid.UUID]:
    """The views of a batch (sorted by event, visitor, time, id) with no view of the same visitor
    and event in the batch in the 30 minutes before them."""
    firsts = set()
    previous: Fact | None = None
    for view in views:
        if (
            previous is None
            or (previous.event_id, previous.visitor_id) != (view.event_id, view.visitor_id)
            or previous.occurred_at < view.occurred_at - UNIQUE_WINDOW
        ):
            firsts.add(view.fact_id)
        previous = view
    return firsts


def _key_arrays(keys: set[Key]) -> tuple[list[uuid.UUID], list[datetime]]:
    ordered = sorted(keys)  # a stable lock order between concurrent sinks
    return [k[0] for k in ordered], [k[1] for k in ordered]


def _columns(
    tenant: uuid.UUID, facts: Iterable[Fact], firsts: set[uuid.UUID]
) -> tuple[object, ...]:
    cols: list[list[object]] = [[] for _ in range(15)]
    for f in facts:
        row = (
            f.fact_id,
            f.occurred_at,
            str(f.kind),
            f.event_id,
            f.ticket_type_id,
            f.registration_id,
            f.quantity,
            f.amount,
            f.currency.upper() if f.currency else None,
            f.purpose,
            f.visitor_id,
            f.session_id,
            f.source,
            f.device,
            f.fact_id in firsts,
        )
        for col, value in zip(cols, row, strict=True):
            col.append(value)
    return (tenant, *cols)


def _check(fact: Fact) -> None:
    """Refuse a fact the warehouse cannot store faithfully (the caller dead-letters it)."""
    FactKind(fact.kind)
    if fact.occurred_at.tzinfo is None:
        raise ValueError(f"fact {fact.fact_id}: occurred_at is naive")
    if fact.quantity < 0 or fact.amount < 0:
        raise ValueError(f"fact {fact.fact_id}: negative quantity or amount")
    if fact.kind in _MONEY and not fact.currency:
        raise ValueError(f"fact {fact.fact_id}: {fact.kind} without a currency")
    if fact.kind == FactKind.PAYMENT and fact.purpose not in _PURPOSES:
        raise ValueError(f"fact {fact.fact_id}: payment purpose {fact.purpose!r}")
