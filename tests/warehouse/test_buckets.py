"""The rollups' buckets in SQL (``rollups.bucket_of``: ``date_bin`` from a UTC midnight) are the
UTC buckets ``date_trunc(..., 'UTC')`` gives, and those of ``rollups.floor`` in Python, at the
edges too: midnight, the microsecond before it, a leap day, a time before the origin, another
offset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from warehouse.rollups import GRAINS, bucket_of, floor

MOMENTS = [
    datetime(2026, 11, 22, 0, 0, tzinfo=UTC),
    datetime(2026, 11, 21, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2028, 2, 29, 13, 30, 15, 5, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, 30, tzinfo=UTC),
    datetime(2026, 3, 29, 2, 30, tzinfo=timezone(timedelta(hours=3))),  # 23:30 UTC the day before
    datetime(2026, 6, 1, 12, 0, 0, 1, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
]


@pytest.mark.parametrize("grain", GRAINS)
def test_sql_buckets_are_utc_buckets(db_session: Session, grain: str) -> None:
    for moment in MOMENTS:
        binned, truncated = db_session.execute(
            text(
                f"SELECT {bucket_of(grain, 'CAST(:at AS timestamptz)')},"
                f" date_trunc('{grain}', CAST(:at AS timestamptz), 'UTC')"
            ),
            {"at": moment},
        ).one()
        assert binned == truncated == floor(moment, grain), (grain, moment)
