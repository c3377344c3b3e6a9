"""The raw facts' monthly partitions are kept a year ahead (plain PostgreSQL), and a fact that
landed in the default partition moves into its month's partition when that is created.

"Today" is fixed and decades away: the migration made its months around the real date, and
the months dropped here must hold no other test's facts."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine, text

from domain.db import make_sessionmaker
from warehouse.partitions import MONTHS_AHEAD, ensure_partitions

TODAY = date(2086, 12, 7)  # a December: a year ahead is in the next year, not the one after


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


def _add_months(day: date, months: int) -> date:
    """The first of the month ``months`` after ``day``'s month."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _in_years(names: Iterable[str], years: Iterable[int]) -> set[str]:
    prefixes = tuple(f"facts_y{year:04d}m" for year in years)
    return {name for name in names if name.startswith(prefixes)}


def _drop(owner_engine: Engine, names: Iterable[str]) -> None:
    with owner_engine.begin() as conn:
        for name in names:
            conn.execute(text(f"DROP TABLE IF EXISTS warehouse.{name}"))


def _postgres(owner_engine: Engine) -> bool:
    with owner_engine.connect() as conn:
        return conn.execute(text("SELECT warehouse.flavor()")).scalar_one() == "postgres"


def test_missing_months_are_made_and_default_rows_move_in(
    warehouse_engine: Engine, owner_engine: Engine
) -> None:
    if not _postgres(owner_engine):
        assert ensure_partitions(make_sessionmaker(warehouse_engine), today=TODAY) == 0
        return
    year_ahead = _add_months(TODAY, 12)
    # The month a year from today: drop it (if an earlier run made it) and store a fact there.
    name = _month_name(year_ahead.year, year_ahead.month)
    tenant, fact = uuid.uuid4(), uuid.uuid4()
    at = datetime(year_ahead.year, year_ahead.month, 15, 12, tzinfo=UTC)
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

    made = ensure_partitions(make_sessionmaker(warehouse_engine), today=TODAY)

    assert made >= 1
    assert name in _months(owner_engine)
    with owner_engine.connect() as conn:
        where = conn.execute(
            text("SELECT tableoid::regclass::text FROM warehouse.facts WHERE fact_id = :f"),
            {"f": fact},
        ).scalar_one()
    assert where == f"warehouse.{name}"
    # Idempotent: everything up to MONTHS_AHEAD exists now.
    assert ensure_partitions(make_sessionmaker(warehouse_engine), MONTHS_AHEAD, today=TODAY) == 0
    with owner_engine.begin() as conn:
        conn.execute(text("DELETE FROM warehouse.facts WHERE fact_id = :f"), {"f": fact})
    _drop(owner_engine, _in_years(_months(owner_engine), (TODAY.year, TODAY.year + 1)))


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        # The year turns after the first month; the January after next is one too many.
        (date(2090, 12, 31), [(2090, 12), *((2091, m) for m in range(1, 13))]),
        (date(2093, 1, 1), [*((2093, m) for m in range(1, 13)), (2094, 1)]),
        # A leap day: the next February has no 29th, and its month is still the last one made.
        (date(2096, 2, 29), [*((2096, m) for m in range(2, 13)), (2097, 1), (2097, 2)]),
    ],
    ids=["december", "january", "leap-february"],
)
def test_this_month_and_a_year_after_it_are_made(
    warehouse_engine: Engine, owner_engine: Engine, today: date, expected: list[tuple[int, int]]
) -> None:
    if not _postgres(owner_engine):
        assert ensure_partitions(make_sessionmaker(warehouse_engine), today=today) == 0
        return
    # The year before and after too: a month made outside the expected ones shows up.
    years = range(today.year - 1, today.year + 3)
    _drop(owner_engine, _in_years(_months(owner_engine), years))
    try:
        made = ensure_partitions(make_sessionmaker(warehouse_engine), today=today)

        assert made == MONTHS_AHEAD
        assert _in_years(_months(owner_engine), years) == {_month_name(*m) for m in expected}
    finally:
        _drop(owner_engine, _in_years(_months(owner_engine), years))
