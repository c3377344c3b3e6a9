"""The visits the sink keeps give exactly journey_sql's funnel and attribution for any range
(warehouse/visits.py; docs/analytics.md, "Funnel and attribution"): random facts (visitors,
sources, anonymous views and registrations, payments and check-ins by registration, some of
registrations never stored) go through the real sink in shuffled, redelivered batches, and
every range's answer from the visits equals the one computed from the range's facts. Backfill's
recomputation and the migration's fill give the same rows as the sink."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from domain.analytics.facts import Fact, FactKind
from tests.warehouse.conftest import T0, fact
from warehouse import visits
from warehouse.queries import journeys
from warehouse.sink import ingest

M = timedelta(minutes=1)
SPAN = 3 * 24 * 60  # minutes: visits, the 24 h window and ranges across days
VISITORS = ["a", "b", "c", "d", None]
SOURCES = ["newsletter", "twitter", None]
KINDS = [
    FactKind.PAGE_VIEW,
    FactKind.PAGE_VIEW,
    FactKind.TICKET_SELECTED,
    FactKind.CHECKOUT_STARTED,
    FactKind.RESERVATION,
    FactKind.REGISTRATION,
    FactKind.PAYMENT,
    FactKind.CHECKIN,
]


@contextmanager
def owner_session(owner_engine: Engine) -> Iterator[Session]:
    """One rolled-back transaction; the sink's statements and the views' reads run in it."""
    with owner_engine.connect() as conn:
        outer = conn.begin()
        try:
            yield Session(bind=conn, join_transaction_mode="create_savepoint")
        finally:
            outer.rollback()


def random_facts(rng: random.Random, tenant: uuid.UUID, event: uuid.UUID, n: int) -> list[Fact]:
    registrations: list[uuid.UUID] = [uuid.uuid4()]  # one never stored: its payments wait
    facts = []
    for _ in range(n):
        kind = rng.choice(KINDS)
        at = T0 + rng.randrange(SPAN) * M + timedelta(seconds=rng.choice([0, 0, 17]))
        fields: dict = {"visitor_id": rng.choice(VISITORS)}
        if kind == FactKind.PAGE_VIEW:
            fields["source"] = rng.choice(SOURCES)
        if kind == FactKind.REGISTRATION:
            registrations.append(fields.setdefault("registration_id", uuid.uuid4()))
        if kind in (FactKind.PAYMENT, FactKind.CHECKIN):
            fields = {"registration_id": rng.choice(registrations)}
            if kind == FactKind.PAYMENT:
                fields |= {
                    "purpose": rng.choice(["full", "deposit", "remainder"]),
                    "currency": rng.choice(["EUR", "USD"]),
                    "amount": rng.randrange(100, 5000),
                }
        facts.append(fact(kind, tenant, event, at, **fields))
    return facts


def ranges(rng: random.Random, count: int) -> list[tuple]:
    out = [(T0 - M, T0 + (SPAN + 1) * M)]  # the whole history
    for _ in range(count):
        a, b = sorted(rng.randrange(-60, SPAN + 60) for _ in range(2))
        out.append((T0 + a * M + timedelta(seconds=rng.choice([0, 17])), T0 + (b + 1) * M))
    return out


def rows(session: Session, table: str) -> list:
    return sorted(
        tuple(str(v) for v in r)
        for r in session.execute(text(f"SELECT * FROM warehouse.{table} WHERE tenant_id = :t"),
                                 {"t": session.info["tenant"]})
    )  # fmt: skip


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32), size=st.integers(1, 90), batches=st.integers(1, 6))
def test_visits_equal_the_facts_computation(owner_engine: Engine, seed, size, batches) -> None:
    rng = random.Random(seed)
    tenant, event = uuid.uuid4(), uuid.uuid4()
    facts = random_facts(rng, tenant, event, size)
    rng.shuffle(facts)  # out of order, late
    with owner_session(owner_engine) as session:
        session.info["tenant"] = tenant
        for i in range(batches):
            batch = facts[i::batches]
            ingest(session, batch + rng.sample(facts, min(3, len(facts))))  # and redelivered
        session.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(tenant)})
        for lo, hi in ranges(rng, 12):
            kept = journeys(session, lo, hi, event)
            assert kept == journeys(session, lo, hi, event, oracle=True), (lo, hi)
            assert journeys(session, lo, hi) == journeys(session, lo, hi, oracle=True), (lo, hi)

        kept = rows(session, "visits"), rows(session, "visit_credits")
        pg = session.connection().connection.driver_connection
        pg.execute(visits.FORGET_EVENT, {"event": event})
        pg.execute(visits.RECOMPUTE_EVENT, {"event": event})
        assert (rows(session, "visits"), rows(session, "visit_credits")) == kept
        pg.execute("DELETE FROM warehouse.visits WHERE tenant_id = %s", (tenant,))
        pg.execute("DELETE FROM warehouse.visit_credits WHERE tenant_id = %s", (tenant,))
        pg.execute(visits.RECOMPUTE_ALL)  # the migration's fill (others' tenants: no conflict)
        assert (rows(session, "visits"), rows(session, "visit_credits")) == kept


def test_the_migration_fills_with_the_sink_computation() -> None:
    from aqstream.migrations import SQL_DIR

    script = (SQL_DIR / "ddl" / "0016_warehouse_visits.sql").read_text()
    assert script.rstrip().endswith(visits.RECOMPUTE_ALL + ";")
