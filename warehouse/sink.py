"""The warehouse's one write path: store facts and add them to the rollups, exactly once.

``ingest(session, facts)`` runs inside the caller's transaction (the stream worker's unit of work,
one transaction per batch) and never commits. For each tenant of the batch, ONE statement

1. inserts the raw facts (``ON CONFLICT DO NOTHING``: a fact delivered again is no new row),
   deciding each new page view's uniqueness as it goes (``rollups.NEW_VIEW_UNIQUE``: one index
   probe, in the partitions the batch's times can reach), and
2. adds exactly the rows that insert stored (its ``RETURNING``) to the minute rollups and, on
   plain PostgreSQL, to the hour and day rollups (with Timescale, continuous aggregates keep
   those): ``col = col + EXCLUDED.col`` per bucket.

A fact stored before returns nothing, so redelivery and replay add nothing; a late fact adds to
its own (old) bucket. A late page view also takes the uniqueness from the stored views of the
same visitor it precedes by under 30 minutes (``rollups.LATER_UNIQUE_VIEWS`` finds them, in the
same statement, whose snapshot does not hold the batch's views yet; the flip statement clears only flags that are still set and takes those views from the unique
counts, so each is taken once). The rollups therefore always equal what ``aqstream backfill``
recomputes from the raw facts (tests/warehouse/test_backfill.py checks it on random, shuffled,
redelivered batches).

Concurrent sinks (several workers: an event's facts come from several topics and partitions)
take a transaction-scoped advisory lock per event first, in key order: the additions commute,
but two transactions deciding the uniqueness of the same visitor's views must not miss each
other's uncommitted views. Tenancy: the sink runs as the application role, under row level
security; a batch may span tenants, so it switches ``app.tenant_id`` (``set_config(..., true)``,
as the unit of work does) for each tenant's statements and restores the caller's value at the
end. No role that bypasses RLS is involved.

Speed: a tenant's facts go over as one JSONB array (msgspec encodes it in C), statements are
prepared with generic plans, and all go through psycopg's pipeline: two or three round trips per
batch, not per fact. Its reads of
the facts are index-only scans of the covering view index (``_PLAN_SETTINGS`` says why).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
import psycopg
from psycopg.types.json import Jsonb
from sqlalchemy.orm import Session

from domain.analytics.facts import Fact, FactKind
from warehouse import visits
from warehouse.rollups import (
    BATCH_FIRST,
    EVENT,
    GRAINS,
    LATER_HORIZON,
    LATER_UNIQUE_VIEWS,
    NEW_VIEW_UNIQUE,
    ROLLUPS,
    TRAFFIC,
)

_CONTEXT = "SELECT current_setting('app.tenant_id', true), warehouse.flavor()"
# The settings the sink changes for its statements (_PLAN_SETTINGS), restored when it is done:
# the caller's transaction goes on with its own.
_PLANNER = ("plan_cache_mode", "enable_seqscan", "enable_indexscan", "enable_bitmapscan", "jit")
_SAVE_PLANNER = "SELECT " + ", ".join(f"current_setting('{name}')" for name in _PLANNER)
_RESTORE = "SELECT set_config('app.tenant_id', %s, true), " + ", ".join(
    f"set_config('{name}', %s, true)" for name in _PLANNER
)
# One transaction-scoped advisory lock per event, taken in key order (no deadlocks between sinks).
LOCK_EVENTS = (
    "SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT DISTINCT k FROM unnest(%b::bigint[]) k"
    " ORDER BY k) s"
)
_SET_TENANT = "SELECT set_config('app.tenant_id', %s, true)"
# Plans are cached for the transaction's statements: with dozens of partitions, planning each
# statement again costs more than running it (partitions are pruned at run time instead).
# A generic plan is made once per connection and serves every later batch and tenant, so it
# must not depend on the statistics of the moment: the sink reads warehouse.facts only through
# index-only scans, which only ix_wh_facts_visitor_views can give its per-view probes (it holds
# every column they test; the flip probe's per-event horizon reads the end of
# ix_wh_facts_event_time, whose columns are all it asks for). With other scans allowed, a plan made while a partition's statistics were
# stale took the primary key or ix_wh_facts_event_time and then read all of the tenant's or the
# event's facts in the batch's span for every probe: seconds per batch instead of a fraction.
# Disabled paths weigh 1e10 in the plan's cost, which would make PostgreSQL compile every
# statement with JIT (seconds): JIT is off for the sink, whose statements are small anyway.
# The flip UPDATE must read rows: it runs with index scans allowed again (_FLIP_SETTINGS), and
# its conditions are the primary key's columns, which no other index has.
_PLAN_SETTINGS = (
    "SELECT set_config('plan_cache_mode', 'force_generic_plan', true),"
    " set_config('enable_seqscan', 'off', true), set_config('enable_indexscan', 'off', true),"
    " set_config('enable_bitmapscan', 'off', true), set_config('jit', 'off', true)"
)
_FLIP_SETTINGS = "SELECT set_config('enable_indexscan', 'on', true)"
# The columns a rollup reads from a stored fact (rollups.Rollup.minute_aggregate).
_ROLLED = (
    "tenant_id, kind, event_id, ticket_type_id, occurred_at, quantity, amount, currency, purpose,"
    " source, device, is_unique"
)
# (name, SQL type) of a fact's members (warehouse.facts.Fact) the sink stores, in order. A
# tenant's facts go over as one JSONB array of Fact objects, encoded by msgspec in C: building
# an array parameter per column cost the worker's one Python thread some 6 µs a fact in
# psycopg's per-element dumping, PostgreSQL's reading of the JSONB about 1.5 µs more than
# binary arrays (docs/analytics.md, "The write path").
_COLUMNS = (
    ("fact_id", "uuid"),
    ("occurred_at", "timestamptz"),
    ("kind", "text"),
    ("event_id", "uuid"),
    ("ticket_type_id", "uuid"),
    ("registration_id", "uuid"),
    ("quantity", "int"),
    ("amount", "bigint"),
    ("currency", "text"),
    ("purpose", "text"),
    ("visitor_id", "text"),
    ("session_id", "text"),
    ("source", "text"),
    ("device", "text"),
)
_STORED = ", ".join(name for name, _ in _COLUMNS)
# What a column stores: a member left out of the JSON (at its default: Fact's omit_defaults)
# is null, so the members whose default is not null get it back here.
_DEFAULTS = {
    field.name: field.default
    for field in msgspec.structs.fields(Fact)
    if field.default not in (None, msgspec.NODEFAULT)
}
_VALUES = ", ".join(
    "upper(u.currency)"
    if name == "currency"
    else f"coalesce(u.{name}, {_DEFAULTS[name]!r})"
    if name in _DEFAULTS
    else f"u.{name}"
    for name, _ in _COLUMNS
)
# The batch's rows (u), each with its BATCH_FIRST flag.
_BATCH = (
    f"SELECT u.*, {BATCH_FIRST} AS first FROM jsonb_to_recordset(%(facts)b::jsonb)"
    f" AS u({', '.join(f'{name} {sql}' for name, sql in _COLUMNS)})"
)
_INSERT = (
    f"INSERT INTO warehouse.facts (tenant_id, {_STORED}, is_unique)"
    f" SELECT %(tenant)s::uuid, {_VALUES}, {NEW_VIEW_UNIQUE} FROM u"
    f" ON CONFLICT DO NOTHING RETURNING {_ROLLED}"
)
_FLIP = (
    "UPDATE warehouse.facts t SET is_unique = false"
    " FROM unnest(%b::uuid[], %b::timestamptz[]) AS c(fact_id, occurred_at)"
    " WHERE t.tenant_id = app_tenant_id() AND t.fact_id = c.fact_id"
    " AND t.occurred_at = c.occurred_at AND t.is_unique"
    " RETURNING t.tenant_id, t.event_id, t.ticket_type_id, t.occurred_at, t.source, t.device"
)


def _grains(flavor: str) -> tuple[str, ...]:
    """The rollup grains the sink keeps: with Timescale, continuous aggregates keep hour and day."""
    return GRAINS if flavor == "postgres" else ("minute",)


def _store_sql(flavor: str) -> str:
    """Insert a tenant's facts and add the new ones to every rollup, in one statement: the
    rollups see exactly the rows the insert stored (a fact stored before adds nothing). Each
    rollup reads them once, per minute; hours and days add up those minutes. The statement also
    returns the stored unique views the batch's views come before (``LATER_UNIQUE_VIEWS``, read
    in the statement's snapshot: without the batch's own views), which ``_FLIP_SQL`` then
    takes the uniqueness from."""
    ctes = [
        f"u AS MATERIALIZED ({_BATCH})",
        f"horizon AS MATERIALIZED ({LATER_HORIZON})",
        f"later AS ({LATER_UNIQUE_VIEWS})",
        f"new AS ({_INSERT})",
    ]
    for rollup in ROLLUPS:
        ctes.append(f"{rollup.name}_new AS ({rollup.minute_aggregate('new')})")
        ctes += [
            f"{rollup.name}_{grain} AS ({rollup.add_from(grain, f'{rollup.name}_new')})"
            for grain in _grains(flavor)
        ]
    return (
        f"WITH {', '.join(ctes)} SELECT s.stored, l.fact_ids, l.times"
        " FROM (SELECT count(*) AS stored FROM new) s,"
        " (SELECT array_agg(fact_id) AS fact_ids, array_agg(occurred_at) AS times FROM later) l"
    )


def _flip_sql(flavor: str) -> str:
    """Take away the uniqueness of stored views a late view precedes, and their unique views
    from the event and traffic rollups (only views whose flag did change: exactly once)."""
    takes = [
        f"{rollup.name}_{grain} AS ({rollup.take_unique_from(grain, 'flipped')})"
        for rollup in (EVENT, TRAFFIC)
        for grain in _grains(flavor)
    ]
    return f"WITH flipped AS ({_FLIP}), {', '.join(takes)} SELECT count(*) FROM flipped"


_STORE_SQL = {flavor: _store_sql(flavor) for flavor in ("postgres", "timescale")}
_FLIP_SQL = {flavor: _flip_sql(flavor) for flavor in ("postgres", "timescale")}
_MONEY = frozenset({FactKind.PAYMENT.value, FactKind.REFUND.value})
_ENCODE = msgspec.json.Encoder().encode
_PURPOSES = frozenset({"full", "deposit", "remainder"})


@dataclass(frozen=True)
class IngestResult:
    received: int  # facts handed in
    stored: int  # of which new (the rest were stored before: redelivery, replay)
    flipped: int  # stored page views no longer unique: a late view of the batch came before them


def ingest(session: Session, facts: Sequence[Fact]) -> IngestResult:
    """Store ``facts`` and bring the rollups they touch up to date, in the caller's transaction."""
    by_tenant: dict[uuid.UUID, dict[uuid.UUID, Fact]] = defaultdict(dict)
    for fact in facts:
        _check(fact)
        by_tenant[fact.tenant_id][fact.fact_id] = fact
    if not by_tenant:
        return IngestResult(0, 0, 0)
    pg: psycopg.Connection = session.connection().connection.driver_connection
    stored: list[psycopg.Cursor] = []
    events = {f.event_id for group in by_tenant.values() for f in group.values()}
    with pg.pipeline():
        context = pg.execute(_CONTEXT)
        planner = pg.execute(_SAVE_PLANNER, prepare=True)
        pg.execute(_PLAN_SETTINGS)
        pg.execute(LOCK_EVENTS, ([event_lock(e) for e in events],), prepare=True)
    previous, flavor = context.fetchone()
    saved = planner.fetchone()
    with pg.pipeline():
        for tenant, group in by_tenant.items():
            pg.execute(_SET_TENANT, (str(tenant),), prepare=True)
            rows = list(group.values())
            viewed = [f.occurred_at for f in rows if f.kind == FactKind.PAGE_VIEW]
            params = {
                "tenant": tenant,
                "facts": Jsonb(rows, dumps=_ENCODE),
                "views_from": min(viewed, default=None),
                "views_to": max(viewed, default=None),
            }
            stored.append(pg.execute(_STORE_SQL[flavor], params, prepare=True))
        results = [
            (tenant, cursor.fetchone()) for tenant, cursor in zip(by_tenant, stored, strict=True)
        ]
        flipped: list[psycopg.Cursor] = []
        later = [(tenant, ids, times) for tenant, (_, ids, times) in results if ids]
        if later:  # late views only: live traffic comes in order; the flip reads rows by
            pg.execute(_FLIP_SETTINGS, prepare=True)  # primary key: plain index scans again
        for tenant, ids, times in later:
            pg.execute(_SET_TENANT, (str(tenant),), prepare=True)
            flipped.append(pg.execute(_FLIP_SQL[flavor], (ids, times), prepare=True))
        # The visits of the batch's visitors, recomputed after the flips (which change which
        # views are visits); their lookups read rows by the 0016 indexes: index scans on.
        touched = [
            (tenant, visits.touched(list(group.values()))) for tenant, group in by_tenant.items()
        ]
        touched = [(tenant, keys) for tenant, keys in touched if any(keys.values())]
        if touched and not later:
            pg.execute(_FLIP_SETTINGS, prepare=True)
        for tenant, keys in touched:
            pg.execute(_SET_TENANT, (str(tenant),), prepare=True)
            pg.execute(visits.FORGET_VISITORS, keys, prepare=True)
            pg.execute(visits.RECOMPUTE_VISITORS, keys, prepare=True)
        pg.execute(_RESTORE, (previous or "", *saved), prepare=True)
    return IngestResult(
        received=len(facts),
        stored=sum(count for _, (count, _, _) in results),
        flipped=sum(c.fetchone()[0] for c in flipped),
    )


def event_lock(event_id: uuid.UUID) -> int:
    """The advisory lock key of an event's rollups (64 bits of its id)."""
    return int.from_bytes(event_id.bytes[8:], "big", signed=True)


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
