"""``aqstream backfill``: rebuild the rollups and visits from the raw facts, one event per
transaction.

For each event (all, or ``--event``) the page views' uniqueness and the rollup rows from
``--since`` on (all, by default) are recomputed (rollup rows deleted, then rebuilt) from the facts with the same statements the sink uses, so the result is
exactly what ingesting the facts would give, however the rollups got where they are (a bug, a
restore, an edited fact, rows deleted by hand). Absolute and idempotent: running it twice
changes nothing. The event's visits (warehouse/visits.py) are recomputed whole, whatever
``--since`` says: a visit's credits may come from any time of its visitor.

Finding the events is a cross-tenant read of the warehouse, done as the migration owner; every
rebuild then runs as the warehouse role (warehouse.engine) inside that event's tenant, like the
sink. With Timescale, the continuous aggregates are refreshed over the rebuilt range at the end
(as the owner, outside a transaction, as ``refresh_continuous_aggregate`` requires); a refresh
that overlaps a running refresh policy fails at once with 55P03 (lock not available) and is
tried again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session
from tenacity import retry, retry_if_exception_type, stop_after_delay, wait_exponential

from warehouse.rollups import RESET_UNIQUE, ROLLUPS, floor
from warehouse.sink import LOCK_EVENTS, event_lock
from warehouse.visits import FORGET_EVENT, RECOMPUTE_EVENT

BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)
_SET_TENANT = "SELECT set_config('app.tenant_id', %s, true)"


@dataclass(frozen=True)
class Target:
    tenant_id: uuid.UUID
    event_id: uuid.UUID
    facts: int


@dataclass
class BackfillResult:
    events: int = 0
    facts: int = 0
    minute_rows: int = 0


def targets(owner: Engine, event_id: uuid.UUID | None, since: datetime | None) -> list[Target]:
    """The events to rebuild: those with facts (from ``since``) or rollup rows, largest first."""
    since = since or BEGINNING
    with owner.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT tenant_id, event_id, sum(n) FROM ("
                " SELECT tenant_id, event_id, count(*) AS n FROM warehouse.facts"
                " WHERE occurred_at >= :since AND (CAST(:e AS uuid) IS NULL OR event_id = :e)"
                " GROUP BY tenant_id, event_id"
                " UNION ALL SELECT DISTINCT tenant_id, event_id, 0 FROM warehouse.event_minute"
                " WHERE bucket >= :since AND (CAST(:e AS uuid) IS NULL OR event_id = :e)"
                " UNION ALL SELECT DISTINCT tenant_id, event_id, 0 FROM warehouse.revenue_minute"
                " WHERE bucket >= :since AND (CAST(:e AS uuid) IS NULL OR event_id = :e)"
                ") t GROUP BY tenant_id, event_id ORDER BY 3 DESC, 1, 2"
            ),
            {"since": floor(since, "minute"), "e": event_id},
        ).all()
    return [Target(t, e, int(n)) for t, e, n in rows]


def rebuild_event(
    session: Session, tenant_id: uuid.UUID, event_id: uuid.UUID, since: datetime | None = None
) -> int:
    """Rebuild one event's rollups from ``since`` in the caller's transaction; answers the
    number of minute rows written."""
    since = since or BEGINNING
    pg: psycopg.Connection = session.connection().connection.driver_connection
    previous, flavor = pg.execute(
        "SELECT current_setting('app.tenant_id', true), warehouse.flavor()"
    ).fetchone()
    pg.execute(LOCK_EVENTS, ([event_lock(event_id)],))  # the sink's lock: no write meanwhile
    pg.execute(_SET_TENANT, (str(tenant_id),))
    grains = ("minute", "hour", "day") if flavor == "postgres" else ("minute",)
    pg.execute(RESET_UNIQUE, {"event": event_id, "since": since})
    written = 0
    for rollup in ROLLUPS:
        for grain in grains:
            pg.execute(
                f"DELETE FROM {rollup.table(grain)} WHERE tenant_id = app_tenant_id()"
                " AND event_id = %s AND bucket >= %s",
                (event_id, floor(since, grain)),
            )
        params = {"event": event_id, "since": floor(since, "minute")}
        written += pg.execute(rollup.rebuild_minutes(), params).rowcount
        for grain in grains[1:]:
            params = {"event": event_id, "since": floor(since, grain)}
            pg.execute(rollup.rebuild_coarser(grain), params)
    # The event's visits, whole: a visit's credits may come from any time of its visitor.
    pg.execute(FORGET_EVENT, {"event": event_id})
    pg.execute(RECOMPUTE_EVENT, {"event": event_id})
    pg.execute(_SET_TENANT, (previous or "",))
    return written


@retry(
    retry=retry_if_exception_type(psycopg.errors.LockNotAvailable),
    wait=wait_exponential(multiplier=1, max=30),
    stop=stop_after_delay(600),
    reraise=True,
)
def _refresh(conn: psycopg.Connection, aggregate: str, start: datetime | None) -> None:
    """One aggregate: TimescaleDB refuses a refresh that overlaps a policy's running refresh
    (55P03) instead of waiting, so it is tried again with backoff (up to 10 minutes)."""
    conn.execute("CALL refresh_continuous_aggregate(%s, %s, NULL)", (aggregate, start))


def refresh_aggregates(owner_dsn: str, since: datetime | None) -> None:
    """Timescale only: refresh every continuous aggregate from ``since`` (hour, then day)."""
    start = floor(since, "day") if since else None
    with psycopg.connect(owner_dsn, autocommit=True) as conn:
        for grain in ("hour", "day"):
            for rollup in ROLLUPS:
                _refresh(conn, rollup.table(grain), start)


def backfill(
    owner: Engine,
    warehouse: Engine,
    *,
    event_id: uuid.UUID | None = None,
    since: datetime | None = None,
    progress: Callable[[Target], None] | None = None,
) -> BackfillResult:
    """Rebuild the rollups of every event (or ``event_id``) from ``since``; one transaction per
    event, on ``warehouse`` (warehouse.engine). ``progress`` is called after each event."""
    result = BackfillResult()
    for target in targets(owner, event_id, since):
        with Session(warehouse) as session, session.begin():
            result.minute_rows += rebuild_event(session, target.tenant_id, target.event_id, since)
        result.events += 1
        result.facts += target.facts
        if progress:
            progress(target)
    with owner.connect() as conn:
        flavor = conn.execute(text("SELECT warehouse.flavor()")).scalar_one()
    if flavor == "timescale":
        dsn = owner.url.set(drivername="postgresql").render_as_string(hide_password=False)
        refresh_aggregates(dsn, since)
    return result
