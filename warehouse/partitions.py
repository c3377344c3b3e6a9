"""Keep the raw facts' monthly partitions ahead of time (plain PostgreSQL; with Timescale the
hypertable makes its chunks itself).

Migration 0008 creates a year of months back and ahead; ``aqstream jobs`` runs
``ensure_partitions`` daily so there are always ``months_ahead`` months in front. A fact whose
month has no partition is not refused (it lands in the default partition); when its month is
created, ``warehouse.create_partitions`` moves such rows over.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

MONTHS_AHEAD = 13  # this month and a year after it


def ensure_partitions(
    sessions: sessionmaker[Session], months_ahead: int = MONTHS_AHEAD, *, today: date | None = None
) -> int:
    """Create the missing monthly partitions from today's month (UTC) on; answers how many."""
    with sessions() as session, session.begin():
        if session.execute(text("SELECT warehouse.flavor()")).scalar_one() != "postgres":
            return 0
        this_month = (today or datetime.now(UTC).date()).replace(day=1)
        return session.execute(
            text("SELECT warehouse.create_partitions(:start, :months)"),
            {"start": this_month, "months": months_ahead},
        ).scalar_one()
