"""aqstream backfill rebuilds the rollups from the raw facts exactly: deleted rows come back,
wrong rows are corrected, only from --since on, and a second run changes nothing."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from aqstream.cli import app as cli
from core.settings import Settings
from domain.analytics.facts import FactKind
from tests.warehouse.conftest import T0, fact, scenario, snapshot
from warehouse.backfill import backfill
from warehouse.rollups import GRAINS, ROLLUPS
from warehouse.sink import ingest


@pytest.fixture
def stored(warehouse_engine: Engine) -> tuple[uuid.UUID, uuid.UUID, dict]:
    """A committed scenario in a tenant of its own, and its rollups as the sink left them."""
    tenant, event = uuid.uuid4(), uuid.uuid4()
    with Session(warehouse_engine) as session, session.begin():
        ingest(session, scenario(tenant, event, uuid.uuid4()))
    with Session(warehouse_engine) as session, session.begin():
        return tenant, event, snapshot(session, tenant)


def _current(warehouse_engine: Engine, tenant: uuid.UUID) -> dict:
    with Session(warehouse_engine) as session, session.begin():
        return snapshot(session, tenant)


def _damage(owner_engine: Engine, event: uuid.UUID, before=None) -> None:
    """Delete the event's rollup rows (from ``before`` on), falsify the rest, and flip the
    uniqueness of its page views (from ``before`` on)."""
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE warehouse.facts SET is_unique = NOT is_unique WHERE event_id = :e"
                " AND kind = 'page_view' AND (CAST(:b AS timestamptz) IS NULL OR occurred_at >= :b)"
            ),
            {"e": event, "b": before},
        )
        flavor = conn.execute(text("SELECT warehouse.flavor()")).scalar_one()
        grains = GRAINS if flavor == "postgres" else ("minute",)  # aggregates take no writes
        for rollup in ROLLUPS:
            for grain in grains:
                table = rollup.table(grain)
                column = next(iter(rollup.measures))
                conn.execute(
                    text(f"UPDATE {table} SET {column} = {column} + 99 WHERE event_id = :e"),
                    {"e": event},
                )
                conn.execute(
                    text(
                        f"DELETE FROM {table} WHERE event_id = :e"
                        " AND (CAST(:b AS timestamptz) IS NULL OR bucket >= :b)"
                    ),
                    {"e": event, "b": before},
                )


def test_backfill_rebuilds_deleted_and_wrong_rollups_exactly(
    stored, owner_engine: Engine, warehouse_engine: Engine
) -> None:
    tenant, event, good = stored
    _damage(owner_engine, event)
    assert _current(warehouse_engine, tenant) != good
    result = backfill(owner_engine, warehouse_engine, event_id=event)
    assert (result.events, result.facts) == (1, 25)
    assert _current(warehouse_engine, tenant) == good
    backfill(owner_engine, warehouse_engine, event_id=event)  # again: nothing changes
    assert _current(warehouse_engine, tenant) == good


def test_backfill_since_rebuilds_only_what_follows(
    stored, owner_engine: Engine, warehouse_engine: Engine
) -> None:
    tenant, event, good = stored
    since = T0 + timedelta(days=1)  # 2026-11-03 10:00: the next day's registration and check-in
    _damage(owner_engine, event, before=since)
    backfill(owner_engine, warehouse_engine, event_id=event, since=since)
    now = _current(warehouse_engine, tenant)
    minute = "warehouse.event_minute"
    assert [r for r in now[minute] if r[3] >= str(since)] == [
        r for r in good[minute] if r[3] >= str(since)
    ]
    # before `since` the falsified rows stay as they were (views + 99): not rebuilt
    assert [r for r in now[minute] if r[3] < str(since)] != [
        r for r in good[minute] if r[3] < str(since)
    ]
    # the day of `since` is summed again from its (partly falsified) hours
    day = {r[3]: r for r in now["warehouse.event_day"]}
    assert str(T0.replace(hour=0) + timedelta(days=1)) in day


def test_aqstream_backfill_command(
    stored, owner_engine: Engine, warehouse_engine: Engine, settings: Settings, monkeypatch
) -> None:
    tenant, event, good = stored
    for name, value in {
        "AQSTREAM_DATABASE_URL": settings.owner_url.render_as_string(hide_password=False),
        "AQSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "AQSTREAM_REDIS_URL": settings.redis_url,
        "AQSTREAM_S3_ENDPOINT": settings.s3_endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    _damage(owner_engine, event)
    result = CliRunner().invoke(cli, ["backfill", "--event", str(event)])
    assert result.exit_code == 0, result.output
    assert "rebuilt 1 events from 25 facts" in result.output
    assert _current(warehouse_engine, tenant) == good
    bad = CliRunner().invoke(cli, ["backfill", "--since", "last tuesday"])
    assert bad.exit_code == 2 and "error" in bad.output


def test_the_sinks_differences_equal_a_rebuild_from_the_raw_facts(
    owner_engine: Engine, warehouse_engine: Engine
) -> None:
    """The sink keeps rollups by adding what each batch newly stored (and taking the unique
    views a late view took away): after random batches, shuffled, overlapping, redelivered and
    late, every rollup equals what ``backfill`` recomputes absolutely from the raw facts."""
    rng = random.Random(11)
    tenant, event = uuid.uuid4(), uuid.uuid4()
    types = [uuid.uuid4(), uuid.uuid4(), None]
    kinds = [FactKind.PAGE_VIEW] * 8 + [k for k in FactKind if k != FactKind.PAGE_VIEW]
    facts = []
    for _ in range(600):
        kind = rng.choice(kinds)
        at = T0 + timedelta(seconds=rng.randrange(3 * 3600))
        extra: dict = {"ticket_type_id": rng.choice(types), "quantity": rng.randint(1, 3)}
        if kind in (FactKind.PAGE_VIEW, FactKind.TICKET_SELECTED, FactKind.CHECKOUT_STARTED):
            extra = {"visitor_id": f"v{rng.randrange(12)}", "source": rng.choice(["a", None])}
        elif kind in (FactKind.PAYMENT, FactKind.REFUND):
            extra["currency"] = rng.choice(["EUR", "USD"])
            extra["amount"] = rng.randrange(1, 10_000)
            if kind == FactKind.PAYMENT:
                extra["purpose"] = rng.choice(["full", "deposit", "remainder"])
        facts.append(fact(kind, tenant, event, at, **extra))
    rng.shuffle(facts)  # out of order: many views arrive before views up to 30 min earlier
    flipped = stored = start = 0
    while start < len(facts):
        size = rng.randint(1, 60)
        batch = facts[max(0, start - rng.randint(0, 10)) : start + size]  # some delivered again
        with Session(warehouse_engine) as session, session.begin():
            result = ingest(session, batch)
        flipped, stored, start = flipped + result.flipped, stored + result.stored, start + size
    assert stored == len(facts)
    assert flipped > 0  # late views did take uniqueness from stored views
    kept = _current(warehouse_engine, tenant)
    backfill(owner_engine, warehouse_engine, event_id=event)
    assert _current(warehouse_engine, tenant) == kept


def test_a_refresh_that_meets_a_running_policy_refresh_is_tried_again() -> None:
    """TimescaleDB answers 55P03 at once when a manual refresh overlaps a policy's running one
    (measured on 2.29.2); backfill waits and tries again instead of failing. (The plain flavour
    has no aggregates to refresh, so the statement is played by a stand-in here.)"""
    import psycopg
    from tenacity import wait_none

    from warehouse.backfill import _refresh

    calls: list[tuple] = []

    class Busy:
        def execute(self, statement: str, params: tuple) -> None:
            calls.append(params)
            if len(calls) < 3:
                raise psycopg.errors.LockNotAvailable("could not obtain lock")

    _refresh.retry_with(wait=wait_none())(Busy(), "warehouse.event_hour", None)
    assert calls == [("warehouse.event_hour", None)] * 3

    class Broken:
        def execute(self, statement: str, params: tuple) -> None:
            raise psycopg.errors.UndefinedTable("no such aggregate")

    with pytest.raises(psycopg.errors.UndefinedTable):  # anything else is not retried
        _refresh.retry_with(wait=wait_none())(Broken(), "warehouse.nothing", None)
