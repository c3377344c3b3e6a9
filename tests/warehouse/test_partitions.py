"""The raw facts' monthly partitions are kept a year ahead (plain PostgreSQL), and a fact that
landed in the default partition moves into its month's partition when that is created."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import Engine, text

from domain.db import make_sessionmaker
from warehouse.partitions import MONTHS_AHEAD, ensure_partitions


def _months(owner_engine: Engine) -> set[str]:
    with owner_engine.connect() as conn:
        return set(
            conn.execute(
                text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                    " WHERE i.inhparent = 'warehouse.facts'::regclass AND c.relname <> 'facts_default'"
                )
            ).scalars()
        )


def _month_name(year: int, month: int) -> str:
    return f"facts_y{year:04d}m{month:02d}"


def test_missing_months_are_made_and_default_rows_move_in(
    app_engine: Engine, owner_engine: Engine
) -> None:
    with owner_engine.connect() as conn:
        if conn.execute(text("SELECT warehouse.flavor()")).scalar_one() != "postgres":
            assert ensure_partitions(make_sessionmaker(app_engine)) == 0
            return
    now = datetime.now(UTC)
    year, month = (now.year + 1, now.month) if now.month < 12 else (now.year + 2, 1)
    # The month a year from now: drop it (if the migration made it) and store a fact there.
    name = _month_name(year, month)
    tenant, fact = uuid.uuid4(), uuid.uuid4()
    at = datetime(year, month, 15, 12, tzinfo=UTC)
    with owner_engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS warehouse.{name}"))
        conn.execute(
            text(
                "INSERT INTO warehouse.facts (tenant_id, fact_id, occurred_at, kind, event_id)"
                " VALUES (:t, :f, :at, 'registration', :e)"
            ),
            {"t": tenant, "f": fact, "at": at, "e": uuid.uuid4()},
        )
    assert name not in _months(owner_engine)

    made = ensure_partitions(make_sessionmaker(app_engine))

    assert made >= 1
    assert name in _months(owner_engine)
    with owner_engine.connect() as conn:
        where = conn.execute(
            text("SELECT tableoid::regclass::text FROM warehouse.facts WHERE fact_id = :f"),
            {"f": fact},
        ).scalar_one()
    assert where == f"warehouse.{name}"
    # Idempotent: everything up to MONTHS_AHEAD exists now.
    assert ensure_partitions(make_sessionmaker(app_engine), MONTHS_AHEAD) == 0
    with owner_engine.begin() as conn:
        conn.execute(text("DELETE FROM warehouse.facts WHERE fact_id = :f"), {"f": fact})
